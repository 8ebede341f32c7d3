"""JudgeBench (hub `ScalerLab/JudgeBench`, splits `gpt` and `claude`): label accuracy only.

Fields: ``pair_id``, ``question``, ``response_A``, ``response_B``, ``label`` ("A>B" or
"B>A"), ``source`` (knowledge / reasoning / math / coding origin)."""

from __future__ import annotations

from typing import Any, Dict

from genrm.benchmarks import PairwiseFormat
from genrm.records import PairwiseSample, conversation, text_field
from plumbing.data import FieldError

_LABELS = {"A>B": "A", "B>A": "B", "A>>B": "A", "B>>A": "B"}


class JudgeBenchFormat(PairwiseFormat):
    def convert(self, rec: Dict[str, Any]) -> PairwiseSample:
        label = _LABELS.get(str(rec.get("label", "")).replace(" ", ""))
        if label is None:
            raise FieldError("label", f"must be 'A>B' or 'B>A', got {rec.get('label')!r}")
        if rec.get("pair_id") is None:
            raise FieldError("pair_id", "missing")
        source = rec.get("source")
        return PairwiseSample(id=str(rec["pair_id"]), context=conversation(rec.get("question"), "question"),
                              response_a=text_field(rec, "response_A"), response_b=text_field(rec, "response_B"),
                              gt_label=label, subset=str(source).split("-")[0] if source else None)
