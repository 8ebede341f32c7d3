"""The pairwise sample every GenRM benchmark and training set is converted into."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from plumbing.data import FieldError, chat_messages

LABELS = ("A", "B")


@dataclass
class PairwiseSample:
    """Two candidate responses to one conversation, with what is known about the right choice.

    ``context`` is the conversation up to and including the user turn both responses answer.
    ``gt_label`` is "A" or "B" (None when the data set does not say); ``gt_judgment`` the
    golden rationale (R-Align); ``gt_checklist`` the golden atomic reasons (RationaleRM).
    """

    id: str
    context: List[Dict[str, str]]
    response_a: str
    response_b: str
    gt_label: Optional[str] = None
    gt_judgment: Optional[str] = None
    gt_checklist: Optional[List[str]] = None
    subset: Optional[str] = None
    meta: Dict[str, Any] = field(default_factory=dict)

    def swapped(self) -> "PairwiseSample":
        """The same comparison with the responses in the other order."""
        flip = {"A": "B", "B": "A"}
        return PairwiseSample(self.id, self.context, self.response_b, self.response_a,
                              flip.get(self.gt_label) if self.gt_label else None, self.gt_judgment,
                              self.gt_checklist, self.subset, dict(self.meta, swapped=not self.meta.get("swapped")))


def sample_to_json(sample: PairwiseSample) -> str:
    """A sample as one JSON string: how training data carries it to the reward (TRL column,
    OpenRLHF ``--data.label_key``). Of ``meta`` only ``swapped`` travels: the MetaRM must know
    that the golden judgment names the answers in the other order."""
    return json.dumps({"id": sample.id, "context": sample.context, "response_a": sample.response_a,
                       "response_b": sample.response_b, "gt_label": sample.gt_label,
                       "gt_judgment": sample.gt_judgment, "gt_checklist": sample.gt_checklist,
                       "subset": sample.subset, **({"meta": {"swapped": True}} if sample.meta.get("swapped") else {})},
                      ensure_ascii=False)


def sample_from_json(text: str) -> PairwiseSample:
    return PairwiseSample(**json.loads(text))


def conversation(value: Any, name: str) -> List[Dict[str, str]]:
    """A conversation given as a list of turns or as one string (a single user turn); the
    last turn must be the user's (the one both responses answer)."""
    if isinstance(value, str):
        if not value.strip():
            raise FieldError(name, "is empty")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise FieldError(name, "expected a non-empty list of {role, content} turns or a string")
    return chat_messages(value, name, last_user=True)


def text_field(rec: Dict[str, Any], name: str, allow_empty: bool = True) -> str:
    if name not in rec or rec[name] is None:
        raise FieldError(name, "missing")
    if not isinstance(rec[name], str):
        raise FieldError(name, f"expected text, got {type(rec[name]).__name__}")
    if not allow_empty and not rec[name].strip():
        raise FieldError(name, "is empty")
    return rec[name]


def label_field(value: Any, name: str) -> str:
    label = str(value).strip().upper() if value is not None else ""
    if label not in LABELS:
        raise FieldError(name, f"must be 'A' or 'B', got {value!r}")
    return label


def checklist_field(value: Any, name: str) -> List[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise FieldError(name, "expected a list of strings")
    return [x.strip() for x in value if x.strip()]
