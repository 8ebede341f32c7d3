"""The pairwise reward inside OpenRLHF: the generated agent executor, loaded as OpenRLHF loads
it and run the way its vLLM actor runs it (n concurrent execute calls per prompt in one event
loop), with a stand-in for the vLLM engine (no GPU here) and the rule judge on a loopback
server; group mode and reference mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openrlhf_fakes import load_executor, run_executor

from genrm.testing import rule_responder
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.contract
pytest.importorskip("openrlhf", reason="needs openrlhf 0.11.2 (scripts/setup.sh ...,contract installs it)")


def _executor_class(tmp_path, wait_s, mode="group"):
    obj, cfg = finalize(*compose("policy_train", [
        "experiment=policy_ppo_qwen3_8b_base", "dry_run=true", f"output_dir={tmp_path}", "data=smoke_prompts",
        f"pairwise.mode={mode}", "algo=grpo", "algo.n_samples_per_prompt=3", f"group_wait_s={wait_s}"]))
    prepared = execute("policy_train", obj, cfg)
    from openrlhf.utils.agent import AgentExecutorBase

    executor = load_executor(prepared["reward_module"])
    assert issubclass(executor, AgentExecutorBase)
    label = json.loads(Path(prepared["dataset"]).read_text().splitlines()[0])["label"]
    return executor, Path(prepared["reward_module"]).with_name("genrm_endpoint"), label


def _run(executor_cls, tokenizer, label, texts):
    return run_executor(executor_cls, tokenizer, label, texts)


def test_siblings_are_judged_against_each_other(tmp_path, tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    executor_cls, endpoint, label = _executor_class(tmp_path, wait_s=30)
    with LoopbackServer(responder=rule_responder) as srv:
        endpoint.write_text(srv.base_url)
        outs = _run(executor_cls, tokenizer, label, ["best <<good>>", "plain one", "plain two"])
        calls = srv.chat_requests
    # round-robin in [0, 1]: best 1, plain ones 0.25; the preset's symmetric scale: 1 and -0.5
    assert sorted(o["reward"] for o in outs) == [-0.5, -0.5, 1.0]
    assert all(o["scores"] == o["reward"] and o["extra_logs"]["comparisons"] == 2 for o in outs)
    assert calls == 6  # 3 pairs x both orders
    assert all(o["observation_tokens"] and o["action_ranges"] for o in outs)  # OpenRLHF's own output fields


def test_a_group_that_never_fills_is_scored_after_the_wait(tmp_path, tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    executor_cls, endpoint, label = _executor_class(tmp_path, wait_s=0.5)
    with LoopbackServer(responder=rule_responder) as srv:
        endpoint.write_text(srv.base_url)
        outs = _run(executor_cls, tokenizer, label, ["good <<good>>", "plain"])  # 2 of the 3 expected
    assert sorted(o["reward"] for o in outs) == [-1.0, 1.0]


def test_a_slow_sibling_is_compared_like_a_fast_one(tmp_path, tiny_model):
    """The wait for siblings does not run from the fastest one: a response that takes longer
    than group_wait_s to generate is still judged against its siblings."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    executor_cls, endpoint, label = _executor_class(tmp_path, wait_s=0.3)
    with LoopbackServer(responder=rule_responder) as srv:
        endpoint.write_text(srv.base_url)
        outs = _run(executor_cls, tokenizer, label, [("quick", 0.0, "stop"), ("medium", 0.2, "stop"),
                                                     ("slow but best <<good>>", 1.2, "stop")])
    assert [o["extra_logs"]["comparisons"] for o in outs] == [2, 2, 2]
    assert sorted(o["reward"] for o in outs) == [-0.5, -0.5, 1.0]


def test_reference_mode_sees_truncation_and_scales_its_failure_value(tmp_path, tiny_model):
    """Reference mode runs through the same executor: a response cut at max_tokens gets the
    floor (penalize_truncated), and when scoring fails the neutral value on the preset's
    symmetric scale (0.0, not the unit scale's 0.5)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    executor_cls, endpoint, label = _executor_class(tmp_path, wait_s=5, mode="reference")
    with LoopbackServer(responder=rule_responder) as srv:
        endpoint.write_text(srv.base_url)
        outs = _run(executor_cls, tokenizer, label, [("cut off <<good>>", 0.0, "length"),
                                                     ("complete <<good>>", 0.0, "stop")])
    assert outs[0]["reward"] == -1.0 and outs[0]["extra_logs"]["floor"] == 1.0  # the floor, scaled
    assert outs[1]["reward"] == 1.0 and outs[1]["extra_logs"]["comparisons"] == 1
    from policy_rlhf.openrlhf_agent import make_executor

    broken = make_executor({"pairwise": {"mode": "reference", "scale": "symmetric", "neutral": 0.5},
                            "judges": {}, "n_samples_per_prompt": 1, "cache_dir": str(tmp_path / "cache")})
    [out] = _run(broken, tokenizer, label, ["anything"])  # no GenRM to ask: scoring itself fails
    assert out["reward"] == 0.0 and out["extra_logs"]["reward_error"] == 1.0
