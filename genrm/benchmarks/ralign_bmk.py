"""R-Align benchmark records (HelpSteer3, RewardBench2, PPE preference; hub `lyn22333/R-Align-BMK`).

Fields: ``id``, ``conversations`` [{role, content}] (the last turn is the prompt, earlier
turns are context), ``response_A``, ``response_B``, ``gt_label`` ("A"/"B"), ``gt_judgment``
(the golden rationale; may hold a thinking block), ``source`` ({subset: ...} or a string).
"""

from __future__ import annotations

from typing import Any, Dict

from genrm.benchmarks import PairwiseFormat
from genrm.records import PairwiseSample, conversation, label_field, text_field
from plumbing.data import FieldError


def subset_of(source: Any) -> str | None:
    if isinstance(source, dict):
        value = source.get("subset")
        return str(value) if value is not None else None
    return str(source) if source else None


class RAlignFormat(PairwiseFormat):
    def convert(self, rec: Dict[str, Any]) -> PairwiseSample:
        if "id" not in rec:
            raise FieldError("id", "missing")
        judgment = rec.get("gt_judgment")
        if judgment is not None and not isinstance(judgment, str):
            raise FieldError("gt_judgment", "expected text")
        return PairwiseSample(
            id=str(rec["id"]),
            context=conversation(rec.get("conversations"), "conversations"),
            response_a=text_field(rec, "response_A"),
            response_b=text_field(rec, "response_B"),
            gt_label=label_field(rec.get("gt_label"), "gt_label"),
            gt_judgment=judgment or None,
            subset=subset_of(rec.get("source")),
        )
