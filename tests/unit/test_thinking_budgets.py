"""A thinking MetaRM or MetaJudge (Qwen3) reasons before its verdict: cut at max_tokens it
gives no verdict (ParseFail: reward 0 in training, left out of F-Score in evaluation). Every
cluster preset and every step of the paper pipelines gives it room."""

from __future__ import annotations

import pytest

from plumbing.config.hydra_app import compose

THINKING_ROOM = 8192
ROLES = ("metarm", "metajudge", "judge", "monitor")  # judge: the downstream general-chat tasks' (Qwen3-32B)


def _step_configs(pipeline: str):
    obj, _ = compose("pipeline", [f"experiment={pipeline}"], validate_config=False)
    for name, step in obj.graph().steps.items():  # the matrix written out
        if step.stage in ("genrm_train", "genrm_eval", "downstream_eval"):  # @run: results get a stand-in path
            overrides = [o.split("=")[0] + "=/ckpt" if "=@run:" in o else o for o in step.overrides]
            yield f"{pipeline}.{name}", compose(step.stage, overrides, validate_config=False)[0]


def _preset_configs():
    for preset in ("genrm_ralign_qwen3_8b", "genrm_ralign_qwen3_14b", "genrm_hybrid_qwen3_8b", "genrm_hybrid_qwen3_14b"):
        yield preset, compose("genrm_train", [f"experiment={preset}"], validate_config=False)[0]


@pytest.mark.parametrize("source", ["presets", "ralign_paper", "ralign_paper_8b", "ralign_paper_14b"])
def test_a_thinking_meta_judge_is_not_cut_before_its_verdict(source):
    configs = list(_preset_configs() if source == "presets" else _step_configs(source))
    judged = [(where, role, getattr(cfg, role)) for where, cfg in configs for role in ROLES
              if getattr(cfg, role, None) is not None and "qwen3" in getattr(cfg, role).model.lower()]
    assert judged  # the case is a real one
    short = [f"{where}: {role}.sampling.max_tokens={llm.sampling.max_tokens}" for where, role, llm in judged
             if llm.sampling.max_tokens < THINKING_ROOM]
    assert not short, short
