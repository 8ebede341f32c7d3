"""Run a GenRM over pairwise samples: one judgment per sample, or two with position swap."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from genrm.parsing import parse_verdict
from genrm.prompts import JUDGE_SYSTEM, judge_messages
from genrm.records import PairwiseSample
from plumbing.llm.types import ChatRequest, ChatResult, LLMBackend, SamplingParams

_FLIP = {"A": "B", "B": "A"}


@dataclass
class Judgment:
    raw: Optional[str]  # the GenRM's whole output (None when the call failed)
    pred: Optional[str]  # "A"/"B" in the sample's original order, None if unparsable
    error: Optional[str] = None  # backend failure kind
    raw_swapped: Optional[str] = None
    pred_swapped: Optional[str] = None  # mapped back to the original order
    error_swapped: Optional[str] = None
    swapped: bool = False
    truncated: bool = False  # an order's output stopped at max_tokens (a verdict may be missing for that)

    @property
    def consistent(self) -> Optional[bool]:
        """Both orders gave the same verdict (None without a swap)."""
        if not self.swapped:
            return None
        return self.pred is not None and self.pred == self.pred_swapped

    def label_correct(self, gt: Optional[str], policy: str = "agree") -> Optional[bool]:
        """Right verdict; with a swap and policy "agree" both orders must be right."""
        if gt is None:
            return None
        if self.swapped and policy == "agree":
            return self.pred == gt and self.pred_swapped == gt
        return self.pred == gt


def _judgment(r: ChatResult, rs: Optional[ChatResult]) -> Judgment:
    j = Judgment(r.text, parse_verdict(r.text) if r.ok else None, r.error.value if r.error else None,
                 truncated=any(x is not None and x.finish_reason == "length" for x in (r, rs)))
    if rs is not None:
        p = parse_verdict(rs.text) if rs.ok else None
        j.raw_swapped, j.pred_swapped = rs.text, _FLIP[p] if p else None
        j.error_swapped, j.swapped = (rs.error.value if rs.error else None), True
    return j


def judge(backend: LLMBackend, samples: Sequence[PairwiseSample], sampling: SamplingParams,
          swap: bool = False, system: Optional[str] = JUDGE_SYSTEM, progress: bool = False,
          on_judgment: Optional[Callable[[int, Judgment], None]] = None) -> List[Judgment]:
    """Judge every sample (both orders when ``swap``) in one batch through the backend.

    ``on_judgment(i, judgment)`` is called as soon as sample i is fully judged, so work
    that depends on the verdict (the MetaRM) can start before the batch ends."""
    n = len(samples)
    requests = [ChatRequest.of(judge_messages(s, system), sampling) for s in samples]
    if swap:
        requests += [ChatRequest.of(judge_messages(s.swapped(), system), sampling) for s in samples]
    done: Dict[int, ChatResult] = {}
    lock = threading.Lock()

    def _on_result(k: int, res: ChatResult) -> None:
        i = k % n
        with lock:
            done[k] = res
            ready = (i in done and (not swap or i + n in done))
        if ready and on_judgment is not None:
            on_judgment(i, _judgment(done[i], done.get(i + n) if swap else None))

    results = backend.complete(requests, on_result=_on_result, progress=progress)
    return [_judgment(results[i], results[i + n] if swap else None) for i in range(n)]
