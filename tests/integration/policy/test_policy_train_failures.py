"""Policy training never passes a judge's failures off as a trained policy (issue 17): a
GenRM that does not load, or whose every call fails, stops the run instead of giving the
failure reward (0.5) on every step and writing a checkpoint with exit 0."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("genrm", ["does_not_load", "unreachable", "unreachable_in_a_short_run"])
def test_a_genrm_that_fails_stops_training_without_a_checkpoint(tmp_path, cli, python, genrm):
    from plumbing.launch.server import free_port

    missing = tmp_path / "no-genrm-here"
    given, code, message = {
        # the load error names the path: exit 2 at the first reward, nothing trained on it
        "does_not_load": ([f"genrm.model={missing}"], 2, f"the model {missing} does not load"),
        # every call refused: past max_failure_rate once the guard has seen enough calls, exit 1
        "unreachable": (["llm@genrm=openai", f"genrm.base_url=http://127.0.0.1:{free_port()}/v1", "genrm.model=g",
                         "genrm.max_retries=0"], 1, "calls failed"),
        # one step: fewer calls than the guard needs to judge, counted again when training ends
        "unreachable_in_a_short_run": (["llm@genrm=openai", f"genrm.base_url=http://127.0.0.1:{free_port()}/v1",
                                        "genrm.model=g", "genrm.max_retries=0", "algo.max_steps=1"], 1,
                                       "calls failed"),
    }[genrm]
    out = tmp_path / "out"
    proc = cli([python, "-m", "policy_rlhf.train", "experiment=smoke_policy", f"output_dir={out}", *given],
               env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == code, proc.stderr[-3000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FAILED" and "checkpoint_path" not in run.data.tags
    assert not (out / "summary.json").exists()
