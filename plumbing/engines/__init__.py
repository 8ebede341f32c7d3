"""Training engines (local TRL, OpenRLHF) and what their reward adapters share."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence


def batch_means(results: Sequence[Any], diagnostics: Sequence[str]) -> Dict[str, float]:
    """Means over a batch of reward results (``.reward``, ``.diagnostics``) of the named
    diagnostics (rates; a result without one counts 0) and of the reward: what every engine
    logs per step, whichever reward produced them."""
    if not results:
        return {}
    out = {k: sum(r.diagnostics.get(k, 0.0) for r in results) / len(results) for k in diagnostics}
    out["reward"] = sum(r.reward for r in results) / len(results)
    return out


def derive_ratios(metrics: Mapping[str, float]) -> Dict[str, float]:
    """``metrics`` plus ``X = X_num / X_den`` for every pair whose ``X_den`` > 0.

    A rate among a subset of rollouts (e.g. MetaRM-correct among label-correct ones) is
    logged as two rates over all rollouts, which any engine may average over a step or a
    logging window (TRL, OpenRLHF's per-sample ``extra_logs``); their ratio is then the
    subset's rate over that window, where the mean of per-batch ratios would not be."""
    out = dict(metrics)
    for k, num in metrics.items():
        if k.endswith("_num"):
            den = metrics.get(k[:-4] + "_den")
            if den is not None and den > 0:
                out[k[:-4]] = num / den
    return out
