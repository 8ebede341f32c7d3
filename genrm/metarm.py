"""The MetaRM: does a GenRM's rationale agree with the golden judgment? (R-Align)

Called only for label-correct samples (the caller gates); every call ends as ``Correct``,
``Incorrect``, ``CallFail`` (no answer after retries) or ``ParseFail`` (answers without a
verdict), never as an exception.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

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


class MetaRMStream:
    """MetaRM calls that start while the GenRM is still judging.

    ``submit`` (non-blocking, callable from any thread, e.g. a backend's result callback)
    queues one (sample, rationale); worker threads send what is queued in batches, so the
    MetaRM endpoint is busy while the GenRM endpoint is, instead of after it. ``results()``
    waits for everything submitted and returns {key: MetaVerdict}.
    """

    def __init__(self, backend: LLMBackend, sampling: SamplingParams, parse_retries: int = 2,
                 workers: int = 4, max_batch: int = 256):
        self.backend, self.sampling, self.parse_retries = backend, sampling, parse_retries
        self.max_batch = max_batch
        self._queue: "queue.Queue[Optional[Tuple[object, PairwiseSample, str]]]" = queue.Queue()
        self._results: Dict[object, MetaVerdict] = {}
        self._lock = threading.Lock()
        self._errors: List[BaseException] = []
        self._threads = [threading.Thread(target=self._work, name=f"metarm-{k}", daemon=True) for k in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, key: object, sample: PairwiseSample, rationale: str) -> None:
        self._queue.put((key, sample, rationale))

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # leave the stop signal for this thread's next turn
                    break
                batch.append(item)
            try:
                verdicts = meta_judge(self.backend, [(s, r) for _, s, r in batch], self.sampling, self.parse_retries)
                with self._lock:
                    self._results.update({key: v for (key, _, _), v in zip(batch, verdicts)})
            except BaseException as e:  # a bug, not a judge failure (those are verdicts): report it
                with self._lock:
                    self._errors.append(e)

    def results(self) -> Dict[object, MetaVerdict]:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()
        if self._errors:
            raise self._errors[0]
        return dict(self._results)
