"""Statistics of the analysis, all from scipy.stats. Pure functions on arrays and tables.

- A proportion with a known count (L-Acc = label_correct / n, ...) gets a Wilson score
  interval (``genrm.metrics.wilson_interval``, the stages' own): a percentile bootstrap of 0/122 is [0, 0],
  which claims a certainty 122 samples do not give; Wilson gives [0, 0.031].
- A correlation (Pearson, Spearman, Kendall tau-b) across GenRMs gets a BCa bootstrap
  interval over the rows (``scipy.stats.bootstrap``, paired) and a permutation p-value
  (``scipy.stats.permutation_test``: y's order against x, two-sided as |r| >= |r_obs|; exact
  over all n! orders when that is at most ``permutations``). Below ``MIN_INTERVAL_POINTS``
  rows no interval is given, a warning is: a bootstrap of 3 points has only 10 distinct
  resamples and its interval says nothing (it gave [+0.63, +1.00] for r = +0.625 at n = 3).
- Means over seeds get a Student-t interval.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from plumbing.errors import SuiteError

METHODS = ("pearson", "spearman", "kendall")
MIN_INTERVAL_POINTS = 8  # fewer rows: a correlation's value and p-value, no interval


class TableError(SuiteError):
    """A table that cannot be correlated; the message names the column (and row)."""


def _statistic(method: str, x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """The correlation along ``axis`` (vectorized for scipy's resampling); NaN where x or y
    is constant (a resample can be)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sps.ConstantInputWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        if method == "pearson":
            return sps.pearsonr(x, y, axis=axis).statistic
        if method == "spearman":
            return sps.pearsonr(sps.rankdata(x, axis=axis), sps.rankdata(y, axis=axis), axis=axis).statistic
        if method == "kendall":
            return sps.kendalltau(x, y, axis=axis).statistic  # tau-b: ties in both
    raise ValueError(f"unknown correlation {method!r} (one of {METHODS})")


def statistic(method: str, x: Sequence[float], y: Sequence[float]) -> float:
    return float(_statistic(method, np.asarray(x, float), np.asarray(y, float)))


@dataclass
class Correlation:
    method: str
    value: float
    ci: Optional[List[float]]  # BCa bootstrap interval; None below MIN_INTERVAL_POINTS rows
    p: float
    n: int
    exact_p: bool
    degenerate_resamples: int  # bootstrap resamples with a constant column (no correlation)
    warning: Optional[str] = None


def too_few_for_interval(n: int) -> Optional[str]:
    if n >= MIN_INTERVAL_POINTS:
        return None
    return (f"n = {n}: too few points for a correlation interval (a bootstrap needs at least "
            f"{MIN_INTERVAL_POINTS}); value and permutation p-value only")


def correlation(method: str, x: Sequence[float], y: Sequence[float], bootstrap: int = 2000,
                permutations: int = 10000, alpha: float = 0.05, seed: int = 0) -> Correlation:
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    rng = np.random.default_rng(seed)
    value = statistic(method, x, y)
    perm = sps.permutation_test((y,), lambda yy, axis=-1: np.abs(_statistic(method, x, yy, axis)),
                                permutation_type="pairings", vectorized=True, n_resamples=permutations,
                                alternative="greater", rng=rng)
    exact = math.factorial(n) <= permutations
    warning, ci, degenerate = too_few_for_interval(n), None, 0
    if warning is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a degenerate distribution is reported below, as a warning
            boot = sps.bootstrap((x, y), lambda a, b, axis=-1: _statistic(method, a, b, axis), paired=True,
                                 vectorized=True, n_resamples=bootstrap, confidence_level=1 - alpha,
                                 method="BCa", rng=rng)
        dist = boot.bootstrap_distribution
        degenerate = int(np.isnan(dist).sum())
        lo, hi = boot.confidence_interval
        if not degenerate and np.ptp(dist) <= 1e-9:  # every resample gives the same value (r = 1): BCa's
            lo, hi = dist.min(), dist.max()        # correction is undefined, the interval is that value
        if np.isfinite(lo) and np.isfinite(hi):
            ci = [float(lo), float(hi)]
        else:
            warning = (f"no BCa interval: {degenerate} of {bootstrap} resamples had a constant column"
                       if degenerate else "no BCa interval: the bootstrap distribution is degenerate")
    return Correlation(method, value, ci, float(perm.pvalue), n, exact, degenerate, warning)


def numeric_column(df: pd.DataFrame, col: str) -> pd.Series:
    """The column as floats; text that is not a number is an error naming column and row."""
    if col not in df.columns:
        raise TableError(f"column {col!r} not in the table (columns: {list(df.columns)})")
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna() & df[col].notna() & (df[col].astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise TableError(f"column {col!r} is not numeric: row {row + 1} holds {str(df[col].iloc[row])[:80]!r}")
    infinite = np.isinf(values.to_numpy(dtype=float))
    if infinite.any():  # no correlation, interval or plot is defined with it
        row = int(np.flatnonzero(infinite)[0])
        raise TableError(f"column {col!r}: row {row + 1} holds {values.iloc[row]} (not a finite number)")
    return values.astype(float)


def correlate_table(df: pd.DataFrame, x_cols: Sequence[str], y_col: str, label_col: Optional[str] = None,
                    bootstrap: int = 2000, permutations: int = 10000, alpha: float = 0.05, seed: int = 0,
                    min_rows: int = 3, skip_undefined: bool = False,
                    carry: Sequence[str] = ()) -> Dict[str, Dict[str, object]]:
    """For each x column: every method's value, interval and p-value, and n; ``labels`` (the
    points' ``label_col``) and ``families`` (per column of ``carry``, each point's value: the
    variant's family columns) beside them.

    Below ``MIN_INTERVAL_POINTS`` rows the intervals are None and ``warning`` says why (so
    does a bootstrap with no interval). Rows missing x or y are dropped for that x. Fewer than ``min_rows`` usable rows, or a
    constant column, is a :class:`TableError` (no correlation is defined); with
    ``skip_undefined`` that x gets ``{"n": n, "undefined": why}`` instead (a tiny smoke run
    whose GenRMs tie on a metric must not fail)."""
    if not x_cols:
        raise TableError("give at least one x column")
    y = numeric_column(df, y_col)
    out: Dict[str, Dict[str, object]] = {}
    for col in x_cols:
        x = numeric_column(df, col)
        keep = x.notna() & y.notna()
        n = int(keep.sum())
        xs, ys = x[keep].to_numpy(), y[keep].to_numpy()
        why = (f"{col!r} vs {y_col!r}: {n} rows with both values; a correlation needs at least {min_rows}"
               if n < min_rows else next((f"column {name!r} is constant ({values[0]!r}) over the rows used: "
                                          "no correlation" for name, values in ((col, xs), (y_col, ys))
                                          if np.ptp(values) == 0), None))
        if why:
            if not skip_undefined:
                raise TableError(why)
            out[col] = {"n": n, "undefined": why}
            continue
        entry: Dict[str, object] = {"n": n}
        notes: List[str] = []
        for method in METHODS:
            c = correlation(method, xs, ys, bootstrap, permutations, alpha, seed)
            entry[method] = c.value
            entry[f"{method}_ci"] = c.ci
            entry[f"{method}_p"] = c.p
            if c.warning and c.warning not in notes:
                notes.append(c.warning if c.ci is None and n < MIN_INTERVAL_POINTS else f"{method}: {c.warning}")
        entry["p_exact"] = math.factorial(n) <= permutations
        entry["ci_method"] = f"BCa bootstrap, {bootstrap} resamples" if n >= MIN_INTERVAL_POINTS else None
        if notes:
            entry["warning"] = "; ".join(notes)
        if label_col and label_col in df.columns:
            entry["labels"] = [str(v) for v in df.loc[keep, label_col]]
        shown = [c for c in carry if c in df.columns]
        if shown:
            entry["families"] = {c: [None if pd.isna(v) else str(v) for v in df.loc[keep, c]] for c in shown}
        out[col] = entry
    return out


def mean_interval(values: Sequence[float], alpha: float = 0.05) -> Dict[str, object]:
    """Mean of replicate values (seeds) with a Student-t ``1 - alpha`` interval (None for
    fewer than 2 values: one seed says nothing about the spread); NaNs are left out."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], float)
    n = len(v)
    if n == 0:
        return {"mean": None, "ci": None, "sd": None, "n": 0}
    mean = float(v.mean())
    if n < 2:
        return {"mean": mean, "ci": None, "sd": None, "n": 1}
    sd = float(v.std(ddof=1))
    half = float(sps.t.ppf(1 - alpha / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "ci": [mean - half, mean + half], "sd": sd, "n": n}


def compare_seeds(table: pd.DataFrame, metric: str, baseline: str, treatment: str, expect: Optional[str],
                  alpha: float = 0.05) -> Dict[str, Any]:
    """Per variant values by seed, mean and interval; the paired treatment - baseline
    difference; whether the expectation (``lower`` / ``higher``) holds."""
    values = numeric_column(table, metric)
    by_variant: Dict[str, Dict[str, float]] = {}
    for variant, seed, v in zip(table["variant"], table["seed"], values):
        if not (v is None or math.isnan(v)):
            by_variant.setdefault(str(variant), {})[str(seed)] = float(v)
    entry: Dict[str, Any] = {"variants": {v: {"values": dict(sorted(s.items())), **mean_interval(list(s.values()), alpha)}
                                          for v, s in sorted(by_variant.items())}}
    base, treat = by_variant.get(baseline, {}), by_variant.get(treatment, {})
    shared = sorted(set(base) & set(treat))
    diff = mean_interval([treat[s] - base[s] for s in shared], alpha)
    entry["difference"] = {"of": f"{treatment} - {baseline}", "seeds": shared, **diff}
    if expect:
        sign = -1 if expect == "lower" else 1
        holds = diff["mean"] is not None and sign * diff["mean"] > 0
        tests = paired_tests([treat[s] - base[s] for s in shared], sign)
        entry.update(expect=expect, holds=holds, **tests,
                     significant=bool(holds and all(tests[t]["p"] is not None and tests[t]["p"] < alpha
                                                    for t in ("t_test", "sign_test"))))
    return entry


def paired_tests(diffs: Sequence[float], sign: int) -> Dict[str, Dict[str, Any]]:
    """Two tests of the seeds' paired differences (non-finite ones left out): the paired
    t-test against 0 (two-sided: p < alpha exactly when the t interval excludes 0) and the sign
    test (one-sided, in the expected direction ``sign``, ties left out). A claim needs both:
    the t-test weighs how large the differences are against their spread, which a couple of
    seeds that agree to the last digit make look certain; the sign test assumes nothing of
    their distribution and needs at least 5 seeds to reach p < 0.05 (5 of 5; 7 of 8)."""
    d = np.asarray([x for x in diffs if x is not None and math.isfinite(x)], float)
    n = len(d)
    t_test: Dict[str, Any] = {"t": None, "df": max(n - 1, 0), "p": None}
    if n >= 2:
        sd = float(d.std(ddof=1))
        if sd > 0:
            res = sps.ttest_1samp(d, 0.0)
            t_test.update(t=float(res.statistic), p=float(res.pvalue))
        else:  # every seed moved by exactly the same amount: certain unless that amount is 0
            t_test.update(t=math.copysign(math.inf, float(d[0])) if d[0] else 0.0, p=0.0 if d[0] else 1.0)
    agree, moved = int((sign * d > 0).sum()), int((d != 0).sum())
    p_sign = float(sps.binomtest(agree, moved, 0.5, alternative="greater").pvalue) if moved else None
    return {"t_test": t_test, "sign_test": {"agree": agree, "n": moved, "p": p_sign}}
