"""The last step of a cluster job: bring what the engine logged into the stage's MLflow run
and end the run with the job's outcome.

    python -m plumbing.launch.finish --tracking-uri URI --run-id ID --exit-code RC \\
        [--tensorboard-dir DIR] [--checkpoint DIR] [--hf-checkpoints DIR]

OpenRLHF logs to TensorBoard (or wandb) only; its scalars (``train/reward``, ``train/kl``,
``rollout/...``, ``eval/...`` and the reward module's ``extra_logs``) reach the run while the
job runs (``plumbing.launch.follow``); this last pass sends what the follower had not, each
point with its step and wall time. The run is ended FINISHED when the job's command
succeeded, else FAILED.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from plumbing.tags import CHECKPOINT


def bridge(tracking_uri: str, run_id: str, logdir: Path) -> Tuple[int, int]:
    """The last pass of the TensorBoard-to-MLflow bridge (plumbing.launch.follow, whose
    follower sent the earlier points while the job ran): the points the run lacks, with their
    own steps and wall times. Returns (points sent now, points of the event files in the run)."""
    from plumbing.launch.follow import ScalarBridge

    b = ScalarBridge(tracking_uri, run_id, logdir)
    sent = b.send_new()
    return sent, b.in_run


KILLED_CODES = (128 + 15, 128 + 2, 128 + 9)


def finish(tracking_uri: str, run_id: str, exit_code: int, tensorboard_dir: Optional[Path] = None,
           checkpoint: Optional[Path] = None, hf_checkpoints: Optional[Path] = None) -> str:
    """End the job's run; ``hf_checkpoints``: the folder of its kept HF copies (``--ckpt.path``),
    recorded with their steps beside the final checkpoint (plumbing.checkpoints)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    if tensorboard_dir is not None and Path(tensorboard_dir).exists():
        sent, in_run = bridge(tracking_uri, run_id, Path(tensorboard_dir))
        client.set_tag(run_id, "tensorboard_points", str(in_run))
        client.set_tag(run_id, "tensorboard_points_at_finish", str(sent))
    if exit_code == 0 and checkpoint is not None and Path(checkpoint).exists():
        client.set_tag(run_id, CHECKPOINT, str(Path(checkpoint).resolve()))
        if hf_checkpoints is not None:
            from plumbing import checkpoints

            record = checkpoints.record_openrlhf(Path(checkpoint), hf_checkpoints, tensorboard_dir)
            client.log_artifact(run_id, str(record))
            for k, v in checkpoints.tags(record).items():
                client.set_tag(run_id, k, v)
    client.set_tag(run_id, "job_exit_code", str(exit_code))
    # a job stopped by a signal (time limit, preemption, scancel: 128 + TERM/INT/KILL) was killed
    status = "FINISHED" if exit_code == 0 else ("KILLED" if exit_code in KILLED_CODES else "FAILED")
    client.set_terminated(run_id, status)
    return status


def finish_pipeline(tracking_uri: str, run_id: str, steps: List[str]) -> str:
    """End a pipeline's run from its steps' runs (its last job, after every step's job):
    FINISHED when each step has a FINISHED run; a step whose job never ran (a dependency
    failed) has its run marked KILLED; the outcome of each step is tagged on the pipeline."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    parent = client.get_run(run_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}'")
    by_step = {r.data.tags.get("step"): r for r in children}
    outcome: Dict[str, str] = {}
    for step in steps:
        r = by_step.get(step)
        if r is None:
            outcome[step] = "missing"
            continue
        if r.info.status == "RUNNING":  # created at submission; its job was cancelled or died unseen
            client.set_terminated(r.info.run_id, "KILLED")
            outcome[step] = "KILLED"
        else:
            outcome[step] = r.info.status
    # steps skipped as done before have no child run here: look their config up
    skipped = [s for s, o in outcome.items() if o == "missing"]
    for step in skipped:
        hits = client.search_runs([parent.info.experiment_id], f"tags.step = '{step}' and attributes.status = 'FINISHED'")
        outcome[step] = "FINISHED" if hits else "missing"
    for step, status in outcome.items():
        client.set_tag(run_id, f"step.{step}", status)
    status = "FINISHED" if all(s == "FINISHED" for s in outcome.values()) else "FAILED"
    client.set_terminated(run_id, status)
    return status


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tracking-uri", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--exit-code", type=int)
    p.add_argument("--pipeline-steps", help="end a pipeline's run from these steps' runs (comma-separated)")
    p.add_argument("--tensorboard-dir", type=Path)
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--hf-checkpoints", type=Path, help="the job's kept HF copies (--ckpt.path), to record")
    p.add_argument("--reopen", action="store_true", help="a requeued job runs again: the run is RUNNING again")
    a = p.parse_args(argv)
    if a.reopen:
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=a.tracking_uri).update_run(a.run_id, status="RUNNING")
        print(f"[ralign] MLflow run {a.run_id}: RUNNING again (restart)")
        return 0
    if a.pipeline_steps:
        status = finish_pipeline(a.tracking_uri, a.run_id, a.pipeline_steps.split(","))
        print(f"[ralign] pipeline run {a.run_id}: {status}")
        return 0 if status == "FINISHED" else 1
    if a.exit_code is None:
        p.error("--exit-code is required (or --pipeline-steps)")
    print(f"[ralign] MLflow run {a.run_id}: "
          f"{finish(a.tracking_uri, a.run_id, a.exit_code, a.tensorboard_dir, a.checkpoint, a.hf_checkpoints)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
