"""The launch path on a real one-node Slurm cluster: pipelines as sbatch jobs with afterok
edges, a failing step, a Hydra multirun on submitit_slurm, the Ray-cluster job template."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime

import pytest
from mlflow.tracking import MlflowClient

from slurm_jobs import wait_for_jobs

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]



def _steps(step, *overrides):
    """A step's override list on the command line (each item quoted: it holds '=')."""
    return f"steps.{step}.overrides=[{','.join(repr(o) for o in overrides)}]"


FAST = ["cluster=slurm_local", _steps("preflight", "model=tiny_qwen3", "llm=transformers_serve", "n_requests=4"),
        _steps("downstream", "suite=smoke", "model.path=@dir:preflight/models/tiny-qwen3", "limit=1")]


def _runs(out):
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return {r.data.tags.get("step") or r.data.tags["stage"]: r for r in runs}


def _log(out, step):
    return next((out / step / "logs").glob("*.out")).read_text()


def _pipeline(cli, ralign, out, *extra):
    r = cli([ralign, "run", "experiment=smoke_chain", f"output_dir={out}", *FAST, *extra])
    assert r.returncode == 0, r.stderr[-3000:]
    pipeline = json.loads((out / "pipeline.json").read_text())
    jobs = [s["job_id"] for s in pipeline.values()]
    wait_for_jobs(jobs)
    return pipeline


def test_pipeline_steps_run_in_order_as_sbatch_jobs(tmp_path, cli, ralign):
    out = tmp_path / "p"
    pipeline = _pipeline(cli, ralign, out)
    assert set(pipeline) == {"preflight", "downstream", "_finish"}
    script = (out / "slurm" / "downstream.sbatch").read_text()
    assert f"#SBATCH --dependency=afterok:{pipeline['preflight']['job_id']}" in script
    runs = _runs(out)
    pre, down, parent = runs["preflight"], runs["downstream"], runs["pipeline"]
    assert pre.info.status == down.info.status == parent.info.status == "FINISHED", _log(out, "downstream")[-3000:]
    # afterok: the second job started after the first one ended (the jobs' own log lines)
    started = re.search(r"\] job \d+ .* at (\S+)", _log(out, "downstream")).group(1)
    ended = re.search(r"cleaned up \(exit 0\) at (\S+)", _log(out, "preflight")).group(1)
    assert datetime.fromisoformat(started) >= datetime.fromisoformat(ended)
    assert pre.data.tags["mlflow.parentRunId"] == down.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert pre.data.tags["slurm_job_id"] == pipeline["preflight"]["job_id"]
    summary = json.loads((out / "downstream" / "summary.json").read_text())
    assert summary["policy_model"] == str(out / "preflight" / "models" / "tiny-qwen3")  # the first step's artifact
    assert parent.data.tags["step.downstream"] == "FINISHED"
    # run again: every step is done with the same config, nothing is submitted
    again = cli([ralign, "run", "experiment=smoke_chain", f"output_dir={out}", *FAST])
    assert again.returncode == 0 and "skipped" in again.stdout
    assert json.loads((out / "pipeline.json").read_text()) == {
        "preflight": {"status": "skipped", "stage": "preflight", "mlflow_run_id": pre.info.run_id},
        "downstream": {"status": "skipped", "stage": "downstream_eval", "mlflow_run_id": down.info.run_id}}


def test_a_failing_step_stops_the_ones_after_it(tmp_path, cli, ralign):
    out = tmp_path / "p"
    broken = _steps("preflight", "model=tiny_qwen3", "llm=openai", "llm.model=x", "llm.base_url=http://127.0.0.1:9/v1",
                    "llm.max_retries=0", "n_requests=2")
    _pipeline(cli, ralign, out, broken)
    runs = _runs(out)
    assert runs["preflight"].info.status == "FAILED"
    assert runs["downstream"].info.status == "KILLED"  # its job never ran: the dependency failed
    assert not (out / "downstream" / "summary.json").exists()
    assert runs["pipeline"].info.status == "FAILED"
    assert runs["pipeline"].data.tags["step.preflight"] == "FAILED"


def test_hydra_multirun_on_submitit_slurm(tmp_path, tiny_model, cli, python):
    out = tmp_path / "sweep"
    r = cli([python, "-m", "plumbing.preflight", "-m", "seed=1,2", "hydra/launcher=ralign_slurm", "cluster=slurm_local",
             "llm=transformers", f"model.path={tiny_model}", "n_requests=2", "llm.sampling.max_tokens=4",
             f"output_dir={out}"], timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    jobs = [x for x in runs if x.data.tags.get("stage") == "preflight"]
    [parent] = [x for x in runs if x.data.tags.get("stage") == "sweep"]
    assert sorted(x.data.tags["seed"] for x in jobs) == ["1", "2"]
    assert all(x.info.status == "FINISHED" and x.data.tags["mlflow.parentRunId"] == parent.info.run_id for x in jobs)
    assert all(x.data.tags.get("slurm_job_id") for x in jobs)  # each ran as its own Slurm job
    assert len({x.data.tags["slurm_job_id"] for x in jobs}) == 2


def test_ray_cluster_job_starts_ray_and_runs_a_command_on_it(tmp_path):
    from plumbing.launch.slurm import JobSpec, RaySection, shell_join, submit, write

    probe = "import ray; ray.init(address='auto'); r = ray.cluster_resources(); print('RAY_CPUS', r.get('CPU'))"
    spec = JobSpec(name="ray-check", command=shell_join([sys.executable, "-c", probe]), job_dir=str(tmp_path),
                   cpus_per_task=2, time="00:10:00",
                   ray=RaySection(num_cpus=2, num_gpus=0, port=6390, dashboard_port=8290, startup_timeout_s=120))
    job = submit(write(spec, tmp_path / "ray.sbatch"))
    wait_for_jobs([job], timeout=300)
    log = next((tmp_path / "logs").glob(f"*-{job}.out")).read_text()
    assert "Ray cluster up: 1 node(s)" in log and "RAY_CPUS 2.0" in log, log[-3000:]
    assert "cleaned up (exit 0)" in log
    left = subprocess.run(["pgrep", "-f", "ray::|raylet|gcs_server"], capture_output=True, text=True).stdout
    assert not left.strip(), f"Ray processes left after the job: {left}"
