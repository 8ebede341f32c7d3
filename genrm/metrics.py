"""Rationale-aware GenRM metrics, exactly as DESIGN.md defines them. Pure functions.

Label metrics (R-Align): every sample falls in one category
    WRONG (label wrong or unparsable: MetaRM not called, ``SkippedLabelMismatch``),
    CORRECT / INCORRECT (label right, MetaRM judged the rationale),
    CALL_FAIL / PARSE_FAIL (label right, MetaRM gave no usable answer),
    UNJUDGED (label right, no MetaRM run: disabled, or no golden judgment)
and    L-Acc = label_correct / n,  S-Corr = 1 - Correct / (Correct + Incorrect),
       F-Score = Correct / (n - CallFail - ParseFail - Unjudged).

Atomic consistency (RationaleRM), per sample with reference items R1..Rn, model items
S1..Sm and each Ri's best match (j, score), S0 = none:
    Recall = sum_i score_i / n,   Precision = sum over matched Sj of best(Sj) / m,
    F1 = harmonic mean,           AP = (1/n) sum_k (sum_{t<=k} best(s_t)) / k
over the matched model indices s_1 < s_2 < ... (unmatched S items take no rank).

Intervals: each label metric is a proportion (L-Acc = label_correct of n, S-Corr =
Incorrect of judged, F-Score = Correct of its denominator), and so is a mean of 0/1 values
(a pass rate): they get Wilson score intervals, which stay honest at 0/n and n/n where a
percentile bootstrap collapses to [0, 0]. Means of graded values (atomic P/R/F1/AP, avg@n
scores) get a percentile bootstrap, O(B * U) (multinomial over the U distinct values), which
for scores in [0, 1] is widened to Wilson at their mean where that is wider (a conservative
bound: a nearly constant sample otherwise claims a certainty its size does not give).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from genrm.parsing import MATCH_PROFILES, MatchRules

# ---------------------------------------------------------------------------- label metrics
WRONG, CORRECT, INCORRECT, CALL_FAIL, PARSE_FAIL, UNJUDGED = range(6)
VERDICT_CATEGORY = {"Correct": CORRECT, "Incorrect": INCORRECT, "CallFail": CALL_FAIL,
                    "ParseFail": PARSE_FAIL, "SkippedLabelMismatch": WRONG}


def category(label_correct: bool, metarm_verdict: Optional[str]) -> int:
    """The category of one sample from its label correctness and MetaRM verdict."""
    if not label_correct:
        return WRONG
    if metarm_verdict is None:
        return UNJUDGED
    cat = VERDICT_CATEGORY.get(metarm_verdict)
    if cat is None or cat == WRONG:
        raise ValueError(f"MetaRM verdict {metarm_verdict!r} on a label-correct sample")
    return cat


def _label_from_counts(c: np.ndarray) -> Dict[str, np.ndarray]:
    """Metrics from category counts; ``c`` has shape (..., 6). NaN where undefined."""
    c = c.astype(float)
    n = c.sum(-1)
    label_correct = n - c[..., WRONG]
    judged = c[..., CORRECT] + c[..., INCORRECT]
    f_den = n - c[..., CALL_FAIL] - c[..., PARSE_FAIL] - c[..., UNJUDGED]
    # No MetaRM answer for any label-correct sample (MetaRM off): F-Score is undefined, not 0.
    no_metarm = (c[..., UNJUDGED] > 0) & (c[..., UNJUDGED] == label_correct)
    with np.errstate(invalid="ignore", divide="ignore"):
        l_acc = np.where(n > 0, label_correct / n, np.nan)
        s_corr = np.where(judged > 0, 1.0 - c[..., CORRECT] / judged, np.nan)
        f_score = np.where((f_den > 0) & ~no_metarm, c[..., CORRECT] / f_den, np.nan)
    return {"l_acc": l_acc, "s_corr": s_corr, "f_score": f_score}


def label_counts(categories: Iterable[int]) -> np.ndarray:
    return np.bincount(np.fromiter(categories, dtype=np.int64), minlength=6)[:6]


def label_metrics(counts: Sequence[int], bootstrap: int = 1000, seed: int = 0,
                  alpha: float = 0.05) -> Dict[str, object]:
    """L-Acc, S-Corr, F-Score with counts and Wilson intervals (none when ``bootstrap`` is 0,
    the stage's "no intervals"), as plain numbers."""
    c = np.asarray(counts, dtype=np.int64)
    point = _label_from_counts(c)
    out: Dict[str, object] = {
        "n": int(c.sum()), "label_correct": int(c.sum() - c[WRONG]), "correct": int(c[CORRECT]),
        "incorrect": int(c[INCORRECT]), "call_fail": int(c[CALL_FAIL]), "parse_fail": int(c[PARSE_FAIL]),
        "unjudged": int(c[UNJUDGED]),
    }
    n, label_correct = int(c.sum()), int(c.sum() - c[WRONG])
    of = {"l_acc": (label_correct, n), "s_corr": (int(c[INCORRECT]), int(c[CORRECT] + c[INCORRECT])),
          "f_score": (int(c[CORRECT]), int(n - c[CALL_FAIL] - c[PARSE_FAIL] - c[UNJUDGED]))}
    for name, value in point.items():
        out[name] = _num(value)
        out[f"{name}_ci"] = wilson_interval(*of[name], alpha) if bootstrap and out[name] is not None else None
    return out


# ---------------------------------------------------------------------------- atomic metrics
@dataclass(frozen=True)
class AtomicRules:
    """The reference analysis's rules, as overridable settings."""

    max_model_items: int = 5  # the model list is cut to its first k items before matching
    skip_more_than: int = 10  # samples whose model list is longer than this are skipped
    skip_empty: bool = True  # samples whose model list is empty are skipped
    match: MatchRules = MATCH_PROFILES["strict"]  # how the matcher's answer is read
    # a matcher output with no answer (a failed call): counted as an error and passed over
    # (``error``, RationaleRM's analysis) or a bad record (``stop``: the file is refused)
    failed_call: str = "stop"
    # an answer that cannot be read is an error even in a sample whose model list is then
    # passed over (too long, empty): RationaleRM's analysis reads the answer first
    errors_first: bool = False


def prepare_model_items(items: Sequence[str], rules: AtomicRules) -> Tuple[Optional[List[str]], Optional[str]]:
    """The model items the matcher sees, or (None, reason to skip the sample)."""
    if not items and rules.skip_empty:
        return None, "empty_model_list"
    if len(items) > rules.skip_more_than:
        return None, "model_list_too_long"
    return list(items[: rules.max_model_items]), None


def atomic_scores(matches: Sequence[Tuple[int, int, float]], n: int, m: int,
                  zero_in_ap: bool = False) -> Dict[str, float]:
    """Precision, recall, F1 and AP of one sample from its matcher result.

    ``matches`` are (reference item i, model item j, score) lines; j = 0 means no match, and
    a line whose i is above n or whose j is past m is dropped (as RationaleRM's analysis does). Recall: each reference
    item's best score, over n; precision: each model item's best score, over m; AP ranks
    the model items by position (those whose best is 0 only with ``zero_in_ap``, as
    RationaleRM's analysis does), over n.
    """
    if n <= 0:
        raise ValueError("a sample needs at least one reference item")
    kept = [(i, j, s) for i, j, s in matches if j != 0 and i <= n and j <= m]  # as the reference: R0 too
    by_ref: Dict[int, float] = {}
    best: Dict[int, float] = {}
    for i, j, score in kept:
        by_ref[i] = max(by_ref.get(i, 0.0), score)
        best[j] = max(best.get(j, 0.0), score)
    recall = sum(by_ref.values()) / n
    precision = sum(best.values()) / m if m > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    running, ap = 0.0, 0.0
    for k, j in enumerate(sorted(j for j in best if zero_in_ap or best[j] > 0), start=1):
        running += best[j]
        ap += running / k
    return {"precision": precision, "recall": recall, "f1": f1, "ap": ap / n}


ATOMIC_METRICS = ("precision", "recall", "f1", "ap")


def atomic_metrics(per_sample: Mapping[str, Sequence[float]], skipped: Mapping[str, int],
                   bootstrap: int = 1000, seed: int = 0, alpha: float = 0.05) -> Dict[str, object]:
    """Means over valid samples with bootstrap intervals, and the valid/skipped counts.

    ``per_sample[metric]`` holds the valid samples' values of each of ATOMIC_METRICS."""
    valid = len(per_sample[ATOMIC_METRICS[0]]) if per_sample else 0
    out: Dict[str, object] = {"valid": valid, "skipped": int(sum(skipped.values())),
                              "skipped_by_reason": dict(skipped)}
    for name in ATOMIC_METRICS:
        values = np.asarray(per_sample.get(name, []), dtype=float)
        out[name] = _num(values.mean()) if len(values) else None
        out[f"{name}_ci"] = mean_ci(values, bootstrap, seed, alpha) if len(values) else None
    return out


# ---------------------------------------------------------------------------- intervals
def wilson_interval(successes: float, trials: float, alpha: float = 0.05) -> Optional[List[float]]:
    """Wilson score ``1 - alpha`` interval of successes / trials (None without trials); a
    fractional ``successes`` (a mean of scores in [0, 1] times n) takes the same formula."""
    from scipy.stats import binomtest, norm

    n = float(trials)
    if n <= 0 or not 0 <= successes <= n:
        return None
    if float(successes).is_integer() and n.is_integer():
        ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=1 - alpha, method="wilson")
        return [float(ci.low), float(ci.high)]
    z, p = float(norm.ppf(1 - alpha / 2)), successes / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [max(0.0, centre - half), min(1.0, centre + half)]


def mean_ci(values: np.ndarray, bootstrap: int = 1000, seed: int = 0, alpha: float = 0.05) -> Optional[List[float]]:
    """Interval of the mean: Wilson when every value is 0 or 1 (a proportion); the percentile
    bootstrap (resampling samples with replacement) otherwise, and for scores in [0, 1] never
    narrower than Wilson at their mean, which a bootstrap of nearly constant scores would be
    (121 zeros and one 0.25 gave [0, 0.006], narrower than 122 zeros' [0, 0.031])."""
    values = np.asarray(values, dtype=float)
    if not len(values) or not bootstrap:
        return None
    bounded = bool(((values >= 0) & (values <= 1)).all())
    if bounded and np.isin(values, (0.0, 1.0)).all():
        return wilson_interval(values.sum(), len(values), alpha)
    uniq, counts = np.unique(values, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(values), counts / counts.sum(), size=bootstrap) @ uniq / len(values)
    ci = _ci(draws, alpha)
    floor = wilson_interval(values.sum(), len(values), alpha) if bounded else None
    if ci is None or floor is None:
        return ci
    return [min(ci[0], floor[0]), max(ci[1], floor[1])]


def _ci(draws: np.ndarray, alpha: float) -> Optional[List[float]]:
    draws = draws[~np.isnan(draws)]
    if not len(draws):
        return None
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return [float(lo), float(hi)]


def _num(value: object) -> Optional[float]:
    v = float(value)  # type: ignore[arg-type]
    return None if math.isnan(v) else v
