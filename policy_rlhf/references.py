"""Reference responses for the pairwise reward: from the data set, or generated once, before
training, by a reference model (through the call cache: a rerun pays nothing) and stored
with the prepared data."""

from __future__ import annotations

from typing import Any, List

from genrm.parsing import strip_thinking
from plumbing.errors import SuiteError
from plumbing.llm.types import ChatRequest, LLMBackend, SamplingParams
from policy_rlhf.prompts import PromptItem


def fill_references(items: List[PromptItem], backend: LLMBackend, sampling: SamplingParams,
                    regenerate: bool = False) -> dict:
    """Generate a reference for every item that has none (all with ``regenerate``)."""
    todo = [k for k, it in enumerate(items) if regenerate or not it.reference]
    if not todo:
        return {"generated": 0, "failed": 0}
    results = backend.complete([ChatRequest.of(items[k].context, sampling) for k in todo], progress=True)
    failed = 0
    for k, res in zip(todo, results):
        text = strip_thinking(res.text or "") if res.ok else ""
        if text.strip():
            items[k].reference = text
        else:
            failed += 1
    if failed == len(todo):
        raise SuiteError(f"the reference model gave no usable response for any of {len(todo)} prompts")
    return {"generated": len(todo) - failed, "failed": failed}


def drop_without_reference(items: List[PromptItem]) -> List[PromptItem]:
    return [it for it in items if it.reference]


__all__: List[Any] = ["fill_references", "drop_without_reference"]
