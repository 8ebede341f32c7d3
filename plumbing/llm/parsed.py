"""Calls whose answer must parse: re-ask on an unparsable answer, then give up and count.

Each item ends as ``ok`` (parsed value), ``call_fail`` (the backend gave no answer after its
own retries) or ``parse_fail`` (answers came back but none parsed). Re-asks use a new
``sample_index`` (so they are new cache entries) and at least ``retry_temperature``, since a
greedy model would repeat the same unparsable answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Generic, List, Optional, Sequence, TypeVar

from plumbing.llm.types import ChatRequest, ChatResult, LLMBackend

T = TypeVar("T")
OK, CALL_FAIL, PARSE_FAIL = "ok", "call_fail", "parse_fail"


@dataclass
class Parsed(Generic[T]):
    status: str
    value: Optional[T]
    raw: Optional[str]  # the last answer's text (None when the call failed)
    attempts: int  # answers asked for (1 + re-asks)
    error: Optional[str] = None  # failure kind of the last call

    @property
    def ok(self) -> bool:
        return self.status == OK


def complete_parsed(
    backend: LLMBackend,
    requests: Sequence[ChatRequest],
    parse: Callable[[str], Optional[T]] | Sequence[Callable[[str], Optional[T]]],
    parse_retries: int = 2,
    retry_temperature: float = 0.7,
    progress: bool = False,
) -> List[Parsed[T]]:
    """``parse`` is one function for every answer, or one per request (when what counts as a
    valid answer depends on the item)."""
    parsers = list(parse) if isinstance(parse, Sequence) else [parse] * len(requests)
    out: List[Optional[Parsed[T]]] = [None] * len(requests)
    todo = list(range(len(requests)))
    for attempt in range(parse_retries + 1):
        if not todo:
            break
        batch = []
        for i in todo:
            req = requests[i]
            if attempt:
                s = req.sampling
                req = replace(req, sampling=replace(s, temperature=max(s.temperature, retry_temperature)),
                              sample_index=req.sample_index + attempt)
            batch.append(req)
        results: List[ChatResult] = backend.complete(batch, progress=progress and attempt == 0)
        still = []
        for i, res in zip(todo, results):
            if not res.ok:
                out[i] = Parsed(CALL_FAIL, None, None, attempt + 1, res.error.value if res.error else "unknown")
                continue
            value = parsers[i](res.text or "")
            if value is not None:
                out[i] = Parsed(OK, value, res.text, attempt + 1)
            else:
                out[i] = Parsed(PARSE_FAIL, None, res.text, attempt + 1)
                still.append(i)
        todo = still
    return out  # type: ignore[return-value]
