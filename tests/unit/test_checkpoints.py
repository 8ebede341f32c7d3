"""Kept checkpoints on the OpenRLHF engine: the rendered job keeps an HF copy every k steps, and
the run records the copies the job leaves (after its pruner), named as OpenRLHF 0.11.2 names
them: ``<--ckpt.path>/global_step<N>_hf`` (openrlhf/trainer/ray/ppo_actor.py save_checkpoint,
tag ``global_step{N}`` from ppo_trainer.save_logs_and_checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from plumbing import checkpoints, tracking
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.errors import SuiteError


def _render(tmp_path, *extra):
    obj, cfg = finalize(*compose("policy_train", ["experiment=policy_ppo_qwen3_8b", "dry_run=true",
                                                  f"output_dir={tmp_path}", "data=smoke_prompts",
                                                  "genrm.model=/ckpt/genrm", *extra]))
    return execute("policy_train", obj, cfg)


def _flag(args, name):
    return args[args.index(name) + 1]


def test_the_job_keeps_an_hf_copy_every_k_steps_and_records_what_its_pruner_leaves(tmp_path):
    job = _render(tmp_path / "keep", "algo.save_steps=5", "engine.hf_checkpoints=2")
    args, script = job["openrlhf_args"], Path(job["script"]).read_text()
    assert _flag(args, "--ckpt.save_steps") == "5" and "--ckpt.save_hf" in args
    root = _flag(args, "--ckpt.path")
    assert f"--hf-checkpoints '{root}'" in script  # the finishing step records the copies under --ckpt.path
    assert script.index(f"plumbing.launch.prune '{root}' \\\n    --keep 2 >>") < script.rindex('finish_run "$RC"')
    plain = _render(tmp_path / "plain", "algo.save_steps=5")  # no copies kept: none saved, none recorded
    assert "--ckpt.save_hf" not in plain["openrlhf_args"] and "--hf-checkpoints" not in Path(plain["script"]).read_text()


def _hf_copy(folder: Path) -> Path:
    """What OpenRLHF's strategy.save_model leaves: weights, config, then the tokenizer."""
    folder.mkdir(parents=True)
    for name in ("model.safetensors", "config.json", "tokenizer_config.json"):
        (folder / name).write_text("{}")
    return folder


def test_a_finished_job_records_the_copies_left_with_their_steps(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from plumbing.launch.finish import finish
    from plumbing.launch.prune import prune

    final = tmp_path / "checkpoint"
    root = final / "deepspeed-0123456789ab"  # --ckpt.path, inside --ckpt.output_dir as the suite lays it out
    for step in (5, 10, 15, 20):
        _hf_copy(root / f"global_step{step}_hf")
    (root / "_actor" / "global_step20").mkdir(parents=True)  # DeepSpeed states: not models
    _hf_copy(root / "best_global_step10_hf")  # OpenRLHF's best-eval copy: not on the step grid we record
    for name in ("model.safetensors", "config.json", "tokenizer_config.json"):
        (final / name).write_text("{}")
    tb = tmp_path / "tb"
    writer = SummaryWriter(str(tb))
    for step in range(1, 23):
        writer.add_scalar("train/reward", 0.01 * step, step)
    writer.close()
    prune(root, 2)  # the job's last pruning pass, before its finishing step
    uri = tracking.tracking_uri(None, tmp_path)
    with tracking.start_run(uri=uri, experiment="e", run_name="job", tags={"stage": "policy_train"}) as run:
        run.detach()
    assert finish(uri, run.run_id, 0, tb, final, root) == "FINISHED"

    tags = MlflowClient(uri).get_run(run.run_id).data.tags
    left = sorted(p.name for p in root.iterdir())
    assert left == ["_actor", "best_global_step10_hf", "global_step15_hf", "global_step20_hf"]
    recorded = json.loads(Path(tags["checkpoints_file"]).read_text())["checkpoints"]
    assert [(k["step"], Path(k["path"]).name) for k in recorded] == \
        [(15, "global_step15_hf"), (20, "global_step20_hf"), (22, "checkpoint")]  # the final at its last step
    assert tags["checkpoint_steps"] == "15,20,22"
    kept, run_id = checkpoints.resolve(f"runs:/{run.run_id}", uri)
    assert run_id == run.run_id and [k.step for k in kept] == [15, 20, 22] and kept[-1].final

    import shutil

    shutil.rmtree(root / "global_step15_hf")  # removed after the record: said, not evaluated as missing
    with pytest.raises(SuiteError, match="global_step15_hf"):
        checkpoints.resolve(f"runs:/{run.run_id}", uri)


def test_a_copy_at_the_final_step_is_the_final_model_and_not_listed_twice(tmp_path):
    final = tmp_path / "checkpoint"
    final.mkdir()
    copies = [(k, _hf_copy(tmp_path / f"global_step{k}_hf")) for k in (2, 4)]
    kept = checkpoints.read(checkpoints.record(final, 4, copies))
    assert [(k.step, k.final) for k in kept] == [(2, False), (4, True)] and kept[-1].path == str(final.resolve())
