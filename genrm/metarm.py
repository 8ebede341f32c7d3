"""The MetaRM: does a GenRM's rationale agree with the golden judgment? (R-Align)

Called only for label-correct samples (the caller gates); every call ends as ``Correct``,
``Incorrect``, ``CallFail`` (no answer after retries) or ``ParseFail`` (answers without a
verdict), never as an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from genrm.parsing import parse_metarm, strip_thinking
from genrm.prompts import metarm_messages
from genrm.records import PairwiseSample
from plumbing.llm.parsed import CALL_FAIL, OK, complete_parsed
from plumbing.llm.types import ChatRequest, LLMBackend, SamplingParams

CORRECT, INCORRECT, CALLFAIL, PARSEFAIL, SKIPPED = "Correct", "Incorrect", "CallFail", "ParseFail", "SkippedLabelMismatch"


@dataclass
class MetaVerdict:
    verdict: str  # Correct | Incorrect | CallFail | ParseFail
    raw: Optional[str]
    attempts: int

    @property
    def score(self) -> Optional[int]:
        return {CORRECT: 1, INCORRECT: 0}.get(self.verdict)


def rationale_of(output: Optional[str], source: str = "answer") -> str:
    """What the MetaRM reads of a GenRM output: the answer after thinking, or all of it."""
    if source == "full" or not output:
        return output or ""
    return strip_thinking(output) or output


def meta_judge(backend: LLMBackend, items: Sequence[Tuple[PairwiseSample, str]], sampling: SamplingParams,
               parse_retries: int = 2, progress: bool = False) -> List[MetaVerdict]:
    """Judge (sample, GenRM rationale) pairs against each sample's golden judgment."""
    requests = [ChatRequest.of(metarm_messages(s, rationale, strip_thinking(s.gt_judgment or "")), sampling)
                for s, rationale in items]
    parsed = complete_parsed(backend, requests, parse_metarm, parse_retries, progress=progress)
    out = []
    for p in parsed:
        verdict = p.value if p.status == OK else (CALLFAIL if p.status == CALL_FAIL else PARSEFAIL)
        out.append(MetaVerdict(verdict, p.raw, p.attempts))
    return out
