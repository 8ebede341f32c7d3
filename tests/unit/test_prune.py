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


def save(root: Path, step: int, done: bool = True) -> Path:
    """A global_step<N>_hf folder as OpenRLHF leaves it: weights, then the tokenizer last."""
    p = root / f"global_step{step}_hf"
    p.mkdir(parents=True)
    (p / "config.json").write_text("{}")
    if done:
        (p / "tokenizer_config.json").write_text("{}")
    return p


def test_prune_keeps_the_newest_complete_copies_and_leaves_one_being_written(tmp_path):
    for n in (10, 2, 30, 20):
        save(tmp_path, n)
    save(tmp_path, 40, done=False)  # being written: neither counted nor removed
    save(tmp_path, 5, done=False)  # a save cut short, older than a complete one: removed
    (tmp_path / "_actor").mkdir()  # OpenRLHF's own rotated DeepSpeed states: not ours
    removed = prune(tmp_path, 2)
    assert sorted(p.name for p in removed) == ["global_step10_hf", "global_step2_hf", "global_step5_hf"]
    assert steps(tmp_path) == ["_actor", "global_step20_hf", "global_step30_hf", "global_step40_hf"]
    prune(tmp_path, 0)  # at least the newest complete copy stays
    assert steps(tmp_path) == ["_actor", "global_step30_hf", "global_step40_hf"]
    assert prune(tmp_path / "missing", 1) == []


def test_the_job_prunes_while_training_runs_and_after_it(tmp_path):
    """A rendered job script (bash, outside Slurm): the command saves five copies over time
    and counts them before its last save; the pruner runs beside it (so at most keep + the
    one being written are there while it trains) and once after it."""
    ckpt = tmp_path / "ckpt"
    saves = "; ".join(f"mkdir -p {ckpt}/global_step{n}_hf && touch {ckpt}/global_step{n}_hf/config.json "
                      f"{ckpt}/global_step{n}_hf/tokenizer_config.json; sleep 0.6" for n in range(1, 5))
    saves += f"; sleep 1.5; ls {ckpt} > {tmp_path}/during; mkdir -p {ckpt}/global_step5_hf; " \
             f"touch {ckpt}/global_step5_hf/config.json {ckpt}/global_step5_hf/tokenizer_config.json"
    spec = JobSpec(name="prune-test", command=f"bash -c {shell_join([saves])}", job_dir=str(tmp_path / "job"),
                   sidecar=shell_join([sys.executable, "-m", "plumbing.launch.prune", str(ckpt), "--keep", "2"]),
                   sidecar_every_s=1)
    script = write(spec, tmp_path / "job" / "job.sbatch")
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "during").read_text().split() == ["global_step3_hf", "global_step4_hf"]
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


def test_retention_changes_neither_the_resume_state_nor_the_step_hash():
    from plumbing.config.hydra_app import compose
    from plumbing.engines.openrlhf import ppo_args
    from plumbing.engines.openrlhf_plan import stage_plan
    from plumbing.pipeline import Plan

    def state(keep):
        obj, _ = compose("genrm_train", ["experiment=genrm_rlvr_qwen3_8b", f"engine.hf_checkpoints={keep}"])
        plan = stage_plan(obj.engine, obj.algo, obj.cluster, [])
        a = ppo_args(model="m", algo=obj.algo, engine=obj.engine, plan=plan, dataset="d.jsonl", ckpt_dir="/c",
                     tensorboard_dir="/t", seed=1)
        return a[a.index("--ckpt.path") + 1]

    assert state(0) == state(3)

    class NoStore:
        run_id, uri = None, ""

    def hashes(*extra):
        obj, _ = compose("pipeline", ["experiment=ralign_paper_8b", "output_dir=/tmp/h", *extra])
        return Plan(obj, NoStore()).hashes

    keep = {n: hashes(f"+stage_overrides.genrm_train=['engine.hf_checkpoints={n}']")["genrm_rlvr_8b"] for n in (0, 2, 3)}
    assert keep[2] == keep[3]  # how many copies are kept is retention, not what the run computes
    assert keep[0] != keep[2]  # whether any are kept is: a downstream step evaluates them (0 -> 2 trains again)
    assert hashes()["genrm_rlvr_8b"] != hashes("+stage_overrides.genrm_train=['algo.actor_lr=3e-6']")["genrm_rlvr_8b"]
