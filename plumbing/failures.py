"""The failure budget: a model role whose calls fail too often ends the stage as FAILED.

Retries and typed failures keep one bad call from killing a run; this keeps many bad calls
from passing as a result (a 5 s outage scored as wrong verdicts, a policy trained on the
failure reward). ``max_failure_rate`` is each stage's setting (``StageConfig``).
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Deque, List, Mapping, Optional, Sequence

from plumbing.errors import RunFailed
from plumbing.llm.types import ChatRequest, ChatResult, LLMBackend, OnResult

MIN_CALLS = 20  # during training, the rate is judged once this many calls have come back
WINDOW = 200  # ... over the last this many: a judge that fails late in a long run stops it soon


def over_budget(calls: Mapping[str, Mapping[str, Any]], max_rate: float) -> List[str]:
    """Roles (of ``{role: {"requests": n, "failed": k}}``, backend stats) over the budget, described."""
    out = []
    for role, c in calls.items():
        n, failed = int(c.get("requests", 0)), int(c.get("failed", 0))
        if n and failed / n > max_rate:
            out.append(f"{role}: {failed} of {n} calls failed ({failed / n:.1%} > max_failure_rate={max_rate:g})")
    return out


def enforce(calls: Mapping[str, Mapping[str, Any]], max_rate: float, written: Sequence[str] = ()) -> None:
    """Raise :class:`RunFailed` when a role is over the budget; ``written``: where the outputs are."""
    over = over_budget(calls, max_rate)
    if over:
        where = f" (outputs written: {', '.join(map(str, written))})" if written else ""
        raise RunFailed("too many model calls failed, so the results are not the model's:\n  - "
                        + "\n  - ".join(over) + where)


class FailureGuard(LLMBackend):
    """A backend that stops the run (``RunFailed`` from ``complete``) once more than
    ``max_rate`` of its last ``window`` results (at least ``min_calls`` of them) failed: a
    trainer must not go on learning from failure rewards, whether the judge fails from the
    start or late in a long run."""

    def __init__(self, inner: LLMBackend, role: str, max_rate: float, min_calls: int = MIN_CALLS,
                 window: int = WINDOW):
        super().__init__()
        self.wrapped, self.role, self.max_rate, self.min_calls = inner, role, max_rate, min_calls
        self.inner = getattr(inner, "inner", inner)  # the calls sent, as stages read them off a cached backend
        self.model_id = inner.model_id
        self._lock = threading.Lock()
        self._recent: Deque[bool] = collections.deque(maxlen=max(window, min_calls))

    def _complete(self, requests: Sequence[ChatRequest], on_result: OnResult, progress: bool) -> List[ChatResult]:
        results = self.wrapped.complete(requests, on_result=on_result, progress=progress)
        with self._lock:
            self._recent.extend(not r.ok for r in results)
            n, failed = len(self._recent), sum(self._recent)
        if n >= self.min_calls:
            enforce({self.role: {"requests": n, "failed": failed}}, self.max_rate)
        return results

    def close(self) -> None:
        self.wrapped.close()


def guarded(backend: LLMBackend, role: str, max_rate: Optional[float]) -> LLMBackend:
    return backend if max_rate is None else FailureGuard(backend, role, max_rate)

