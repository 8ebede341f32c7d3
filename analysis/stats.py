"""Correlation of GenRM metrics with downstream results: Pearson, Spearman and Kendall, each
with a bootstrap interval and a permutation p-value. Pure functions on arrays and tables.

Bootstrap: resample the rows (GenRMs) with replacement, percentile interval; resamples in
which x or y is constant have no correlation and are left out (their count is reported).
Permutation: shuffle y against x; two-sided p = (1 + #{|r_perm| >= |r|}) / (1 + #perms),
exact over all n! orders when that is at most ``permutations``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from plumbing.errors import SuiteError

METHODS = ("pearson", "spearman", "kendall")


class TableError(SuiteError):
    """A table that cannot be correlated; the message names the column (and row)."""


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of 2-D arrays (NaN where a row is constant)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((xc * xc).sum(-1) * (yc * yc).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(-1) / den
    r[den <= 1e-12 * max(1.0, float(np.abs(den).max(initial=0.0)))] = np.nan
    return np.clip(r, -1.0, 1.0)


def _stat_rows(method: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if method == "pearson":
        return _pearson_rows(x, y)
    if method == "spearman":
        return _pearson_rows(sps.rankdata(x, axis=-1), sps.rankdata(y, axis=-1))
    out = np.empty(x.shape[0])
    for k in range(x.shape[0]):
        if np.ptp(x[k]) == 0 or np.ptp(y[k]) == 0:
            out[k] = np.nan
        else:
            out[k] = sps.kendalltau(x[k], y[k]).statistic  # tau-b: ties in both
    return out


def statistic(method: str, x: Sequence[float], y: Sequence[float]) -> float:
    return float(_stat_rows(method, np.asarray(x, float)[None], np.asarray(y, float)[None])[0])


@dataclass
class Correlation:
    method: str
    value: float
    ci: Optional[List[float]]
    p: float
    n: int
    exact_p: bool
    degenerate_resamples: int


def correlation(method: str, x: Sequence[float], y: Sequence[float], bootstrap: int = 2000,
                permutations: int = 10000, alpha: float = 0.05, seed: int = 0) -> Correlation:
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    rng = np.random.default_rng(seed)
    value = statistic(method, x, y)
    # bootstrap over rows
    idx = rng.integers(0, n, size=(bootstrap, n))
    boot = _stat_rows(method, x[idx], y[idx])
    ok = boot[~np.isnan(boot)]
    ci = [float(v) for v in np.quantile(ok, [alpha / 2, 1 - alpha / 2])] if len(ok) else None
    # permutation test
    exact = math.factorial(n) <= permutations
    if exact:
        perms = np.array(list(itertools.permutations(range(n))))
    else:
        perms = np.argsort(rng.random((permutations, n)), axis=1)
    null = _stat_rows(method, np.broadcast_to(x, perms.shape), y[perms])
    hits = np.sum(np.abs(null) >= abs(value) - 1e-12)
    p = float(hits / len(perms)) if exact else float((hits + 1) / (len(perms) + 1))
    return Correlation(method, value, ci, p, n, exact, int(np.isnan(boot).sum()))


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
                    min_rows: int = 3, skip_undefined: bool = False) -> Dict[str, Dict[str, object]]:
    """For each x column: every method's value, interval and p-value, and n.

    Rows missing x or y are dropped for that x. Fewer than ``min_rows`` usable rows, or a
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
        for method in METHODS:
            c = correlation(method, xs, ys, bootstrap, permutations, alpha, seed)
            entry[method] = c.value
            entry[f"{method}_ci"] = c.ci
            entry[f"{method}_p"] = c.p
        entry["p_exact"] = math.factorial(n) <= permutations
        if label_col and label_col in df.columns:
            entry["labels"] = [str(v) for v in df.loc[keep, label_col]]
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
        entry.update(expect=expect, holds=holds,
                     significant=bool(holds and diff["ci"] is not None and sign * diff["ci"][0 if sign > 0 else 1] > 0))
    return entry
