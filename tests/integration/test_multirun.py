"""A Hydra multirun sweep: one job per value, all in the sweep's MLflow store with one sweep_id."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration


def test_sweep_jobs_share_a_store_and_a_sweep_id(tmp_path, tiny_model, cli, python):
    out = tmp_path / "sweep"
    proc = cli([python, "-m", "plumbing.preflight", "-m", "seed=1,2", f"output_dir={out}", "llm=transformers",
                f"model.path={tiny_model}", "n_requests=2", "llm.sampling.max_tokens=4"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "0" / "summary.json").exists() and (out / "1" / "summary.json").exists()
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.stage = 'preflight'")
    assert sorted(r.data.tags["seed"] for r in runs) == ["1", "2"]
    assert {r.data.tags["sweep_id"] for r in runs} == {"preflight-sweep"}
    assert all(r.info.status == "FINISHED" for r in runs)
    [parent] = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.stage = 'sweep'")
    assert parent.data.tags["sweep_id"] == "preflight-sweep"
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}  # one sweep, one parent


def test_the_readmes_parallel_sweep_with_defaults(tmp_path, cli, python):
    """The README's sweep, as a user types it: parallel jobs (submitit on this machine), the
    default timestamped output folder under the working directory and the default tiny model
    built under it. The jobs once raced to create the new sqlite store (a raw alembic
    traceback) and looked for the tiny model under a timestamp resolved again in each job."""
    proc = cli([python, "-m", "plumbing.preflight", "-m", "seed=1,2", "hydra/launcher=ralign_local",
                "llm=transformers", "n_requests=2", "llm.sampling.max_tokens=4"], cwd=tmp_path,
               env={"XDG_CACHE_HOME": str(tmp_path / "cache")}, timeout=900)  # a fresh store template too
    assert proc.returncode == 0, proc.stderr[-3000:]
    [sweep] = list((tmp_path / "outputs").glob("*/*_preflight"))
    assert (sweep / "0" / "summary.json").exists() and (sweep / "1" / "summary.json").exists()
    assert (sweep / "0" / "models" / "tiny-qwen3").is_dir()  # built in the job's own folder
    client = MlflowClient(f"sqlite:///{sweep / 'mlflow.db'}")
    exps = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in exps], "tags.stage = 'preflight'")
    [parent] = client.search_runs([e.experiment_id for e in exps], "tags.stage = 'sweep'")
    assert sorted(r.data.tags["seed"] for r in runs) == ["1", "2"] and all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    assert client.get_experiment_by_name("preflight").tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_sweep_over_names_leaves_no_parent_run_without_jobs(tmp_path, tiny_model, cli, python):
    """The callback sees the sweep's base config: with `name` swept, each job's runs go to its
    own experiment and parent, and no empty `preflight` parent is left beside them."""
    out = tmp_path / "sweep"
    proc = cli([python, "-m", "plumbing.preflight", "-m", "name=alpha,beta", f"output_dir={out}", "llm=transformers",
                f"model.path={tiny_model}", "n_requests=2", "llm.sampling.max_tokens=4"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    names = {e.name for e in client.search_experiments()}
    assert {"alpha", "beta"} <= names and "preflight" not in names
    for name in ("alpha", "beta"):
        exp = client.get_experiment_by_name(name).experiment_id
        [parent] = client.search_runs([exp], "tags.stage = 'sweep'")
        [job] = client.search_runs([exp], "tags.stage = 'preflight'")
        assert job.data.tags["mlflow.parentRunId"] == parent.info.run_id
