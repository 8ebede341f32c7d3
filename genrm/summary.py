"""Streaming tally of judged samples into the summary of one benchmark (or one result file).

``genrm.evaluate`` and ``genrm.score`` both feed their samples through a :class:`Tally`, so
the same numbers come out whether a run judged the samples itself or read someone else's
results. Adding a sample is cheap (no per-sample objects are kept for label metrics), which
keeps scoring a million records fast.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


from genrm.metrics import ATOMIC_METRICS, atomic_metrics, label_metrics


@dataclass
class _Group:
    label: List[int] = field(default_factory=lambda: [0] * 6)  # plain ints: fast to bump
    unlabeled: int = 0
    swap_pairs: int = 0
    swap_consistent: int = 0
    atomic: Dict[str, List[float]] = field(default_factory=lambda: {k: [] for k in ATOMIC_METRICS})
    atomic_skipped: Dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def has_atomic(self) -> bool:
        return bool(self.atomic["ap"]) or bool(self.atomic_skipped)


class Tally:
    def __init__(self, breakdowns: Optional[List[str]] = None):
        self.total = _Group()
        self.by: Dict[str, Dict[str, _Group]] = {name: defaultdict(_Group) for name in (breakdowns or ["subset"])}
        self.metarm_ran = False

    def _groups(self, keys: Dict[str, Optional[str]]) -> List[_Group]:
        groups = [self.total]
        for name, value in keys.items():
            if value is not None and name in self.by:
                groups.append(self.by[name][str(value)])
        return groups

    def add_label(self, category: Optional[int], keys: Dict[str, Optional[str]]) -> None:
        """``category`` from :func:`genrm.metrics.category`, or None for a sample without a golden label."""
        for g in self._groups(keys):
            if category is None:
                g.unlabeled += 1
            else:
                g.label[category] += 1

    def add_swap(self, consistent: bool, keys: Dict[str, Optional[str]]) -> None:
        for g in self._groups(keys):
            g.swap_pairs += 1
            g.swap_consistent += int(consistent)

    def add_atomic(self, scores: Optional[Dict[str, float]], skip_reason: Optional[str],
                   keys: Dict[str, Optional[str]]) -> None:
        for g in self._groups(keys):
            if scores is not None:
                for k in ATOMIC_METRICS:
                    g.atomic[k].append(scores[k])
            else:
                g.atomic_skipped[skip_reason or "skipped"] += 1

    def _summary(self, g: _Group, bootstrap: int, seed: int, alpha: float) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if sum(g.label):
            out.update(label_metrics(g.label, bootstrap, seed, alpha))
            if not self.metarm_ran:
                for key in ("s_corr", "f_score"):
                    out[key] = out[f"{key}_ci"] = None
        if g.unlabeled:
            out["unlabeled"] = g.unlabeled
        if g.swap_pairs:
            out["swap_consistency"] = g.swap_consistent / g.swap_pairs
            out["swap_pairs"] = g.swap_pairs
        if g.has_atomic:
            out.update(atomic_metrics(g.atomic, dict(g.atomic_skipped), bootstrap, seed, alpha))
        return out

    def merge(self, other: "Tally") -> None:
        """Add another tally (e.g. of another part of the same file) into this one."""
        pairs = [(self.total, other.total)]
        for name, groups in other.by.items():
            pairs += [(self.by.setdefault(name, defaultdict(_Group))[k], g) for k, g in groups.items()]
        for mine, theirs in pairs:
            mine.label = [a + b for a, b in zip(mine.label, theirs.label)]
            mine.unlabeled += theirs.unlabeled
            mine.swap_pairs += theirs.swap_pairs
            mine.swap_consistent += theirs.swap_consistent
            for k in ATOMIC_METRICS:
                mine.atomic[k].extend(theirs.atomic[k])
            for reason, n in theirs.atomic_skipped.items():
                mine.atomic_skipped[reason] += n
        self.metarm_ran = self.metarm_ran or other.metarm_ran

    def summary(self, bootstrap: int = 1000, seed: int = 0, alpha: float = 0.05) -> Dict[str, Any]:
        out = self._summary(self.total, bootstrap, seed, alpha)
        for name, groups in self.by.items():
            if groups:
                out[f"by_{name}"] = {k: self._summary(g, bootstrap, seed, alpha) for k, g in sorted(groups.items())}
        return out
