"""Training metrics of a cluster job reach its MLflow run while the job runs: each TensorBoard
point once, with its own step and the wall time of its event, however often the follower runs,
restarts, or hands over to the finishing step; an MLflow outage never fails the job."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from plumbing.launch.finish import finish
from plumbing.launch.follow import ScalarBridge, follow, main as follow_main
from plumbing.launch.slurm import JobSpec, render, shell_join, write
from plumbing.tracking import seed_sqlite_store

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.25  # wall times far from now: a point stamped with the copy time shows

WRITER = """
import sys
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

def write(logdir, points, suffix=""):
    '''points: [(tag, step, wall_time, value)] into a new event file of logdir, flushed.'''
    w = EventFileWriter(logdir, filename_suffix=suffix)
    for tag, step, wall, value in points:
        value = Summary.Value(tag=tag, simple_value=value)
        w.add_event(Event(wall_time=wall, step=step, summary=Summary(value=[value])))
    w.close()

if __name__ == "__main__":  # DIR TAG STEP WALL VALUE [SUFFIX]
    write(sys.argv[1], [(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))], *sys.argv[6:])
"""


@pytest.fixture
def writer(tmp_path):
    """A TensorBoard event writer (tensorboard's own, as OpenRLHF's SummaryWriter writes)."""
    path = tmp_path / "tbwrite.py"
    path.write_text(WRITER)
    scope: dict = {}
    exec(compile(WRITER, str(path), "exec"), scope)
    scope["script"] = str(path)
    return scope


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seed_sqlite_store(uri)
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("jobs")).info.run_id
    return uri, client, run_id


def points(step_from, step_to, tag="train/reward"):
    """Points with known steps and wall times (10.5 s apart, ms fractions included)."""
    return [(tag, s, T0 + 10.5 * s + 0.001 * s, 0.1 * s) for s in range(step_from, step_to + 1)]


def history(client, run_id, tag="train/reward"):
    return sorted((m.step, m.timestamp, round(m.value, 4)) for m in client.get_metric_history(run_id, tag))


def expected(pts):
    return sorted((s, int(round(w * 1000)), round(v, 4)) for _, s, w, v in pts)


def test_each_point_reaches_the_run_once_with_its_own_step_and_wall_time(tmp_path, writer, store):
    uri, client, run_id = store
    tb = tmp_path / "tb" / "ppo_0101T00:00"  # OpenRLHF's folder under --logger.tensorboard_dir
    first = points(1, 3) + points(1, 3, "train/kl")
    writer["write"](str(tb), first, ".a")
    bridge = ScalarBridge(uri, run_id, tmp_path / "tb")
    assert bridge.send_new() == 6
    assert history(client, run_id) == expected(points(1, 3))
    assert bridge.send_new() == 0  # nothing new: nothing sent (log_batch appends)

    writer["write"](str(tb), points(4, 5), ".b")  # training goes on
    assert bridge.send_new() == 2
    assert history(client, run_id) == expected(points(1, 5))

    # the follower restarts (a requeued job, a crash): it learns what the run holds, sends no point twice
    writer["write"](str(tb), points(6, 6), ".c")
    restarted = ScalarBridge(uri, run_id, tmp_path / "tb")
    assert restarted.send_new() == 1
    assert ScalarBridge(uri, run_id, tmp_path / "tb").send_new() == 0

    # a requeued job's new folder, resumed from step 5's checkpoint: its step 6 is a new point (a later time)
    writer["write"](str(tmp_path / "tb" / "ppo_0101T02:00"), [("train/reward", 6, T0 + 7200, 0.66)], ".d")
    # the job's finishing step makes the last pass with the same code: only the rest
    ckpt = tmp_path / "ckpt"
    assert finish(uri, run_id, 0, tmp_path / "tb", ckpt) == "FINISHED"
    run = client.get_run(run_id)
    assert run.data.tags["tensorboard_points_at_finish"] == "1"
    assert run.data.tags["tensorboard_points"] == "10"  # 7 of train/reward (one resumed), 3 of train/kl
    assert history(client, run_id) == expected(points(1, 6) + [("train/reward", 6, T0 + 7200, 0.66)])
    assert history(client, run_id, "train/kl") == expected(points(1, 3, "train/kl"))
    assert all(abs(m.timestamp / 1000 - time.time()) > 3600 for m in client.get_metric_history(run_id, "train/kl"))


def test_batches_stay_within_mlflows_limit(tmp_path, writer, store, monkeypatch):
    uri, client, run_id = store
    monkeypatch.setattr("plumbing.launch.follow.batch_limit", lambda: 4)
    writer["write"](str(tmp_path / "tb"), points(1, 10), ".a")
    bridge = ScalarBridge(uri, run_id, tmp_path / "tb")
    sizes = []
    real = bridge.client.log_batch
    monkeypatch.setattr(bridge.client, "log_batch",
                        lambda run, metrics: sizes.append(len(metrics)) or real(run, metrics=metrics))
    assert bridge.send_new() == 10 and sizes == [4, 4, 2]
    assert history(client, run_id) == expected(points(1, 10))


def test_a_send_that_fails_after_reaching_the_store_is_not_sent_twice(tmp_path, writer, store, monkeypatch):
    """The store took the batch but the answer was lost (a timeout): the next pass reads what
    the run holds instead of trusting what it thinks it sent."""
    uri, client, run_id = store
    writer["write"](str(tmp_path / "tb"), points(1, 3), ".a")
    bridge = ScalarBridge(uri, run_id, tmp_path / "tb")
    real = bridge.client.log_batch

    def lost_answer(run, metrics):
        real(run, metrics=metrics)
        raise ConnectionError("read timed out")

    monkeypatch.setattr(bridge.client, "log_batch", lost_answer)
    logged = []
    assert follow(bridge, every=0, log=logged.append) == 0  # the failure is counted and printed, not raised
    assert "pass failed (1 failed so far)" in logged[0] and "read timed out" in logged[0]
    monkeypatch.setattr(bridge.client, "log_batch", real)
    writer["write"](str(tmp_path / "tb"), points(4, 4), ".b")
    assert bridge.send_new() == 1
    assert history(client, run_id) == expected(points(1, 4))


def test_an_unreachable_mlflow_does_not_fail_the_follower(tmp_path, writer, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    writer["write"](str(tmp_path / "tb"), points(1, 2), ".a")
    assert follow_main(["--tensorboard-dir", str(tmp_path / "tb"), "--tracking-uri", "http://127.0.0.1:9",
                        "--run-id", "r"]) == 0
    assert "pass failed (1 failed so far)" in capsys.readouterr().out
    monkeypatch.delenv("RALIGN_RUN_ID", raising=False)
    assert follow_main(["--tensorboard-dir", str(tmp_path / "tb")]) == 0  # no run given: nothing to do


def _job(tmp_path, command, follower_args, finish=None):
    follower = shell_join([sys.executable, "-m", "plumbing.launch.follow", "--tensorboard-dir",
                           str(tmp_path / "tb"), *follower_args])
    spec = JobSpec(name="follow-test", command=command, job_dir=str(tmp_path / "job"), follower=follower,
                   follower_every_s=1, finish=finish)
    return write(spec, tmp_path / "job" / "job.sbatch")


def test_the_job_runs_the_follower_beside_training_and_stops_it_before_finishing(tmp_path, writer, store):
    """A rendered job script (bash, outside Slurm): the command writes a point, then waits
    until the run holds it (sent by the follower while training runs), then writes another;
    the follower is stopped before the finishing step's last pass, and nothing is sent twice."""
    uri, client, run_id = store
    tb, go = tmp_path / "tb", tmp_path / "go"
    w = [sys.executable, writer["script"], str(tb)]
    first, second = points(1, 1)[0], points(2, 2)[0]
    command = "bash -c " + shell_join([
        f"{shell_join([*w, *map(str, first)])}; until [ -f {go} ]; do sleep 0.2; done; "
        f"{shell_join([*w, *map(str, second), '.second'])}"])
    finish_cmd = shell_join([sys.executable, "-m", "plumbing.launch.finish", "--tracking-uri", uri,
                             "--run-id", run_id, "--tensorboard-dir", str(tb)])
    script = _job(tmp_path, command, ["--tracking-uri", uri, "--run-id", run_id], finish_cmd)
    text = script.read_text()
    assert "plumbing.launch.follow" in text and "--every 1 " in text
    proc = subprocess.Popen(["bash", str(script)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline = time.time() + 90
        while not history(client, run_id) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.3)
        assert history(client, run_id) == expected([first])  # in the run while the job still trains
        assert proc.poll() is None
    finally:
        go.touch()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert out.index("[ralign] follower stopped") < out.index("MLflow run")  # stopped, then the last pass
    assert history(client, run_id) == expected([first, second])
    run = client.get_run(run_id)
    # the second point is sent by the follower's last round or by the finishing step: once either way
    assert run.info.status == "FINISHED" and run.data.tags["tensorboard_points"] == "2"
    log = (tmp_path / "job" / "logs" / "follow-test-follower-local.log").read_text()
    assert "sent 1 point(s)" in log


def test_the_job_succeeds_when_mlflow_is_unreachable(tmp_path, writer):
    """The command trains until the follower has failed a pass, and the job still succeeds."""
    command = shell_join([sys.executable, writer["script"], str(tmp_path / "tb"), *map(str, points(1, 1)[0])])
    log = tmp_path / "job" / "logs" / "follow-test-follower-local.log"
    wait = f"for i in $(seq 300); do grep -q 'pass failed' {log} 2>/dev/null && break; sleep 0.2; done"
    script = _job(tmp_path, f"bash -c {shell_join([f'{command} && {wait}'])}",
                  ["--tracking-uri", "http://127.0.0.1:9", "--run-id", "r"])
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
    r = subprocess.run(["bash", str(script)], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[ralign] follower stopped" in r.stdout
    assert "pass failed" in log.read_text()


def test_the_openrlhf_job_follows_its_metrics_into_the_stage_s_run(tmp_path):
    """Submitted, the follower names the run the finishing step ends; run by the stage itself,
    the script names none (the stage gives it in the environment): a dry run renders it the same."""
    from types import SimpleNamespace

    from plumbing.engines.openrlhf import follow_command, job_env

    launch = SimpleNamespace(python="python3", metrics_every_s=30)
    argv = ["--logger.tensorboard_dir", "/jobs/tb", "--ckpt.path", "/c"]
    finish_argv = ["python3", "-m", "plumbing.launch.finish", "--tracking-uri", "sqlite:////s.db", "--run-id", "abc",
                   "--tensorboard-dir", "/jobs/tb"]
    assert follow_command(launch, argv, finish_argv) == [
        "python3", "-m", "plumbing.launch.follow", "--tensorboard-dir", "/jobs/tb",
        "--tracking-uri", "sqlite:////s.db", "--run-id", "abc"]
    assert follow_command(launch, argv, None) == ["python3", "-m", "plumbing.launch.follow", "--tensorboard-dir",
                                                  "/jobs/tb"]
    env = job_env(SimpleNamespace(uri="sqlite:////s.db", run_id="abc"))
    assert env["RALIGN_TRACKING_URI"] == "sqlite:////s.db" and env["RALIGN_RUN_ID"] == "abc"
    assert "RALIGN_RUN_ID" not in job_env(SimpleNamespace(uri="x", run_id=None))
    text = render(JobSpec(name="j", command="true", job_dir="/j", follower="follow", follower_every_s=30,
                          finish="finish"))
    assert "follow --every 30 >> /j/logs/j-follower-${SLURM_JOB_ID:-local}.log 2>&1 &" in text


def test_a_training_stage_s_job_script_starts_the_follower(tmp_path):
    """genrm_train on the cluster (dry run): the follower copies the job's TensorBoard folder
    every launch.metrics_every_s; a submitted job's follower names the run, one the stage runs
    itself (cluster.submit=false) names none."""
    import shlex

    import genrm_fixtures as fx
    from plumbing.config.hydra_app import compose, execute, finalize

    data = fx.write(tmp_path / "d.jsonl", fx.ralign_records())

    def follower(*extra):
        out = tmp_path / f"run{len(extra)}"
        obj, cfg = finalize(*compose("genrm_train", ["experiment=genrm_rlvr_qwen3_8b", "dry_run=true",
                                                     f"output_dir={out}", f"data.ralign_rl.path={data}", *extra]))
        text = Path(execute("genrm_train", obj, cfg)["script"]).read_text()
        assert "stop_follower\n" in text.split("RC=$?")[1]  # stopped once training ends
        line = next(ln for ln in text.replace("\\\n", " ").splitlines() if "plumbing.launch.follow" in ln)
        argv = shlex.split(line.split(">>")[0])
        assert argv[argv.index("--tensorboard-dir") + 1] == str(out / "openrlhf" / "tensorboard")
        return argv

    submitted = follower("launch.metrics_every_s=15")
    assert submitted[-2:] == ["--every", "15"] and "--run-id" in submitted and "--tracking-uri" in submitted
    inline = follower("cluster.submit=false", "launch.metrics_every_s=60")
    assert inline[-2:] == ["--every", "60"] and "--run-id" not in inline
