"""The MetaJudge: atomic rationale consistency (RationaleRM).

(a) decompose a free-form rationale into atomic reasons (when no checklist is given),
(b) match the reference items against the model items (validated line format; a wrong
count or malformed lines are re-asked, then the sample is counted invalid),
(c) score P/R/F1/AP with the reference analysis's rules (see :mod:`genrm.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from genrm.metrics import AtomicRules, atomic_scores, prepare_model_items
from genrm.parsing import parse_checklist, parse_matches
from genrm.prompts import decompose_messages, match_messages
from genrm.records import AtomicRecord
from plumbing.llm.parsed import CALL_FAIL, complete_parsed
from plumbing.llm.types import ChatRequest, LLMBackend, SamplingParams


@dataclass
class AtomicResult:
    status: str  # "valid" or "skipped"
    reason: Optional[str] = None  # why skipped
    reference: List[str] = field(default_factory=list)
    model_items: Optional[List[str]] = None  # what the matcher saw (after the cap)
    decomposition_raw: Optional[str] = None
    matcher_raw: Optional[str] = None
    scores: Optional[Dict[str, float]] = None

    def as_record(self, profile: Optional[str]) -> AtomicRecord:
        """What samples.jsonl keeps of it, with the profile its matcher answer was read with."""
        return AtomicRecord(self.status, self.reason, self.reference, self.model_items, self.decomposition_raw,
                            self.matcher_raw, dict(self.scores or {}), profile)


def decompose(backend: LLMBackend, rationales: Sequence[str], max_items: int, sampling: SamplingParams,
              parse_retries: int = 2, progress: bool = False):
    requests = [ChatRequest.of(decompose_messages(r, max_items), sampling) for r in rationales]
    return complete_parsed(backend, requests, lambda t: parse_checklist(t) or None, parse_retries,
                           progress=progress)


def evaluate_atomic(backend: LLMBackend, references: Sequence[List[str]], rationales: Sequence[Optional[str]],
                    rules: AtomicRules, sampling: SamplingParams, given: Optional[Sequence[Optional[List[str]]]] = None,
                    max_decomposed_items: int = 10, parse_retries: int = 2, progress: bool = False) -> List[AtomicResult]:
    """Atomic consistency of each rationale against its reference checklist.

    ``given[i]`` is the model's own checklist when the data has one; otherwise the
    rationale is decomposed by the MetaJudge first."""
    n = len(references)
    results = [AtomicResult("skipped", reference=list(references[i])) for i in range(n)]
    model_lists: List[Optional[List[str]]] = [None] * n
    to_decompose = [i for i in range(n) if not (given and given[i] is not None)]
    for i in range(n):
        if given and given[i] is not None:
            model_lists[i] = list(given[i])  # type: ignore[arg-type]
    if to_decompose:
        parsed = decompose(backend, [rationales[i] or "" for i in to_decompose], max_decomposed_items, sampling,
                           parse_retries, progress)
        for i, p in zip(to_decompose, parsed):
            results[i].decomposition_raw = p.raw
            if p.status == CALL_FAIL:
                results[i].reason = "call_fail"
            else:
                model_lists[i] = p.value or []
    to_match = []
    for i in range(n):
        if model_lists[i] is None:
            continue
        items, reason = prepare_model_items(model_lists[i], rules)  # type: ignore[arg-type]
        if items is None:
            results[i].reason = reason
            continue
        results[i].model_items = items
        to_match.append(i)
    requests = [ChatRequest.of(match_messages(references[i], results[i].model_items or []), sampling)
                for i in to_match]
    parsers = [_match_parser(len(references[i]), len(results[i].model_items or []), rules) for i in to_match]
    matched = complete_parsed(backend, requests, parsers, parse_retries, progress=progress)
    for i, p in zip(to_match, matched):
        results[i].matcher_raw = p.raw
        if p.ok:
            results[i].status, results[i].reason = "valid", None
            results[i].scores = atomic_scores(p.value, len(references[i]), len(results[i].model_items or []),
                                              rules.match.zero_in_ap)
        else:
            results[i].reason = "call_fail" if p.status == CALL_FAIL else "matcher_invalid"
    return results


def _match_parser(n: int, m: int, rules: AtomicRules):
    return lambda text: parse_matches(text, n, m, rules.match).matches
