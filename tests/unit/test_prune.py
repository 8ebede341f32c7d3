"""Intermediate Hugging Face checkpoints: saved only when asked, and the job keeps the newest N
(OpenRLHF rotates its DeepSpeed states but never its global_step<N>_hf copies)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from plumbing.launch.prune import prune
from plumbing.launch.slurm import JobSpec, shell_join, write


def steps(root: Path):
    return sorted(p.name for p in root.iterdir())


def test_prune_keeps_the_highest_steps_and_never_the_last_one(tmp_path):
    for n in (10, 2, 30, 20):
        (tmp_path / f"global_step{n}_hf").mkdir()
    (tmp_path / "_actor").mkdir()  # OpenRLHF's own rotated DeepSpeed states: not ours
    (tmp_path / "global_step5_hf.tmp").mkdir()
    removed = prune(tmp_path, 2)
    assert sorted(p.name for p in removed) == ["global_step10_hf", "global_step2_hf"]
    assert steps(tmp_path) == ["_actor", "global_step20_hf", "global_step30_hf", "global_step5_hf.tmp"]
    prune(tmp_path, 0)  # the newest is being written or is the last copy: kept
    assert "global_step30_hf" in steps(tmp_path) and "global_step20_hf" not in steps(tmp_path)
    assert prune(tmp_path / "missing", 1) == []


def test_the_job_prunes_while_training_runs_and_after_it(tmp_path):
    """A rendered job script (bash, outside Slurm): the command saves five copies over time;
    the pruner runs beside it and once after it, so the newest two are left."""
    ckpt = tmp_path / "ckpt"
    saves = "; ".join(f"mkdir -p {ckpt}/global_step{n}_hf; sleep 0.3" for n in range(1, 6))
    spec = JobSpec(name="prune-test", command=f"bash -c {shell_join([saves])}", job_dir=str(tmp_path / "job"),
                   sidecar=shell_join([sys.executable, "-m", "plumbing.launch.prune", str(ckpt), "--keep", "2"]),
                   sidecar_every_s=1)
    script = write(spec, tmp_path / "job" / "job.sbatch")
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, r.stderr
    assert steps(ckpt) == ["global_step4_hf", "global_step5_hf"]


def test_hf_copies_are_saved_only_when_kept():
    from plumbing.config.hydra_app import compose
    from plumbing.engines.openrlhf import ppo_args
    from plumbing.engines.openrlhf_plan import stage_plan

    for keep, flag in ((0, False), (2, True)):
        obj, _ = compose("genrm_train", ["experiment=genrm_rlvr_qwen3_8b", f"engine.hf_checkpoints={keep}"])
        plan = stage_plan(obj.engine, obj.algo, obj.cluster, [])
        args = ppo_args(model="m", algo=obj.algo, engine=obj.engine, plan=plan, dataset="d.jsonl", ckpt_dir="/c",
                        tensorboard_dir="/t", seed=1, state_known=False)
        assert ("--ckpt.save_hf" in args) is flag
