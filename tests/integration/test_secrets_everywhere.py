"""A key given by any route never lands in a file, the MLflow store or the output streams:
on the command line, through an environment variable with a name that does not look secret
(``api_key_env``), inside a pipeline's stage overrides, and echoed back by a server (in an
error body and in an answer). Each route is checked on a real run: every byte under the
run's folder (sqlite store and artifacts included) and everything printed is searched."""

from __future__ import annotations

from pathlib import Path

import pytest

import genrm_fixtures as fx
from genrm.testing import rule_responder
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.integration

S_CLI, S_ENV, S_STAGE = "sk-cli-7f3a9c2e51", "cred-env-4b8d0e6f27", "sk-stage-9e1c5a7b33"


def leaks(root: Path, texts, secrets):
    found = []
    for f in root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            found += [f"{f}: {s}" for s in secrets if s.encode() in data]
    for i, t in enumerate(texts):
        found += [f"stream {i}: {s}" for s in secrets if s in t]
    return found


def test_no_route_leaks_a_key(tmp_path, cli, python, capfd):
    from omegaconf import open_dict

    from plumbing.config.hydra_app import compose, execute, finalize
    from plumbing.pipeline import PipelineStep

    records = fx.ralign_records()
    records[0]["conversations"][-1]["content"] += " [fault:echoauth]"
    records[1]["conversations"][-1]["content"] += " [fault:echoauthok]"
    data = fx.write(tmp_path / "hs3.jsonl", records)
    seen = []

    def responder(body):
        return rule_responder(body)

    with LoopbackServer(responder=responder) as srv:
        common = ["data=helpsteer3", f"data.helpsteer3.path={data}", "max_failure_rate=1",
                  "llm@genrm=openai", f"genrm.base_url={srv.base_url}", "genrm.model=g", "genrm.max_retries=0",
                  "llm@metarm=openai", f"metarm.base_url={srv.base_url}", "metarm.model=m", "metarm.max_retries=0"]
        out = tmp_path / "eval"
        # the GenRM (whose server echoes) gets its key through a plain-named variable, as in the
        # issue; a literal key echoed is the stage_overrides run's below
        r = cli([python, "-m", "genrm.evaluate", f"output_dir={out}", *common, "genrm.api_key_env=JUDGE_CRED",
                 f"metarm.api_key={S_CLI}", f"tracking.uri=sqlite:///{out / 'mlflow.db'}"],
                env={"JUDGE_CRED": S_ENV})
        assert r.returncode == 0, r.stderr[-3000:]
        seen += [r.stdout, r.stderr]
        samples = (out / "helpsteer3" / "samples.jsonl").read_text()
        assert "***REDACTED***" in samples  # the server did echo the key; it was masked
        pipe = tmp_path / "pipe"  # a pipeline whose one step gets the key through stage_overrides
        stage = "'" + "','".join([*common, f"genrm.api_key={S_STAGE}"]) + "'"
        obj, cfg = compose("pipeline", [f"output_dir={pipe}", f"+stage_overrides.genrm_eval=[{stage}]",
                                        f"tracking.uri=sqlite:///{pipe / 'mlflow.db'}"], validate_config=False)
        obj.steps = {"ev": PipelineStep(stage="genrm_eval")}
        with open_dict(cfg):
            cfg.steps["ev"] = PipelineStep(stage="genrm_eval")
        capfd.readouterr()
        execute("pipeline", *finalize(obj, cfg), [f"+stage_overrides.genrm_eval=[{stage}]"])
        captured = capfd.readouterr()
        seen += [captured.out, captured.err]
        assert srv.counts["echoauth"] >= 2 and srv.counts["echoauthok"] >= 2
    assert leaks(tmp_path / "eval", seen, [S_CLI, S_ENV]) == []
    assert leaks(tmp_path / "pipe", seen, [S_STAGE]) == []


def test_a_hydra_multirun_leaks_no_key(tmp_path, cli, python):
    """Hydra itself writes multirun.yaml and logs each job's overrides as they were given."""
    key = "sk-multirun-5e7a1c"
    r = cli([python, "-m", "plumbing.preflight", "-m", "llm=openai", "llm.base_url=http://127.0.0.1:9/v1",
             "llm.model=m", f"llm.api_key={key}", "dry_run=true", "seed=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}",
             f"output_dir={tmp_path / 'out'}"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "sweep" / "multirun.yaml").is_file() and "***REDACTED***" in r.stdout + r.stderr
    assert leaks(tmp_path, [r.stdout, r.stderr], [key]) == []


def test_hydra_s_own_refusal_does_not_repeat_a_key(tmp_path, cli, python):
    key = "sk-typo-9c1d2e3f"
    r = cli([python, "-m", "genrm.evaluate", f"genrm.apikey={key}", f"output_dir={tmp_path / 'o'}"])
    assert r.returncode == 2 and "genrm.apikey=***REDACTED***" in r.stderr
    assert key not in r.stdout + r.stderr
