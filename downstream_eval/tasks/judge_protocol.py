"""What the benchmark-protocol judged kinds (``arena_hard``, ``wildbench``) share: the judge's
identity as recorded in every grade and summary, answers kept in a file of their own joined
to the questions by id, and a percentile bootstrap.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from downstream_eval.tasks import Grade, Task
from downstream_eval.tasks.pairwise import field_at


class ProtocolJudgeTask(Task):
    """Base of the benchmark-protocol judged kinds: their grader version is their prompt's
    name (``prompt_name``), a grade is cached unless a judge call failed, and the summary
    counts the judge's failures and names the judge and the prompt version, the same
    ``<name>@<digest>`` as in the cache key (a kind renders its prompts in ``judge_prompt``)."""

    needs_judge = True

    def grader_version(self) -> str:
        return self.prompt_name

    def cacheable(self, grade: Grade) -> bool:
        return "call_fail" not in grade.detail.get("judge_status", [])

    def judge_summary(self, flat: Sequence[Grade]) -> Dict[str, Any]:
        status = [st for g in flat for st in g.detail.get("judge_status", [])]
        return {"judge_call_fail": status.count("call_fail"), "judge_parse_fail": status.count("parse_fail"),
                "judge_verdicts": len(status), **judge_record(self.ctx, self.judge_prompt_version())}


def judge_record(ctx: Dict[str, Any], prompt_version: str) -> Dict[str, Any]:
    """The judge model and the prompt version a grade was made with: part of every grade's
    detail and of the summary, so a number can always be traced to its judge and prompt (the
    cache key holds both too: the judge's identity, and the prompt version as the grader
    version)."""
    identity = ctx.get("judge_identity") or {}
    backend = ctx.get("judge")
    model = identity.get("model") or getattr(backend, "model_id", None)
    return {"judge": model, "judge_prompt": prompt_version}


def answers_by_id(path: str, id_field: str) -> Dict[str, Dict[str, Any]]:
    """Records of an answers file (Arena-Hard's ``model_answer/<model>.jsonl``, a reference
    model's WildBench outputs) keyed by their id; a record without one names its line."""
    from plumbing.data import InputError, iter_raw

    out: Dict[str, Dict[str, Any]] = {}
    for line, rec, err in iter_raw(path):
        if err is not None:
            raise err
        key = field_at(rec, id_field)
        if key is None:
            raise InputError(path, line, id_field, "missing (the id that joins an answer to its question)")
        out[str(key)] = rec
    return out


def percentile_interval(stat: Callable[[np.ndarray], float], n: int, rounds: int, level: float,
                        seed: int) -> Optional[list]:
    """[lo, hi]: the (1-level)/2 and (1+level)/2 quantiles of ``stat`` over ``rounds``
    resamples (with replacement) of the indices 0..n-1; None without data or rounds."""
    if not n or not rounds:
        return None
    rng = np.random.default_rng(seed)
    draws = np.array([stat(rng.integers(0, n, n)) for _ in range(rounds)], float)
    draws = draws[~np.isnan(draws)]
    if not len(draws):
        return None
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def weighted_groups(values: Sequence[float], groups: Sequence[Sequence[str]]) -> Dict[str, float]:
    """Mean of ``values`` per group; an item counts once in each of its groups."""
    sums: Dict[str, list] = {}
    for v, gs in zip(values, groups):
        for g in dict.fromkeys(gs):
            sums.setdefault(g, []).append(v)
    return {g: float(np.mean(v)) for g, v in sorted(sums.items())}
