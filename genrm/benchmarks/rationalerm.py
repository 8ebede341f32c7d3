"""RationaleRM HelpSteer3 records (hub `Qwen/RationaleRM`, `helpsteer3_test_1000.jsonl`).

Fields: ``domain``, ``context`` (the conversation: [{role, content}] or text),
``response1``, ``response2``, ``human-checklist`` (the golden atomic reasons), and per
evaluated model ``<model>-checklist`` / ``-label`` / ``-generated_text``. The preferred
response comes from the preference field where present: HelpSteer3's
``overall_preference`` is negative when response1 is better (-> "A"), positive when
response2 is (-> "B"), 0 for a tie (no label); ``preference`` is read the same way, and a
``gt_label`` of A/B is taken as is. ``params.require_label: true`` rejects records without one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Dict, Optional

from genrm.benchmarks import PairwiseFormat
from genrm.records import PairwiseSample, checklist_field, conversation, label_field, text_field
from plumbing.data import FieldError

HUMAN = "human-checklist"


def preference_label(rec: Dict[str, Any]) -> Optional[str]:
    for name in ("overall_preference", "preference"):
        if rec.get(name) is not None:
            try:
                value = float(rec[name])
            except (TypeError, ValueError):
                raise FieldError(name, f"expected a number, got {rec[name]!r}") from None
            return "A" if value < 0 else "B" if value > 0 else None
    if rec.get("gt_label") is not None:
        return label_field(rec["gt_label"], "gt_label")
    return None


@dataclass
class RationaleRMParams:
    require_label: bool = False  # refuse a record without a preference (a tie or none)


class RationaleRMFormat(PairwiseFormat):
    Params = RationaleRMParams

    def convert(self, rec: Dict[str, Any]) -> PairwiseSample:
        if HUMAN not in rec:
            raise FieldError(HUMAN, "missing")
        checklist = checklist_field(rec[HUMAN], HUMAN)
        if not checklist:
            raise FieldError(HUMAN, "is empty")
        label = preference_label(rec)
        if label is None and self.params.require_label:
            raise FieldError("overall_preference", "no preference (tie or missing) and require_label is set")
        context = conversation(rec.get("context"), "context")
        a, b = text_field(rec, "response1"), text_field(rec, "response2")
        rid = rec.get("id")
        if rid is None:
            rid = hashlib.sha256(repr((context, a, b)).encode()).hexdigest()[:16]
        given = {k[: -len("-checklist")]: v for k, v in rec.items()
                 if k.endswith("-checklist") and k != HUMAN and isinstance(v, list)}
        return PairwiseSample(id=str(rid), context=context, response_a=a, response_b=b, gt_label=label,
                              gt_checklist=checklist, subset=rec.get("domain"), meta={"model_checklists": given})
