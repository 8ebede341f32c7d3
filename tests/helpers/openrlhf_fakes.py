"""Driving the generated agent executor the way OpenRLHF's vLLM actor does: n concurrent
``execute`` calls in one event loop, with a stand-in for the vLLM engine (no GPU here)."""

from __future__ import annotations

import asyncio
import importlib.util
from types import SimpleNamespace

PROMPT = "<|im_start|>user\nExplain X.<|im_end|>\n<|im_start|>assistant\n"


class FakeEngine:
    """Stands in for OpenRLHF's vLLM actor: ``generate(token ids, sampling params)``. A text
    may come as (text, seconds it takes, finish reason)."""

    def __init__(self, tokenizer, texts):
        self.tokenizer = tokenizer
        self.texts = [t if isinstance(t, tuple) else (t, 0.01 * (len(texts) - i), "stop") for i, t in enumerate(texts)]

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        text, seconds, finish = self.texts.pop(0)
        await asyncio.sleep(seconds)  # siblings finish at different times
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, text=text, finish_reason=finish, logprobs=None)])


def load_executor(module_path):
    """The module's AgentExecutor, loaded by path as OpenRLHF loads it."""
    spec = importlib.util.spec_from_file_location("agent_module", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AgentExecutor


def run_executor(executor_cls, tokenizer, labels, texts):
    """One execute call per text (label i for text i, or one label for all), concurrently."""
    labels = labels if isinstance(labels, list) else [labels] * len(texts)

    async def main():
        engine = FakeEngine(tokenizer, texts)
        executor = executor_cls()
        params = SimpleNamespace(max_tokens=32, logprobs=None)
        return await asyncio.gather(*(executor.execute(PROMPT, label, params, 512, tokenizer, engine)
                                      for label in labels))

    return asyncio.run(main())
