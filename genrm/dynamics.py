"""Training dynamics of a GenRM (RationaleRM's figure): per step, the outcome reward and the
rationale signal, for every reward, whether or not the reward uses the rationale.

- ``outcome_reward``: the label-correct rate over the step's rollouts;
- ``rationale_correct``: the MetaRM-``Correct`` rate among label-correct rollouts;
- ``checklist_ap``: the mean AP of label-correct rollouts against their golden checklist,
  where the samples carry one.

The rationale signal comes from the reward's own judge where it has one (``measures`` of the
reward: ralign's MetaRM verdicts, hybrid's AP; never called twice) and otherwise from the
*monitor* (``llm@monitor=...``), a judge that only measures: its verdicts never reach the
reward, its failures are counted (``monitor_fail``), never raised, never guarded. Which
rollouts it judges is decided by a hash of (seed, sample, completion), not by any random
stream, so measuring changes neither rewards nor the trainer's RNG.

Each rollout gets rates an engine averages over a step like any diagnostic (TRL's log_metric,
OpenRLHF's ``extra_logs``); a rate among a subset is a ``_num`` / ``_den`` pair, whose ratio
(:func:`plumbing.engines.derive_ratios`) is the metric itself, exact over any window.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from genrm.metarm import CORRECT, INCORRECT, meta_judge, rationale_of
from genrm.records import sample_to_json
from genrm.settings import AtomicListSettings, MetaRMSettings
from plumbing.config.schema import Problems

PREFIX = "genrm_dynamics/"
OUTCOME, RATIONALE, AP, FAIL = "outcome_reward", "rationale_correct", "checklist_ap", "monitor_fail"
SIGNALS = (RATIONALE, AP)
# what each rollout carries (rates over the step's rollouts); RATIONALE and AP are num / den
KEYS = (OUTCOME, RATIONALE + "_num", RATIONALE + "_den", AP + "_num", AP + "_den", FAIL)
LOGGED = tuple(PREFIX + k for k in KEYS)


@dataclass
class DynamicsSettings(MetaRMSettings, AtomicListSettings):
    """What the monitor measures and how much of it (the MetaRM's and atomic list's
    settings as the rewards take them, for the monitor's own calls)."""

    every: int = 1  # measure the rationale every n-th step (local engine; OpenRLHF gives its reward no step)
    fraction: float = 1.0  # share of label-correct rollouts the monitor judges (chosen by hash)
    seed: int = 0  # of that choice
    # signals that must be measured (rationale_correct, checklist_ap): refused at start if nothing can
    require: List[str] = field(default_factory=list)

    def check(self) -> Problems:
        p = MetaRMSettings.check(self) + AtomicListSettings.check(self)
        if self.every < 1:
            p.append(("every", f"must be >= 1, got {self.every}"))
        if not 0 < self.fraction <= 1:
            p.append(("fraction", f"must be in (0, 1], got {self.fraction}"))
        for s in self.require:
            if s not in SIGNALS:
                p.append(("require", f"must name signals of {list(SIGNALS)}, got {s!r}"))
        return p


def sources(reward: Any, monitor: bool) -> Dict[str, Optional[str]]:
    """Where each rationale signal comes from: ``reward`` (its own judge), ``monitor`` or None."""
    measured = tuple(getattr(reward, "measures", ()))
    return {s: "reward" if s in measured else ("monitor" if monitor else None) for s in SIGNALS}


def chosen(seed: int, fraction: float, rollout: Any) -> bool:
    """Whether the monitor judges this rollout: a hash of (seed, sample, completion) below
    ``fraction``; the same rollout gets the same answer in any order, thread or process."""
    if fraction >= 1:
        return True
    h = hashlib.blake2b(f"{seed}\0{sample_to_json(rollout.sample)}\0{rollout.completion}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big") / 2 ** 64 < fraction


class Dynamics:
    """Measures a step's rollouts after the reward scored them; reads the results, never
    changes them. ``monitor``: the monitor's Judge (None: only what the reward measures)."""

    def __init__(self, reward: Any, settings: Optional[DynamicsSettings] = None, monitor: Any = None):
        self.settings = settings or DynamicsSettings()
        self.monitor = monitor
        self.sources = sources(reward, monitor is not None)
        self.judged = 0  # rollouts the monitor was asked about
        self.failed = 0  # ... that gave no verdict (call or parse failure, or an error)
        self._lock = threading.Lock()

    def measure(self, rollouts: Sequence[Any], results: Sequence[Any], step: Optional[int] = None) -> List[Dict[str, float]]:
        """One dict of :data:`LOGGED` rates per rollout. ``step``: steps done (None: unknown)."""
        rows = [{k: 0.0 for k in KEYS} for _ in rollouts]
        correct = [bool(r.diagnostics.get("label_correct")) for r in results]
        for row, c in zip(rows, correct):
            row[OUTCOME] = float(c)
        due = step is None or step % self.settings.every == 0
        if self.sources[RATIONALE] == "reward":
            for row, c, r in zip(rows, correct, results):
                d = r.diagnostics
                if c and (d.get("metarm_correct") or d.get("metarm_incorrect")):
                    row[RATIONALE + "_num"], row[RATIONALE + "_den"] = float(bool(d.get("metarm_correct"))), 1.0
        elif self.sources[RATIONALE] == "monitor" and due:
            self._rationale(rollouts, rows, correct)
        if self.sources[AP] == "reward":
            for row, c, r in zip(rows, correct, results):
                if c and r.diagnostics.get("ap_measured"):
                    row[AP + "_num"], row[AP + "_den"] = float(r.diagnostics.get("ap", 0.0)), 1.0
        elif self.sources[AP] == "monitor" and due:
            self._checklist(rollouts, rows, correct)
        return [{PREFIX + k: v for k, v in row.items()} for row in rows]

    def _pick(self, rollouts: Sequence[Any], correct: Sequence[bool], field_: str) -> List[int]:
        s = self.settings
        return [i for i, r in enumerate(rollouts)
                if correct[i] and getattr(r.sample, field_) and chosen(s.seed, s.fraction, r)]

    def _count(self, judged: int, failed: int) -> None:
        with self._lock:
            self.judged += judged
            self.failed += failed

    def _rationale(self, rollouts: Sequence[Any], rows: List[Dict[str, float]], correct: Sequence[bool]) -> None:
        picked = self._pick(rollouts, correct, "gt_judgment")
        if not picked:
            return
        s, judge = self.settings, self.monitor
        try:
            verdicts = [v.verdict for v in meta_judge(judge.backend, [(rollouts[i].sample, rationale_of(
                rollouts[i].completion, s.rationale)) for i in picked], judge.sampling, s.parse_retries)]
        except Exception:  # noqa: BLE001 - a monitor never stops training: counted as failed
            verdicts = [None] * len(picked)
        failed = 0
        for i, v in zip(picked, verdicts):
            if v in (CORRECT, INCORRECT):
                rows[i][RATIONALE + "_num"], rows[i][RATIONALE + "_den"] = float(v == CORRECT), 1.0
            else:
                rows[i][FAIL], failed = 1.0, failed + 1
        self._count(len(picked), failed)

    def _checklist(self, rollouts: Sequence[Any], rows: List[Dict[str, float]], correct: Sequence[bool]) -> None:
        from genrm.metajudge import evaluate_atomic
        from genrm.metrics import AtomicRules

        picked = self._pick(rollouts, correct, "gt_checklist")
        if not picked:
            return
        s, judge = self.settings, self.monitor
        try:
            atomic: List[Any] = evaluate_atomic(
                judge.backend, [rollouts[i].sample.gt_checklist for i in picked],
                [rationale_of(rollouts[i].completion, s.rationale) for i in picked],
                AtomicRules(s.max_model_items, s.skip_more_than, s.skip_empty), judge.sampling,
                max_decomposed_items=s.max_decomposed_items, parse_retries=s.parse_retries)
        except Exception:  # noqa: BLE001 - counted, never raised
            atomic = [None] * len(picked)
        failed = 0
        for i, a in zip(picked, atomic):
            if a is not None and a.status == "valid" and a.scores:
                rows[i][AP + "_num"], rows[i][AP + "_den"] = float(a.scores["ap"]), 1.0
            elif a is None or a.reason in ("call_fail", "matcher_invalid"):
                rows[i][FAIL], failed = 1.0, failed + 1
        self._count(len(picked), failed)

    def summary(self) -> Dict[str, Any]:
        return {"sources": dict(self.sources), "monitor_judged": self.judged, "monitor_failed": self.failed}


class MeasuredReward:
    """A reward whose results also carry the dynamics rates in their diagnostics: what the
    OpenRLHF reward module scores with, so ``extra_logs`` has them (same names as TRL's)."""

    def __init__(self, reward: Any, dynamics: Dynamics):
        self.reward, self.dynamics = reward, dynamics

    def score(self, rollouts: Sequence[Any]) -> List[Any]:
        results = self.reward.score(rollouts)
        for r, row in zip(results, self.dynamics.measure(rollouts, results)):
            r.diagnostics.update(row)
        return results
