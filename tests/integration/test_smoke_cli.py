"""Pipelines as a user runs them: `ralign run experiment=smoke_chain` (two steps, the second
using the first one's model), failures, dry runs; the README's main job `ralign run
experiment=smoke` end to end is in test_smoke_experiment.py (slow)."""

from __future__ import annotations

import json
import re

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration


def test_pipeline_runs_end_to_end_and_a_rerun_pays_nothing(tmp_path, cli, ralign):
    out = tmp_path / "smoke"
    first = cli([ralign, "run", "experiment=smoke_chain", f"output_dir={out}"])
    assert first.returncode == 0, first.stderr[-3000:]
    assert "mlflow ui --backend-store-uri" in first.stdout
    assert re.search(r"=== \[2/2\] downstream \(downstream_eval\) · \d+m\d\ds elapsed, about \d+m\d\ds left ===",
                     first.stdout), first.stdout[-3000:]
    log = (out / "pipeline.log").read_text()  # what it printed is kept beside Hydra's own lines
    assert "=== [1/2] preflight (preflight)" in log and "step" in log and "mlflow run" in log
    steps = json.loads((out / "pipeline.json").read_text())
    assert steps["preflight"]["status"] == "ok"
    summary = json.loads((out / "preflight" / "summary.json").read_text())
    assert summary["succeeded"] == summary["requests"] == 32 and summary["calls_sent"] == 32

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("smoke_chain")
    runs = {r.data.tags["stage"]: r for r in client.search_runs([exp.experiment_id])}
    assert runs["pipeline"].info.status == runs["preflight"].info.status == "FINISHED"
    assert runs["preflight"].data.tags["mlflow.parentRunId"] == runs["pipeline"].info.run_id

    assert steps["downstream"]["status"] == "ok"
    down = json.loads((out / "downstream" / "summary.json").read_text())
    assert {"stem", "code", "if"} <= set(down["domains"])  # general: judged by the random tiny model, maybe invalid
    assert down["policy_model"] == str(out / "preflight" / "models" / "tiny-qwen3")  # the preflight step's model
    assert runs["downstream_eval"].data.tags["mlflow.parentRunId"] == runs["pipeline"].info.run_id

    server_log = out / "preflight" / "logs" / "preflight_server.log"
    log_size = server_log.stat().st_size
    again = cli([ralign, "run", "experiment=smoke_chain", f"output_dir={out}"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert {n: s["status"] for n, s in json.loads((out / "pipeline.json").read_text()).items()} == \
        {"preflight": "skipped", "downstream": "skipped"}  # same configs, finished runs
    forced = cli([ralign, "run", "experiment=smoke_chain", f"output_dir={out}", "force=true"])
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert re.search(r"=== \[1/2\] preflight \(preflight\) · 0m\d\ds elapsed, about \d+m\d\ds left", forced.stdout)
    summary = json.loads((out / "preflight" / "summary.json").read_text())
    assert summary["calls_sent"] == 0 and summary["cache_hits"] == 32  # run again: every answer from the cache
    assert server_log.stat().st_size == log_size  # no server was even started
    # the reruns continued the folder's parent run (named for what ran, its seed and when), not empty new ones
    [parent] = client.search_runs([exp.experiment_id], "tags.stage = 'pipeline'")
    assert parent.info.run_id == runs["pipeline"].info.run_id and parent.info.status == "FINISHED"
    assert parent.info.run_name.startswith("smoke_chain-s0-")
    assert parent.data.tags.get("ralign.params_changed") == "force"  # its params keep the first values
    children = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(r.data.tags["stage"] for r in children) == ["downstream_eval"] * 2 + ["preflight"] * 2  # first, forced


def test_a_failing_step_fails_the_pipeline_and_its_run(tmp_path, cli, ralign):
    out = tmp_path / "bad"
    proc = cli([ralign, "run", "experiment=smoke_chain", f"output_dir={out}",
                "steps.preflight.overrides=['llm=openai','llm.base_url=http://127.0.0.1:9/v1','llm.model=x',"
                "'llm.max_retries=0','n_requests=2','model=qwen3_8b']"])
    assert proc.returncode == 2
    assert "pipeline step 'preflight' failed" in proc.stderr and "Traceback" not in proc.stderr
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("smoke_chain").experiment_id])
    assert {r.data.tags["stage"]: r.info.status for r in runs} == {"pipeline": "FAILED", "preflight": "FAILED"}
    assert json.loads((out / "pipeline.json").read_text())["downstream"]["status"] == "not run"
    assert json.loads((out / "pipeline.json").read_text())["preflight"]["status"] == "failed"


def test_ralign_help_and_stage_listing(cli, ralign):
    assert "ralign run experiment=NAME" in cli([ralign, "--help"]).stdout
    stages = cli([ralign, "stages"]).stdout
    assert "preflight" in stages and "python -m plumbing.pipeline" in stages


def test_dry_run_validates_every_step_prints_the_commands_and_does_no_work(tmp_path, cli, ralign):
    out = tmp_path / "dry"
    proc = cli([ralign, "run", "experiment=smoke", "dry_run=true", f"output_dir={out}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"python -m plumbing.preflight model=tiny_qwen3 llm=transformers_serve n_requests=32 output_dir={out}/preflight" in proc.stdout
    assert not (out / "mlflow.db").exists() and not (out / "preflight").exists()
    for step in ("genrm_ralign", "eval_ralign", "policy_ralign", "downstream_ralign", "correlate", "compare"):
        assert f"=== {step} (" in proc.stdout  # the whole paper in miniature, every step validated
    bad = cli([ralign, "run", "experiment=smoke", "dry_run=true", f"output_dir={out}",
               "steps.preflight.overrides=['llm.concurrency=0']"])
    assert bad.returncode == 2 and "llm.concurrency" in bad.stderr
