"""The pairwise sample every GenRM benchmark and training set is converted into, and the
judged row genrm.evaluate writes for it (samples.jsonl) and genrm.score and the exports read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from genrm.metrics import ATOMIC_METRICS, VERDICT_CATEGORY, WRONG, category
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


# ---------------------------------------------------------------------------- judged rows
# One contract for a line of DIR/<benchmark>/samples.jsonl: genrm.evaluate writes it, its
# tally, genrm.score (format=suite) and the papers' exports read it. to_json() writes the file
# format the suite has always written (a group of optional keys only when it applies), so
# older files read back unchanged and the exports stay byte for byte the same.


@dataclass
class AtomicRecord:
    """The MetaJudge's outcome for one sample (the row's ``atomic``): what genrm.score
    rescores and RationaleRM's matcher file is written from."""

    status: str  # "valid" (scored) or "skipped"
    skip_reason: Optional[str] = None
    reference: List[str] = field(default_factory=list)  # the golden checklist
    model_items: Optional[List[str]] = None  # what the matcher saw (after the cap)
    decomposition_raw: Optional[str] = None
    matcher_raw: Optional[str] = None
    scores: Dict[str, float] = field(default_factory=dict)  # ATOMIC_METRICS of a valid one
    profile: Optional[str] = None  # the atomic profile the matcher's answer was read with

    def to_json(self) -> Dict[str, Any]:
        return {"status": self.status, "skip_reason": self.skip_reason, "reference": self.reference,
                "model_items": self.model_items, "decomposition_raw": self.decomposition_raw,
                "matcher_raw": self.matcher_raw, **self.scores, "profile": self.profile}

    @classmethod
    def from_json(cls, rec: Any) -> "AtomicRecord":
        if not isinstance(rec, dict) or rec.get("status") not in ("valid", "skipped"):
            raise FieldError("atomic.status", "must be 'valid' or 'skipped'")
        scores: Dict[str, float] = {}
        if rec["status"] == "valid":
            try:
                scores = {k: float(rec[k]) for k in ATOMIC_METRICS}
            except (KeyError, TypeError, ValueError):
                raise FieldError("atomic", f"a valid record needs numbers {list(ATOMIC_METRICS)}") from None
        for key in ("reference", "model_items"):
            if rec.get(key) is not None and not isinstance(rec[key], list):
                raise FieldError(f"atomic.{key}", "expected a list")
        return cls(rec["status"], rec.get("skip_reason"), rec.get("reference") or [], rec.get("model_items"),
                   rec.get("decomposition_raw"), rec.get("matcher_raw"), scores, rec.get("profile"))

    def outcome(self) -> Tuple[Optional[Dict[str, float]], Optional[str]]:
        """(scores, None) of a valid record, (None, why) of a skipped one: what a tally counts."""
        if self.status == "valid":
            return dict(self.scores), None
        return None, self.skip_reason or "skipped"


@dataclass
class SwappedJudgment:
    """The GenRM's judgment of the same pair in the other order (``judging.swap=true``)."""

    judgment: Optional[str]  # its whole output (None when the call failed)
    pred: Optional[str]  # its verdict mapped back to the original order
    consistent: Optional[bool]  # both orders gave the same verdict
    error: Optional[str] = None  # backend failure kind


@dataclass
class MetaRMRecord:
    """The MetaRM's check of the rationale; present on a row it judged or passed over
    (``SkippedLabelMismatch``), absent where no MetaRM ran or no golden judgment exists."""

    raw: Optional[str] = None
    verdict: Optional[str] = None  # Correct | Incorrect | CallFail | ParseFail | SkippedLabelMismatch
    score: Optional[float] = None  # 1 Correct, 0 Incorrect, else None


_PREDS = ("A", "B", None, "")  # "" and None: no verdict


@dataclass
class JudgedRow:
    """One sample as genrm.evaluate judged it: one line of ``DIR/<benchmark>/samples.jsonl``.

    ``label_correct`` is decided once, under the run's swap policy; readers take it as given
    (a hand-written row without it: its ``model_pred`` against ``gt_label``)."""

    id: Optional[str]
    benchmark: Optional[str] = None
    subset: Optional[str] = None
    gt_label: Optional[str] = None
    model_judgment: Optional[str] = None
    model_pred: Optional[str] = None
    label_correct: Optional[bool] = None
    genrm_error: Optional[str] = None
    genrm_truncated: bool = False
    swapped: Optional[SwappedJudgment] = None
    meta: Optional[Dict[str, Any]] = None  # the sample's meta, what a format declares breakdowns by
    metarm: Optional[MetaRMRecord] = None
    atomic: Optional[AtomicRecord] = None

    def to_json(self) -> Dict[str, Any]:
        """The row as its JSON object, keys in the order the file has always had them."""
        out: Dict[str, Any] = {
            "id": self.id, "benchmark": self.benchmark, "subset": self.subset, "gt_label": self.gt_label,
            "model_judgment": self.model_judgment, "model_pred": self.model_pred,
            "label_correct": self.label_correct, "genrm_error": self.genrm_error,
            "genrm_truncated": self.genrm_truncated}
        if self.swapped is not None:
            out.update(model_judgment_swapped=self.swapped.judgment, model_pred_swapped=self.swapped.pred,
                       swap_consistent=self.swapped.consistent, genrm_error_swapped=self.swapped.error)
        if self.meta is not None:
            out["meta"] = self.meta
        if self.metarm is not None:
            out.update(metarm_raw=self.metarm.raw, metarm_verdict=self.metarm.verdict, metarm_score=self.metarm.score)
        if self.atomic is not None:
            out["atomic"] = self.atomic.to_json()
        return out

    @staticmethod
    def looks_like(rec: Dict[str, Any]) -> bool:
        """A record of this shape (for genrm.score's format=auto): the label flag or an atomic record."""
        return "atomic" in rec or "label_correct" in rec

    @classmethod
    def from_json(cls, rec: Any) -> "JudgedRow":
        """Read one row back, checking what the readers rely on; a wrong field raises
        :class:`FieldError` naming it (genrm.score adds the file and line)."""
        if not isinstance(rec, dict):
            raise FieldError("<record>", "expected an object")
        gt = rec.get("gt_label")
        if gt is not None:
            gt = label_field(gt, "gt_label")  # the benchmarks' rule: case and spaces do not matter
        for key in ("model_pred", "model_pred_swapped"):
            if rec.get(key) not in _PREDS:
                raise FieldError(key, f"must be 'A', 'B' or empty, got {rec[key]!r}")
        for key in ("label_correct", "swap_consistent"):
            if rec.get(key) not in (True, False, None):
                raise FieldError(key, f"must be true, false or null, got {rec[key]!r}")
        if rec.get("meta") is not None and not isinstance(rec["meta"], dict):
            raise FieldError("meta", "expected an object")
        swap_keys = ("model_judgment_swapped", "model_pred_swapped", "swap_consistent", "genrm_error_swapped")
        metarm_keys = ("metarm_raw", "metarm_verdict", "metarm_score")
        row = cls(rec.get("id"), rec.get("benchmark"), rec.get("subset"), gt, rec.get("model_judgment"),
                  rec.get("model_pred"), rec.get("label_correct"), rec.get("genrm_error"),
                  rec.get("genrm_truncated", False),
                  SwappedJudgment(*(rec.get(k) for k in swap_keys)) if any(k in rec for k in swap_keys) else None,
                  rec.get("meta"),
                  MetaRMRecord(*(rec.get(k) for k in metarm_keys)) if any(k in rec for k in metarm_keys) else None)
        verdict = row.metarm_verdict
        if verdict is not None and verdict not in VERDICT_CATEGORY:
            raise FieldError("metarm_verdict", f"must be one of {sorted(VERDICT_CATEGORY)}, got {verdict!r}")
        if row.correct and verdict is not None and VERDICT_CATEGORY[verdict] == WRONG:
            raise FieldError("metarm_verdict", f"{verdict} on a sample whose label is correct")
        if rec.get("atomic"):
            row.atomic = AtomicRecord.from_json(rec["atomic"])
        return row

    @property
    def correct(self) -> Optional[bool]:
        """Label-correct (None without a golden label)."""
        if self.gt_label is None:
            return None
        if self.label_correct is not None:
            return bool(self.label_correct)
        return self.model_pred == self.gt_label

    @property
    def metarm_verdict(self) -> Optional[str]:
        return self.metarm.verdict if self.metarm is not None else None

    @property
    def swap_consistent(self) -> Optional[bool]:
        return self.swapped.consistent if self.swapped is not None else None

    def category(self) -> Optional[int]:
        """The sample's :func:`genrm.metrics.category` (None without a golden label)."""
        correct = self.correct
        return None if correct is None else category(correct, self.metarm_verdict)

    @property
    def call_failed(self) -> bool:
        """A GenRM call of the row (either order) failed."""
        return bool(self.genrm_error or (self.swapped is not None and self.swapped.error))

    @property
    def no_verdict(self) -> bool:
        """The GenRM answered but an order gave no verdict."""
        return not self.call_failed and (self.model_pred is None
                                         or (self.swapped is not None and self.swapped.pred is None))
