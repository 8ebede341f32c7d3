"""A stage logging to a real `mlflow server` (tracking.uri=http://...)."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from plumbing.launch.server import MlflowServer

pytestmark = pytest.mark.integration


def test_stage_run_lands_on_a_real_mlflow_server(tmp_path, tiny_model, cli, python):
    with MlflowServer(tmp_path / "store.db", tmp_path / "artifacts", log_path=tmp_path / "mlflow.log") as srv:
        out = tmp_path / "run"
        proc = cli([python, "-m", "plumbing.preflight", f"output_dir={out}", "tracking=server",
                    f"tracking.uri={srv.uri}", "llm=transformers", f"model.path={tiny_model}",
                    "n_requests=4", "llm.sampling.max_tokens=4", "+tracking.tags.owner=ci"])
        assert proc.returncode == 0, proc.stderr[-3000:]
        client = MlflowClient(srv.uri)
        exp = client.get_experiment_by_name("preflight")
        runs = client.search_runs([exp.experiment_id])
        assert len(runs) == 1
        run = runs[0]
        assert run.info.status == "FINISHED"
        assert run.data.tags["stage"] == "preflight" and run.data.tags["owner"] == "ci"
        assert run.data.params["llm.name"] == "transformers"  # the option's file name
        assert run.data.params["llm._target_"] == "plumbing.llm.transformers_local.TransformersBackend"
        assert run.data.metrics["preflight/succeeded"] == 4
        summary = json.loads(client.download_artifacts(run.info.run_id, "summary.json", str(tmp_path)) and
                             (tmp_path / "summary.json").read_text())
        assert summary["succeeded"] == 4
        assert not (out / "mlflow.db").exists()  # nothing went to the embedded store
    assert not srv.proc
