"""Tracking against a real sqlite MLflow store: runs, params, tags, parents, failures, secrets."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from plumbing import tracking

SECRET = "sk-live-Q9f8e7d6c5b4a3"
ENV_SECRET = "hf_ENVSECRET_0123456789"


def _client(tmp_path: Path) -> MlflowClient:
    return MlflowClient(tracking.tracking_uri(None, tmp_path))


def _everything_logged(client: MlflowClient, run_id: str, tmp_path: Path) -> str:
    """Params, tags, metrics names and every artifact's text of a run, as one string."""
    run = client.get_run(run_id)
    parts = [repr(run.data.params), repr(run.data.tags), repr(run.data.metrics)]
    dst = tmp_path / f"dl-{run_id}"
    local = mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(dst),
                                                tracking_uri=client._tracking_client.tracking_uri)
    for f in Path(local).rglob("*"):
        if f.is_file():
            parts.append(f.read_text(errors="replace"))
    return "\n".join(parts)


def _open(tmp_path: Path, **kw):
    args = dict(uri=tracking.tracking_uri(None, tmp_path), experiment="exp", run_name="r",
                tags=tracking.run_tags("genrm_eval", "exp", 3, "sweep-7"))
    args.update(kw)
    return tracking.start_run(**args)


def test_run_has_params_tags_config_and_finishes(tmp_path):
    config = {"stage": "genrm_eval", "seed": 3, "llm": {"model": "m", "concurrency": 64},
              "long": "x" * 900, "steps": [1, 2]}
    with _open(tmp_path, config=config, overrides=["seed=3"]) as run:
        run.log_metrics({"helpsteer3/l_acc": 0.75, "nan": float("nan"), "flag": True})
        run_id = run.run_id
    client = _client(tmp_path)
    r = client.get_run(run_id)
    assert r.info.status == "FINISHED"
    assert r.data.params["llm.model"] == "m" and r.data.params["llm.concurrency"] == "64"
    assert r.data.params["steps"] == "[1, 2]"
    assert len(r.data.params["long"]) == 500  # truncated for old servers
    assert r.data.metrics == {"helpsteer3/l_acc": 0.75}  # NaN and bools are not metrics
    tags = r.data.tags
    assert (tags["stage"], tags["experiment"], tags["seed"], tags["sweep_id"]) == ("genrm_eval", "exp", "3", "sweep-7")
    arts = {a.path for a in client.list_artifacts(run_id, "config")}
    assert arts == {"config/resolved.yaml", "config/overrides.txt"}
    # Embedded default: sqlite and artifacts inside the output directory, nothing in the cwd.
    assert (tmp_path / "mlflow.db").exists()
    assert client.get_experiment(r.info.experiment_id).artifact_location.startswith(tmp_path.as_uri())


def test_child_links_to_parent_run(tmp_path):
    with _open(tmp_path, run_name="pipeline", fluent=False) as parent:
        with _open(tmp_path, run_name="child", parent_run_id=parent.run_id) as child:
            child_id = child.run_id
        # the parent stays open while its child runs and after
        assert _client(tmp_path).get_run(parent.run_id).info.status == "RUNNING"
    client = _client(tmp_path)
    assert client.get_run(child_id).data.tags[tracking.PARENT_TAG] == parent.run_id
    assert client.get_run(parent.run_id).info.status == "FINISHED"


def test_a_run_that_raises_is_failed_not_finished(tmp_path):
    with pytest.raises(RuntimeError):
        with _open(tmp_path) as run:
            run_id = run.run_id
            raise RuntimeError("judge exploded")
    r = _client(tmp_path).get_run(run_id)
    assert r.info.status == "FAILED"
    assert "judge exploded" in r.data.tags["error"]


def test_ctrl_c_marks_the_run_killed(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with _open(tmp_path) as run:
            run_id = run.run_id
            raise KeyboardInterrupt
    assert _client(tmp_path).get_run(run_id).info.status == "KILLED"


def test_no_secret_reaches_params_tags_or_artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", ENV_SECRET)
    config = {"llm": {"api_key": SECRET, "base_url": "http://h/v1"}, "note": f"uses {ENV_SECRET}"}
    secret_file = tmp_path / "samples.jsonl"
    secret_file.write_text(f'{{"text": "the key is {SECRET}"}}\n')
    with _open(tmp_path, config=config, overrides=[f"llm.api_key={SECRET}"],
               tags={"stage": "s", "leak": SECRET}) as run:
        run.log_text(f"log line with {ENV_SECRET}", "logs/x.txt")
        run.log_dict({"api_key": SECRET, "ok": 1}, "d.json")
        run.log_artifact(secret_file)
        run.set_tags({"another": f"Bearer {SECRET}"})
        run.log_params({"extra": SECRET})
        run_id = run.run_id
    logged = _everything_logged(_client(tmp_path), run_id, tmp_path)
    assert "REDACTED" in logged
    assert SECRET not in logged and ENV_SECRET not in logged
    assert SECRET in secret_file.read_text()  # the user's own file is left as it was


def test_slurm_and_git_tags(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    tags = tracking.run_tags("policy_train", "e", 1, None)
    assert tags["slurm_job_id"] == "4242" and tags["slurm_array_task_id"] == "3"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
    if head.returncode == 0:
        assert tags["git_commit"] == head.stdout.strip() == tags["mlflow.source.git.commit"]


def test_disabled_tracking_logs_nothing(tmp_path):
    with _open(tmp_path, enabled=False, config={"a": 1}) as run:
        run.log_metrics({"m": 1.0})
        assert run.run_id is None
    assert not (tmp_path / "mlartifacts").exists()


def test_failed_stage_from_the_command_line_is_failed_and_leaks_no_secret(tmp_path, cli, python):
    """A real stage run whose judge is unreachable: exit 2, run FAILED, key masked everywhere."""
    out = tmp_path / "run"
    proc = cli([python, "-m", "plumbing.preflight", f"output_dir={out}", "llm=openai",
                "llm.base_url=http://127.0.0.1:9/v1", "llm.model=x", "llm.max_retries=0", "n_requests=2",
                f"llm.api_key={SECRET}", "model=qwen3_8b"], env={"SOME_PROVIDER_API_KEY": ENV_SECRET})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "only 0/2 requests succeeded" in proc.stderr
    client = _client(out)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.stage = 'preflight'")
    assert len(runs) == 1 and runs[0].info.status == "FAILED"
    logged = _everything_logged(client, runs[0].info.run_id, tmp_path)
    on_disk = "\n".join(f.read_text(errors="replace") for f in out.rglob("*") if f.is_file() and f.suffix != ".db")
    for text in (logged, on_disk, proc.stdout, proc.stderr):
        assert SECRET not in text and ENV_SECRET not in text
    assert (out / "summary.json").exists()  # computed before the failure was raised


def test_a_job_stopped_by_a_signal_ends_its_run_killed_and_a_requeue_reopens_it(tmp_path):
    """The job script's signal trap (time limit, preemption) runs the finishing step with 143:
    the run ends KILLED, not RUNNING forever; a requeued job sets it RUNNING again."""
    import signal
    import subprocess
    import sys
    import time

    from plumbing.launch.slurm import JobSpec, shell_join, write

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("jobs")).info.run_id
    finish = shell_join([sys.executable, "-m", "plumbing.launch.finish", "--tracking-uri", uri, "--run-id", run_id])
    script = write(JobSpec(name="t", command="sleep 60", job_dir=str(tmp_path / "job"), finish=finish),
                   tmp_path / "job" / "job.sbatch")
    proc = subprocess.Popen(["bash", str(script)], cwd=tmp_path, start_new_session=True)
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGTERM)  # as Slurm signals a job at its time limit: every process
    assert proc.wait(60) == 143
    assert client.get_run(run_id).info.status == "KILLED"
    assert client.get_run(run_id).data.tags["job_exit_code"] == "143"
    proc = subprocess.Popen(["bash", str(script)], cwd=tmp_path, env={**os.environ, "SLURM_RESTART_COUNT": "1"},
                            start_new_session=True)
    deadline = time.time() + 30
    while client.get_run(run_id).info.status != "RUNNING" and time.time() < deadline:
        time.sleep(0.2)
    assert client.get_run(run_id).info.status == "RUNNING"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_fresh_store_is_a_copy_of_a_premigrated_one(tmp_path, monkeypatch):
    """The template is made once per MLflow version; each new store is a copy that MLflow
    opens without migrating, and a store that exists is never replaced."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from plumbing.tracking import seed_sqlite_store

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first, second = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    seed_sqlite_store(f"sqlite:///{first}")
    template = tmp_path / "cache" / "ralign-suite" / f"mlflow-{mlflow.__version__}-empty-store.db"
    assert template.is_file()
    client = MlflowClient(f"sqlite:///{first}")  # opens without migrating; its Default experiment's artifacts beside it
    assert client.get_experiment("0").artifact_location == (first.parent / "mlartifacts" / "0").as_uri()
    seed_sqlite_store(f"sqlite:///{second}")
    client = MlflowClient(f"sqlite:///{second}")
    exp = client.create_experiment("e")
    client.create_run(exp)
    before = second.read_bytes()
    seed_sqlite_store(f"sqlite:///{second}")  # exists: untouched
    assert second.read_bytes() == before and len(client.search_runs([exp])) == 1
    assert [p.name for p in second.parent.iterdir()] == ["mlflow.db"]  # no part file left


def test_a_rerun_continues_the_run_of_its_folder_only_for_the_same_name_and_seed(tmp_path):
    """A pipeline rerun continues its folder's parent run (a quote in the path included); another
    seed or another name in the same folder opens its own; a changed param keeps its first value."""
    folder = str(tmp_path / "bob's runs" / "smoke")

    def pipeline(seed, name="smoke", **config):
        return _open(tmp_path, tags=tracking.run_tags("pipeline", name, seed, None), workdir=folder, reuse=True,
                     fluent=False, config={"seed": seed, **config})

    with pipeline(0, force=False) as first:
        pass
    with pipeline(0, force=True) as again:
        pass
    with pipeline(1) as other_seed:
        pass
    with pipeline(0, name="smoke_chain") as other_name:
        pass
    assert again.run_id == first.run_id
    assert len({first.run_id, other_seed.run_id, other_name.run_id}) == 3
    run = _client(tmp_path).get_run(first.run_id)
    assert run.data.params["force"] == "false" and run.data.tags["ralign.params_changed"] == "force"
    assert run.info.status == "FINISHED"


def test_every_number_a_component_reports_becomes_a_metric():
    """No allowlist: a task kind or benchmark that reports a new number has it in MLflow."""
    from downstream_eval.run import flat_metrics

    summary = {"l_acc": 0.5, "l_acc_ci": [0.4, 0.6], "n": 10, "swap_ok": True, "profile": "strict", "empty": None,
               "nan": float("nan"), "by_subset": {"chat hard": {"l_acc": 1.0}, "a+b": {"n": 2}},
               "problems": ["x"], "pass@4": 0.25}
    assert tracking.numeric_metrics(summary, "hs3") == {
        "hs3/l_acc": 0.5, "hs3/l_acc_ci_lo": 0.4, "hs3/l_acc_ci_hi": 0.6, "hs3/n": 10.0,
        "hs3/by_subset/chat hard/l_acc": 1.0, "hs3/by_subset/a_b/n": 2.0, "hs3/pass_at_4": 0.25}
    down = {"tasks": {"t": {"score": 0.5, "score_ci": [0.3, 0.7], "exact_match_rate": 0.75, "domain": "stem",
                            "verdicts": {"correct": 3}},
                      "bad": {"score": None, "invalid": "judge failed", "invalid_score": 0.5,
                              "invalid_values": {"win_rate": 0.5}, "judge_parse_fail": 6}},
            "domains": {"stem": 0.5}, "avg": 0.5, "tasks_scored": 1}
    m = flat_metrics(down)
    assert m["downstream/t"] == 0.5 and m["downstream/t/ci_lo"] == 0.3 and m["downstream/t/exact_match_rate"] == 0.75
    assert m["downstream/t/verdicts/correct"] == 3 and m["downstream/bad/judge_parse_fail"] == 6
    assert not [k for k in m if k.startswith("downstream/bad/invalid") or k == "downstream/bad"]
