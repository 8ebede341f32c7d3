"""GenRM training data and the engine adapters of the rewards.

A training example is the GenRM judging prompt of one pairwise sample plus the sample
itself as JSON (golden label, golden judgment, golden checklist, context and responses in
the order shown): TRL passes it to the reward as a column, OpenRLHF as the label.
"""

from __future__ import annotations

import random
from typing import Any, Dict, List, Optional, Sequence

from genrm.dynamics import LOGGED, Dynamics
from genrm.prompts import JUDGE_SYSTEM, judge_messages
from genrm.records import PairwiseSample, sample_from_json, sample_to_json
from genrm.rewards.base import GenRMReward, Rollout
from plumbing.engines import batch_means


def training_examples(samples: Sequence[PairwiseSample], swap_balance: bool = True, seed: int = 0,
                      system: Optional[str] = JUDGE_SYSTEM) -> List[Dict[str, Any]]:
    """One example per sample; with ``swap_balance`` each sample is shown in a random order
    (seeded), so golden A and B labels are balanced whatever the source's bias."""
    rng = random.Random(seed)
    out = []
    for s in samples:
        if swap_balance and rng.random() < 0.5:
            s = s.swapped()
        out.append({"prompt": judge_messages(s, system), "sample": sample_to_json(s)})
    return out


def completion_text(completion: Any) -> str:
    """TRL gives conversational completions as [{role, content}]; plain ones as text."""
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return str(completion)


class TRLReward:
    """A GenRM reward as TRL's ``reward_func(prompts, completions, **columns)``; the
    diagnostics go to TRL's metric log (and from there to MLflow) as ``genrm_reward/*``, the
    training dynamics (``dynamics``, measured after scoring) as ``genrm_dynamics/*``."""

    def __init__(self, reward: GenRMReward, dynamics: Optional[Dynamics] = None):
        self.reward, self.dynamics = reward, dynamics
        self.__name__ = f"genrm_{reward.name or type(reward).__name__}"

    def __call__(self, prompts: List[Any], completions: List[Any], sample: List[str], log_metric: Any = None,
                 trainer_state: Any = None, **_: Any) -> List[float]:
        rollouts = [Rollout(completion_text(c), sample_from_json(s)) for c, s in zip(completions, sample)]
        results = self.reward.score(rollouts)
        rewards = [r.reward for r in results]
        if log_metric is not None:
            for k, v in batch_means(results, self.reward.produces).items():
                log_metric(f"genrm_reward/{k}", v)
            if self.dynamics is not None:
                step = getattr(trainer_state, "global_step", None)
                rows = self.dynamics.measure(rollouts, results, step)
                for k in LOGGED:
                    log_metric(k, sum(r[k] for r in rows) / len(rows))
        return rewards


def warm_start_rows(samples: Sequence[PairwiseSample], targets: str = "golden", cue_share: float = 0.5,
                    seed: int = 0, system: Optional[str] = JUDGE_SYSTEM) -> List[Dict[str, Any]]:
    """Templated judgments for the supervised warm start: a reason, then ``\\boxed{label}``.
    ``golden``: the record's golden judgment; ``toy_mixed`` (the toy world): a judgment from
    the true reason or, for a share ``cue_share`` of samples, one that follows the surface cue
    (so RL starts from a GenRM that is sometimes right for the wrong reason)."""
    from toy_world import judge_rationale

    rng = random.Random(seed)
    rows = []
    for s in samples:
        if rng.random() < 0.5:
            s = s.swapped()
        if targets == "toy_mixed":
            label, why = judge_rationale(s.response_a, s.response_b, "cue" if rng.random() < cue_share else "true")
        else:
            if not s.gt_judgment or s.gt_label is None:
                continue
            label, why = s.gt_label, s.gt_judgment
        rows.append({"prompt": judge_messages(s, system), "completion": f"{why}\n\\boxed{{{label}}}"})
    return rows
