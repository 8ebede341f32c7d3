"""Training engines (local TRL, OpenRLHF) and what their reward adapters share."""

from __future__ import annotations

from typing import Any, Dict, Sequence


def batch_means(results: Sequence[Any], diagnostics: Sequence[str]) -> Dict[str, float]:
    """Means over a batch of reward results (``.reward``, ``.diagnostics``) of the named
    diagnostics (rates; a result without one counts 0) and of the reward: what every engine
    logs per step, whichever reward produced them."""
    if not results:
        return {}
    out = {k: sum(r.diagnostics.get(k, 0.0) for r in results) / len(results) for k in diagnostics}
    out["reward"] = sum(r.reward for r in results) / len(results)
    return out
