"""Group mode inside OpenRLHF: the generated agent executor, loaded as OpenRLHF loads it and
run the way its vLLM actor runs it (n concurrent execute calls per prompt in one event loop),
with a stand-in for the vLLM engine (no GPU here) and the rule judge on a loopback server."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from genrm.testing import rule_responder
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.contract
pytest.importorskip("openrlhf", reason="needs openrlhf 0.11.2 (scripts/setup.sh ...,contract installs it)")


class FakeEngine:
    """Stands in for OpenRLHF's vLLM actor: ``generate(token ids, sampling params)``."""

    def __init__(self, tokenizer, texts):
        self.tokenizer, self.texts = tokenizer, list(texts)

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        await asyncio.sleep(0.01 * len(self.texts))  # siblings finish at different times
        text = self.texts.pop(0)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, text=text, finish_reason="stop", logprobs=None)])


def _executor_class(tmp_path, wait_s):
    obj, cfg = finalize(*compose("policy_train", [
        "experiment=policy_ppo_qwen3_8b_base", "dry_run=true", f"output_dir={tmp_path}", "data=smoke_prompts",
        "pairwise.mode=group", "algo.estimator=grpo", "algo.n_samples_per_prompt=3", f"group_wait_s={wait_s}"]))
    prepared = execute("policy_train", obj, cfg)
    from openrlhf.utils.agent import AgentExecutorBase

    spec = importlib.util.spec_from_file_location("agent_module", prepared["module"])  # as OpenRLHF does
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert issubclass(module.AgentExecutor, AgentExecutorBase)
    label = json.loads(Path(prepared["dataset"]).read_text().splitlines()[0])["label"]
    return module.AgentExecutor, Path(prepared["module"]).with_name("genrm_endpoint"), label


def _run(executor_cls, tokenizer, label, texts):
    async def main():
        engine = FakeEngine(tokenizer, texts)
        executor = executor_cls()
        prompt = "<|im_start|>user\nExplain X.<|im_end|>\n<|im_start|>assistant\n"
        params = SimpleNamespace(max_tokens=32, logprobs=None)
        return await asyncio.gather(*(executor.execute(prompt, label, params, 512, tokenizer, engine)
                                      for _ in texts))

    return asyncio.run(main())


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
