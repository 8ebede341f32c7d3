"""Checkpoint curves (issue 20, the R-Align paper's Figure 2): a real tiny policy_train keeps
an HF checkpoint every step, downstream_eval evaluates each at its training step, the final
model last and as it would be alone, and a crash midway resumes without the checkpoints done."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from plumbing.config.hydra_app import compose, execute, finalize

pytestmark = pytest.mark.integration


def _run(stage, overrides):
    obj, cfg = finalize(*compose(stage, overrides))
    return execute(stage, obj, cfg)


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    """A tiny policy trained 3 steps, a checkpoint kept every step: (run id, tracking uri, output dir)."""
    out = tmp_path_factory.mktemp("policy")
    summary = _run("policy_train", ["experiment=smoke_policy", f"output_dir={out}", "algo.save_steps=1"])
    return summary["mlflow_run_id"], summary["tracking_uri"], out


def _downstream(out, ref, uri, *extra):
    torch.manual_seed(1234)  # the process's random state as a fresh one would have it: comparable samples
    return _run("downstream_eval", ["suite=toy", f"output_dir={out}", f"model.path={ref}",
                                    f"policy_tracking_uri={uri}", "limit=12", *extra])


def _history(out, key, experiment="downstream_eval"):
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])[0]
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)], run


def test_training_records_each_kept_checkpoint_with_its_step_and_they_load(policy):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_id, uri, out = policy
    tags = MlflowClient(uri).get_run(run_id).data.tags
    kept = json.loads(Path(tags["checkpoints_file"]).read_text())["checkpoints"]
    assert [(k["step"], k["final"]) for k in kept] == [(1, False), (2, False), (3, True)]
    assert kept[-1]["path"] == str(Path(tags["checkpoint_path"]).resolve()) and tags["checkpoint_steps"] == "1,2,3"
    for k in kept:  # each an HF model with its chat template: what a downstream generator loads
        assert AutoModelForCausalLM.from_pretrained(k["path"]).num_parameters() > 0
        assert AutoTokenizer.from_pretrained(k["path"]).chat_template


def test_downstream_over_checkpoints_logs_each_at_its_step_the_final_last_and_resumes(policy, tmp_path):
    run_id, uri, _ = policy
    alone = tmp_path / "alone"
    _downstream(alone, f"runs:/{run_id}", uri)
    curve = tmp_path / "curve"
    summary = _downstream(curve, f"runs:/{run_id}", uri, "checkpoints.evaluate=all")

    points, run = _history(curve, "downstream/toy_math")
    assert [s for s, _ in points] == [1, 2, 3]  # one point per kept model, at its training step
    assert [s for s, _ in _history(curve, "downstream/avg")[0]] == [1, 2, 3]
    alone_points, alone_run = _history(alone, "downstream/toy_math")
    # the latest value (what the analysis tables read) is the final model's, as evaluated alone
    assert run.data.metrics["downstream/toy_math"] == alone_run.data.metrics["downstream/toy_math"] == points[-1][1]
    assert run.data.metrics["downstream/avg"] == alone_run.data.metrics["downstream/avg"]
    # ... down to each sampled answer: the checkpoints before it did not move its random state
    final_samples = (curve / "toy_math" / "samples.jsonl").read_text()
    assert final_samples == (alone / "toy_math" / "samples.jsonl").read_text()
    assert [r["step"] for r in summary["checkpoints"]] == [1, 2] and summary["step"] == 3
    for step in (1, 2):  # each checkpoint's results kept in the output folder
        kept = json.loads((curve / "checkpoints" / f"step-{step}" / "summary.json").read_text())
        assert kept["checkpoint"]["step"] == step and (curve / "checkpoints" / f"step-{step}" / "toy_math"
                                                       / "samples.jsonl").is_file()
    assert (curve / "checkpoints" / "step-1" / "toy_math" / "samples.jsonl").read_text() != final_samples

    # A crash after the first checkpoint: step 2 and the final model were not written.
    shutil.rmtree(curve / "checkpoints" / "step-2")
    (curve / "summary.json").unlink()
    done = (curve / "checkpoints" / "step-1" / "summary.json").stat().st_mtime_ns
    again = _downstream(curve, f"runs:/{run_id}", uri, "checkpoints.evaluate=all",
                        "tracking.experiment=resumed")  # a fresh run: the done checkpoint's scores logged again
    assert [(r["step"], r["resumed"]) for r in again["checkpoints"]] == [(1, True), (2, False)]
    assert (curve / "checkpoints" / "step-1" / "summary.json").stat().st_mtime_ns == done
    assert _history(curve, "downstream/toy_math", "resumed")[0] == points
    assert (curve / "toy_math" / "samples.jsonl").read_text() == final_samples
    # resumed in the run that has the checkpoints' scores: each is logged once
    _, rerun = _history(curve, "downstream/toy_math", "resumed")
    _downstream(curve, f"runs:/{run_id}", uri, "checkpoints.evaluate=all", "tracking.experiment=resumed",
                f"tracking.run_id={rerun.info.run_id}")
    assert [s for s, _ in _history(curve, "downstream/toy_math", "resumed")[0] if s < 3] == [1, 2]


def test_only_some_tasks_on_checkpoints_log_no_suite_average_there(policy, tmp_path):
    run_id, uri, _ = policy
    out = tmp_path / "subset"
    _run("downstream_eval", ["suite=smoke_toy", f"output_dir={out}", f"model.path=runs:/{run_id}",
                             f"policy_tracking_uri={uri}", "limit=2", "checkpoints.evaluate=all",
                             "checkpoints.tasks=[toy_math]", "sandbox.allow_weaker=true"])
    assert [s for s, _ in _history(out, "downstream/toy_math")[0]] == [1, 2, 3]
    assert [s for s, _ in _history(out, "downstream/avg")[0]] == [3]  # the suite's average: the final model only
    assert [s for s, _ in _history(out, "downstream/smoke_math")[0]] == [3]
    assert sorted(p.name for p in (out / "checkpoints" / "step-1").iterdir() if p.is_dir()) == ["toy_math"]


def test_checkpoints_of_a_model_that_is_no_training_run_are_refused_before_any_work(policy, tmp_path, cli, python,
                                                                                     tiny_model):
    run_id, uri, out = policy
    proc = cli([python, "-m", "downstream_eval.run", "suite=toy", f"output_dir={tmp_path / 'a'}",
                f"model.path={tiny_model}", "checkpoints.evaluate=all"])  # a model, not a training run
    assert proc.returncode == 2 and "is not the final checkpoint of a training run that kept checkpoints" \
        in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "a" / "llm_cache.sqlite").exists()  # nothing generated
    # a training run without kept checkpoints (no save_steps)
    plain = tmp_path / "plain"
    s = _run("policy_train", ["experiment=smoke_policy", f"output_dir={plain}", "algo.max_steps=1"])
    proc = cli([python, "-m", "downstream_eval.run", "suite=toy", f"output_dir={tmp_path / 'b'}",
                f"model.path=runs:/{s['mlflow_run_id']}", f"policy_tracking_uri={s['tracking_uri']}",
                "checkpoints.evaluate=all"])
    assert proc.returncode == 2 and "recorded no kept checkpoints" in proc.stderr, proc.stderr[-2000:]
    proc = cli([python, "-m", "downstream_eval.run", "suite=toy", f"output_dir={tmp_path / 'c'}",
                "predictions=/dev/null", "checkpoints.evaluate=bogus"])
    assert proc.returncode == 2 and "checkpoints.evaluate" in proc.stderr
    # the final checkpoint's path (not runs:/) finds the record beside it
    tags = MlflowClient(uri).get_run(run_id).data.tags
    summary = _downstream(tmp_path / "d", tags["checkpoint_path"], uri, "checkpoints.evaluate=all", "limit=2")
    assert [r["step"] for r in summary["checkpoints"]] == [1, 2]
