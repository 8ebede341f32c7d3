"""Checkpoint-curve settings that cannot give a curve are refused at start (exit 2, naming the
key), not found out after the training or the evaluations they would have wasted."""

from __future__ import annotations

import pytest

from plumbing.config.hydra_app import compose
from plumbing.config.validate import ConfigError


def _problems(stage, overrides):
    with pytest.raises(ConfigError) as e:
        compose(stage, overrides)
    return dict(e.value.problems)


def test_all_checkpoints_need_a_role_that_runs_the_policy_s_model(tmp_path):
    # a generator of another model (a hub id, an endpoint) than the training run's: every "checkpoint"
    # would be that model evaluated again, a flat curve
    problems = _problems("downstream_eval", [
        "suite=toy", f"output_dir={tmp_path}", "model.path=runs:/0123456789abcdef", "checkpoints.evaluate=all",
        "llm@generator=vllm", "generator.model=Qwen/Qwen3-8B"])
    assert "checkpoints.evaluate" in problems and "generator" in problems["checkpoints.evaluate"]
    # the default generator runs ${model.path}: accepted
    compose("downstream_eval", ["suite=toy", f"output_dir={tmp_path}", "model.path=runs:/0123456789abcdef",
                                "checkpoints.evaluate=all"])


POLICY = ["experiment=policy_ppo_qwen3_8b", "dry_run=true", "data=smoke_prompts", "genrm.model=/ckpt/genrm"]


def test_hf_copies_without_a_save_interval_are_refused(tmp_path):
    problems = _problems("policy_train", [*POLICY, f"output_dir={tmp_path}", "algo.save_steps=-1",
                                          "engine.hf_checkpoints=3"])
    assert "engine.hf_checkpoints" in problems and "algo.save_steps" in problems["engine.hf_checkpoints"]


def test_a_save_interval_of_zero_is_refused(tmp_path):
    # OpenRLHF takes global_step % save_steps: 0 fails after the first training step
    problems = _problems("policy_train", [*POLICY, f"output_dir={tmp_path}", "algo.save_steps=0"])
    assert "algo.save_steps" in problems
