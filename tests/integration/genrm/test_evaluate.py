"""genrm.evaluate end to end: a rule-following judge on a real loopback server (exact
numbers), a real `transformers serve` tiny model (garbage handled), bad input files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import genrm_fixtures as fx
from genrm.testing import rule_responder
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.integration


def _data_overrides(tmp: Path) -> list:
    files = {
        "helpsteer3": fx.write(tmp / "hs3.jsonl", fx.ralign_records()),
        "rationalerm_helpsteer3": fx.write(tmp / "rrm.jsonl", fx.rationalerm_records()),
        "rm_bench": fx.write(tmp / "rmb.jsonl", fx.rm_bench_records()),
        "judgebench": fx.write(tmp / "jb.jsonl", fx.judgebench_records()),
    }
    return [f"data=[{','.join(files)}]"] + [f"data.{k}.path={v}" for k, v in files.items()]


def _backend(role: str, url: str) -> list:
    return [f"llm@{role}=openai", f"{role}.base_url={url}", f"{role}.model={role}-model", f"{role}.max_retries=0"]


def _run(overrides):
    obj, cfg = finalize(*compose("genrm_eval", overrides))
    return execute("genrm_eval", obj, cfg)


class Recorder:
    """The rule judge, remembering every prompt it was sent."""

    def __init__(self):
        self.prompts = []

    def __call__(self, body):
        self.prompts.append(body["messages"][-1]["content"])
        return rule_responder(body)


def test_all_benchmark_schemas_with_exact_metrics_and_label_gated_metarm(tmp_path):
    judge = Recorder()
    with LoopbackServer(responder=judge) as srv:
        overrides = [f"output_dir={tmp_path / 'out'}", *_data_overrides(tmp_path),
                     *_backend("genrm", srv.base_url), *_backend("metarm", srv.base_url),
                     *_backend("metajudge", srv.base_url)]
        summary = _run(overrides)
        first_calls = srv.chat_requests
        hs = summary["benchmarks"]["helpsteer3"]
        assert (hs["n"], hs["label_correct"], hs["correct"], hs["incorrect"], hs["call_fail"], hs["parse_fail"]) == \
            (6, 4, 2, 1, 0, 1)
        assert hs["l_acc"] == pytest.approx(4 / 6) and hs["s_corr"] == pytest.approx(1 / 3)
        assert hs["f_score"] == pytest.approx(2 / 5)
        assert (hs["metarm_calls"], hs["metarm_calls_saved"]) == (4, 2)
        assert hs["by_subset"]["math"]["l_acc"] == 1.0 and hs["by_subset"]["chat"]["l_acc"] == pytest.approx(1 / 3)
        metarm_prompts = [p for p in judge.prompts if "[Reference judgment]" in p]
        assert len(metarm_prompts) == 4 + 2  # 4 label-correct samples; the ParseFail one re-asked twice
        assert not any("question 3" in p or "question 4" in p for p in metarm_prompts)  # label-wrong: never sent
        assert "<think>" not in "".join(metarm_prompts)  # golden thinking stripped

        rrm = summary["benchmarks"]["rationalerm_helpsteer3"]
        assert (rrm["n"], rrm["l_acc"], rrm["unlabeled"], rrm["valid"], rrm["skipped"]) == (2, 1.0, 1, 3, 0)
        assert rrm["precision"] == pytest.approx(2 / 3) and rrm["recall"] == pytest.approx(5 / 6)
        assert rrm["f1"] == pytest.approx((0.5 + 2 / 3 + 1) / 3) and rrm["ap"] == pytest.approx(5 / 6)
        assert rrm["s_corr"] is None and rrm["metarm_calls"] == 0  # no golden judgments

        rmb = summary["benchmarks"]["rm_bench"]
        assert rmb["n"] == 9 and rmb["l_acc"] == 1.0
        assert {k: v["n"] for k, v in rmb["by_difficulty"].items()} == {"easy": 3, "hard": 3, "normal": 3}
        jb = summary["benchmarks"]["judgebench"]
        assert (jb["n"], jb["l_acc"]) == (2, 0.5)

        # every raw output is kept, one line per sample
        rows = [json.loads(line) for line in (tmp_path / "out" / "helpsteer3" / "samples.jsonl").open()]
        assert [r["metarm_verdict"] for r in rows] == ["Correct", "Incorrect", "SkippedLabelMismatch",
                                                       "SkippedLabelMismatch", "ParseFail", "Correct"]
        assert rows[3]["model_judgment"] == "Both answers have merits and flaws." and rows[3]["model_pred"] is None

        # genrm.score on the suite's own files gives back the same numbers
        for name, b in summary["benchmarks"].items():
            obj, cfg = finalize(*compose("genrm_score", [f"input={tmp_path / 'out' / name / 'samples.jsonl'}",
                                                         f"output_dir={tmp_path / 'score' / name}", "tracking.enabled=false"]))
            rescored = execute("genrm_score", obj, cfg)
            for k in ("n", "l_acc", "s_corr", "f_score", "l_acc_ci", "valid", "precision", "ap", "ap_ci"):
                assert rescored.get(k) == b.get(k), (name, k)

        again = _run(overrides)  # a rerun is served from the cache
        assert srv.chat_requests == first_calls
        assert again["benchmarks"]["helpsteer3"]["f_score"] == hs["f_score"]
        assert again["calls"]["genrm"]["requests"] == 0


def test_position_swap_reports_consistency_and_requires_agreement(tmp_path):
    with LoopbackServer(responder=rule_responder) as srv:
        files = fx.write(tmp_path / "hs3.jsonl", fx.ralign_records())
        summary = _run([f"output_dir={tmp_path / 'out'}", "data=helpsteer3", f"data.helpsteer3.path={files}",
                        "judging.swap=true", *_backend("genrm", srv.base_url)])
        assert srv.chat_requests == 12  # both orders
    hs = summary["benchmarks"]["helpsteer3"]
    assert hs["swap_pairs"] == 6 and hs["swap_consistency"] == pytest.approx(5 / 6)  # the garbage one has no verdict
    assert hs["label_correct"] == 4 and hs["s_corr"] is None  # no MetaRM configured


def test_tiny_model_as_genrm_and_metarm_through_real_transformers_serve(tmp_path, tiny_model):
    out = tmp_path / "out"
    served = ["llm@genrm=transformers_serve", f"genrm.model={tiny_model}", "genrm.sampling.max_tokens=16",
              "llm@metarm=transformers_serve", f"metarm.model={tiny_model}", "metarm.sampling.max_tokens=16",
              "llm@metajudge=transformers_serve", f"metajudge.model={tiny_model}", "metajudge.sampling.max_tokens=16"]
    summary = _run([f"output_dir={out}", *_data_overrides(tmp_path), *served])
    for name, b in summary["benchmarks"].items():
        if "n" in b:
            assert 0 <= b["label_correct"] <= b["n"]
            assert b["label_correct"] == b["correct"] + b["incorrect"] + b["call_fail"] + b["parse_fail"] + b["unjudged"]
        rows = [json.loads(line) for line in (out / name / "samples.jsonl").open()]
        for r in rows:  # garbage from a random model lands as a wrong label, never as an error
            assert r["genrm_error"] is None and isinstance(r["model_judgment"], str)
            assert r["label_correct"] in (True, False, None)
            if r["model_pred"] is None and r["gt_label"]:
                assert r["label_correct"] is False
    assert summary["benchmarks"]["helpsteer3"]["n"] == 6
    assert summary["calls"]["genrm"]["requests"] > 0
    assert (out / "logs" / "genrm_server.log").exists() and not (out / "logs" / "metarm_server.log").exists()

    again = _run([f"output_dir={out}", *_data_overrides(tmp_path), *served])
    assert again["calls"]["genrm"]["requests"] == 0  # zero server calls, no server started
    untimed = lambda b: {k: {f: v for f, v in x.items() if f != "seconds"} for k, x in b.items()}  # noqa: E731
    assert untimed(again["benchmarks"]) == untimed(summary["benchmarks"])


@pytest.mark.parametrize(
    "content,where",
    [
        ('{"id": "x", "conversations": [{"role": "user", "content": "q"}], "response_A": "a"', ":2: field '<json>'"),
        ('{"id": "x", "conversations": [{"role": "user", "content": "q"}], "response_B": "b", "gt_label": "A"}',
         ":2: field 'response_A'"),
        ('{"id": "x", "conversations": [{"role": "user", "content": "q"}], "response_A": "a", "response_B": "b", '
         '"gt_label": "tie"}', ":2: field 'gt_label'"),
        (None, "no usable records"),
    ],
)
def test_bad_input_exits_2_names_file_line_field_and_leaves_no_summary(tmp_path, cli, python, content, where):
    good = json.dumps(fx.ralign_records()[0])
    path = tmp_path / "bad.jsonl"
    path.write_text("" if content is None else f"{good}\n{content}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text('{"stale": true}')
    proc = cli([python, "-m", "genrm.evaluate", f"output_dir={out}", "data=helpsteer3", f"data.helpsteer3.path={path}",
                "llm@genrm=openai", "genrm.base_url=http://127.0.0.1:9/v1", "genrm.model=g"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert str(path) in proc.stderr and where in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "summary.json").exists()


def test_skip_mode_counts_bad_records_and_goes_on(tmp_path):
    lines = [json.dumps(r) for r in fx.ralign_records()] + ['{"broken', '{"id": 1}']
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with LoopbackServer(responder=rule_responder) as srv:
        summary = _run([f"output_dir={tmp_path / 'out'}", "data=helpsteer3", f"data.helpsteer3.path={path}",
                        "data.helpsteer3.on_bad_record=skip", *_backend("genrm", srv.base_url)])
    hs = summary["benchmarks"]["helpsteer3"]
    assert hs["n"] == 6 and hs["load"]["skipped"] == 2 and len(hs["load"]["problems"]) == 2


def test_benchmarks_load_through_the_hub_code_path_from_a_local_repo_folder(tmp_path):
    repo = tmp_path / "R-Align-BMK"
    fx.write(repo / "data" / "helpsteer3_aug.jsonl", fx.ralign_records())
    with LoopbackServer(responder=rule_responder) as srv:
        summary = _run([f"output_dir={tmp_path / 'out'}", "data=helpsteer3", f"data.helpsteer3.hub_id={repo}",
                        *_backend("genrm", srv.base_url)])
    assert summary["benchmarks"]["helpsteer3"]["load"]["path"].startswith("hub:")
    assert summary["benchmarks"]["helpsteer3"]["l_acc"] == pytest.approx(4 / 6)


def test_metarm_calls_start_while_the_genrm_is_still_judging(tmp_path):
    arrivals = []

    def responder(body):
        arrivals.append("metarm" if "[Reference judgment]" in body["messages"][-1]["content"] else "genrm")
        return rule_responder(body)

    records = [dict(r, id=f"{r['id']}-{k}") for k in range(5) for r in fx.ralign_records()]  # 30 samples
    path = fx.write(tmp_path / "hs3.jsonl", records)
    with LoopbackServer(latency_s=0.05, responder=responder) as srv:
        summary = _run([f"output_dir={tmp_path / 'out'}", "data=helpsteer3", f"data.helpsteer3.path={path}",
                        *_backend("genrm", srv.base_url), "genrm.concurrency=2", *_backend("metarm", srv.base_url)])
    assert summary["benchmarks"]["helpsteer3"]["metarm_calls"] == 20
    last_genrm = max(i for i, kind in enumerate(arrivals) if kind == "genrm")
    first_metarm = arrivals.index("metarm")
    assert first_metarm < last_genrm  # the MetaRM did not wait for the whole GenRM batch


def test_model_items_parse_mode_reads_the_genrm_list_without_decomposing(tmp_path):
    judge = Recorder()
    path = fx.write(tmp_path / "rrm.jsonl", fx.rationalerm_records())
    with LoopbackServer(responder=judge) as srv:
        summary = _run([f"output_dir={tmp_path / 'out'}", "data=rationalerm_helpsteer3",
                        f"data.rationalerm_helpsteer3.path={path}", "atomic.model_items=parse",
                        *_backend("genrm", srv.base_url), *_backend("metajudge", srv.base_url)])
    rrm = summary["benchmarks"]["rationalerm_helpsteer3"]
    # the rule judge writes prose, not a list: nothing to match, and no decomposition call was made
    assert (rrm["valid"], rrm["skipped_by_reason"]) == (0, {"empty_model_list": 3})
    assert not any("[Evaluation]" in p for p in judge.prompts)


@pytest.mark.parametrize("backend", ["transformers", "transformers_serve"])
@pytest.mark.parametrize("model", ["missing", "corrupt"])
def test_a_genrm_that_does_not_load_fails_the_stage_before_any_score(tmp_path, cli, python, tiny_model, model,
                                                                     backend):
    """Not 8 of 8 backend errors scored as wrong verdicts with exit 0: the stage stops with
    the model's path, exit 2 and no traceback (in process, or a server the stage starts that
    dies loading it: the default backend), its MLflow run FAILED and no summary."""
    import shutil

    from mlflow.tracking import MlflowClient

    path = {"missing": tmp_path / "missing"}.get(model)
    if path is None:  # a checkpoint whose weights are garbage
        path = tmp_path / "corrupt"
        shutil.copytree(tiny_model, path)
        for weights in path.glob("*.safetensors"):
            weights.write_bytes(b"not a safetensors file")
    data = fx.write(tmp_path / "hs3.jsonl", fx.ralign_records())
    out, db = tmp_path / "out", tmp_path / "mlflow.db"
    proc = cli([python, "-m", "genrm.evaluate", f"output_dir={out}", "data=helpsteer3", f"data.helpsteer3.path={data}",
                f"llm@genrm={backend}", f"genrm.model={path}", "genrm.sampling.max_tokens=8",
                f"tracking.uri=sqlite:///{db}"], env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"the model {path} does not load" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not (out / "summary.json").exists()
    runs = MlflowClient(f"sqlite:///{db}").search_runs(
        [e.experiment_id for e in MlflowClient(f"sqlite:///{db}").search_experiments()])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_genrm_call_failures_over_the_budget_fail_the_stage_with_outputs_written(tmp_path, cli, python):
    """2 of 6 GenRM calls fail (HTTP 400, not retried): L-Acc counts them wrong, L-Acc over the
    answered ones does not, the table shows them, and 33 % > max_failure_rate=5 % ends the
    stage with exit 1 and a FAILED run, summary and samples written. A budget of 50 % passes."""
    from mlflow.tracking import MlflowClient

    records = fx.ralign_records()
    for r in records[:2]:
        r["conversations"][-1]["content"] += " [fault:400]"
    records[2]["conversations"][-1]["content"] += " [fault:length]"  # cut before its verdict
    data = fx.write(tmp_path / "hs3.jsonl", records)
    with LoopbackServer(responder=rule_responder) as srv:
        def run(out, *extra):
            db = out / "mlflow.db"
            proc = cli([python, "-m", "genrm.evaluate", f"output_dir={out}", "data=helpsteer3",
                        f"data.helpsteer3.path={data}", *_backend("genrm", srv.base_url),
                        f"tracking.uri=sqlite:///{db}", *extra])
            client = MlflowClient(f"sqlite:///{db}")
            runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
            return proc, [r.info.status for r in runs]

        proc, status = run(tmp_path / "strict")
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert status == ["FAILED"]
        assert "genrm: 2 of 6 calls failed (33.3% > max_failure_rate=0.05)" in proc.stderr
        summary = json.loads((tmp_path / "strict" / "summary.json").read_text())["benchmarks"]["helpsteer3"]
        assert summary["genrm_call_failures"] == 2
        assert summary["l_acc"] == pytest.approx(summary["label_correct"] / 6)
        assert summary["l_acc_answered"] == pytest.approx(summary["label_correct"] / 4)
        assert summary["genrm_truncated"] == 1 and summary["genrm_no_verdict"] == 2  # r4 writes no verdict
        assert re.search(r"helpsteer3 .* 2/2/1 ", proc.stdout), proc.stdout  # CallFail/NoVerdict/Truncated
        assert "GenRM CallFail/NoVerdict/Truncated" in proc.stdout and "L-Acc answered" in proc.stdout
        proc, status = run(tmp_path / "lenient", "max_failure_rate=0.5")
        assert proc.returncode == 0 and status == ["FINISHED"], proc.stderr[-2000:]


def test_sigterm_ends_the_run_killed_quietly(tmp_path, python):
    """A Slurm time limit or scancel sends TERM: the stage stops at once, exit 143, its MLflow
    run KILLED (not RUNNING forever, not FAILED), no traceback; the calls done are cached."""
    import signal
    import subprocess
    import time

    from mlflow.tracking import MlflowClient

    data = fx.write(tmp_path / "hs3.jsonl", fx.ralign_records())
    out, db = tmp_path / "out", tmp_path / "mlflow.db"
    with LoopbackServer(responder=rule_responder, latency_s=30) as srv:
        proc = subprocess.Popen([python, "-m", "genrm.evaluate", f"output_dir={out}", "data=helpsteer3",
                                 f"data.helpsteer3.path={data}", *_backend("genrm", srv.base_url),
                                 f"tracking.uri=sqlite:///{db}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 120
        while srv.chat_requests == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    client = MlflowClient(f"sqlite:///{db}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["KILLED"]


def test_a_model_that_does_not_load_is_tried_once_and_stops_every_caller(tmp_path):
    """Threads sharing the cache and backend all stop with the load error (not a scored
    BACKEND_ERROR for those that waited on the failing call), and the load is not retried."""
    import threading

    from plumbing.errors import ModelLoadError
    from plumbing.llm.cache import CachedBackend, LLMCache
    from plumbing.llm.transformers_local import TransformersBackend
    from plumbing.llm.types import ChatRequest

    inner = TransformersBackend(str(tmp_path / "missing"), device="cpu")
    tries = []
    load = inner._load
    inner._load = lambda: (tries.append(1), load())
    backend = CachedBackend(inner, LLMCache(tmp_path / "c.sqlite"))
    req = [ChatRequest.of([{"role": "user", "content": "same question"}])]
    errors = []

    def call():
        try:
            backend.complete(req)
        except ModelLoadError as e:
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    call()
    assert len(errors) == 5 and len(tries) == 1


def test_a_rerun_ends_the_run_a_killed_process_left_running(tmp_path, python, cli):
    """SIGKILL leaves the run RUNNING (nothing can end it); the rerun into the same folder
    marks it KILLED (superseded by the rerun) once its process is gone, and finishes itself.
    A detached run (a submitted job's) and a run of another folder are left alone."""
    import signal
    import subprocess
    import time

    from mlflow.tracking import MlflowClient

    from plumbing.tracking import OWNER_TAG, WORKDIR_TAG

    data = fx.write(tmp_path / "hs3.jsonl", fx.ralign_records())
    out, uri = tmp_path / "out", f"sqlite:///{tmp_path / 'mlflow.db'}"
    with LoopbackServer(responder=rule_responder, latency_s=1.0) as srv:
        args = [python, "-m", "genrm.evaluate", f"output_dir={out}", "data=helpsteer3", f"data.helpsteer3.path={data}",
                *_backend("genrm", srv.base_url), f"tracking.uri={uri}", "tracking.experiment=e"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while srv.chat_requests == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("e").experiment_id
        [killed] = client.search_runs([exp])
        assert killed.info.status == "RUNNING"
        detached = client.create_run(exp, tags={WORKDIR_TAG: str(out), OWNER_TAG: "detached"}).info.run_id
        other = client.create_run(exp, tags={WORKDIR_TAG: str(tmp_path / "x"), OWNER_TAG: killed.data.tags[OWNER_TAG]})
        r = cli(args)
        assert r.returncode == 0, r.stderr[-2000:]
    runs = {x.info.run_id: x for x in client.search_runs([exp])}
    rerun = next(x for x in runs.values() if x.info.run_id not in (killed.info.run_id, detached, other.info.run_id))
    assert runs[killed.info.run_id].info.status == "KILLED"
    assert runs[killed.info.run_id].data.tags["ralign.superseded_by"] == rerun.info.run_id
    assert rerun.info.status == "FINISHED"
    assert runs[detached].info.status == "RUNNING" and runs[other.info.run_id].info.status == "RUNNING"


def test_exported_files_give_the_papers_scripts_the_suite_s_numbers(tmp_path):
    """export.format=ralign writes R-Align's result_metarm/<bench>__<model>_metarm_<metarm>.jsonl
    (swap judging: the verdict that counts); export.format=rationalerm writes RationaleRM's
    matcher outputs. Read back the way those papers' scripts read them (genrm.score's ralign
    reading and its reference profile, both checked against the scripts), they give the
    suite's own numbers."""
    with LoopbackServer(responder=rule_responder) as srv:
        common = [*_data_overrides(tmp_path), *_backend("genrm", srv.base_url), *_backend("metarm", srv.base_url),
                  *_backend("metajudge", srv.base_url), "judging.swap=true"]
        ralign = _run([f"output_dir={tmp_path / 'a'}", *common, "export.format=ralign", "genrm.model=Org/My GenRM"])
        rrm = _run([f"output_dir={tmp_path / 'b'}", *common, "export.format=rationalerm"])
    hs = ralign["benchmarks"]["helpsteer3"]
    [path] = hs["export"]
    assert path.endswith("export/result_metarm/helpsteer3__Org_My_GenRM_metarm_metarm-model.jsonl")
    obj, cfg = finalize(*compose("genrm_score", [f"input={path}", "format=ralign", f"output_dir={tmp_path / 's1'}",
                                                 "tracking.enabled=false"]))
    back = execute("genrm_score", obj, cfg)
    for k in ("n", "label_correct", "l_acc", "s_corr", "f_score", "call_fail", "parse_fail"):
        assert back[k] == hs[k], k
    own = rrm["benchmarks"]["rationalerm_helpsteer3"]
    [path] = own["export"]
    obj, cfg = finalize(*compose("genrm_score", [f"input={path}", "format=rationalerm", f"output_dir={tmp_path / 's2'}",
                                                 "tracking.enabled=false"]))
    back = execute("genrm_score", obj, cfg)
    assert back["atomic_rules"]["profile"] == "reference" and back["valid"] == own["valid"] > 0
    for k in ("precision", "recall", "f1", "ap"):
        assert back[k] == pytest.approx(own[k]), k
