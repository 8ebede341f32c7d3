"""``ralign`` (R-Align): 1 if the verdict is right AND the MetaRM judges the rationale
``Correct`` against the golden judgment, else 0. Only label-correct rollouts are sent to
the MetaRM; a MetaRM failure (CallFail / ParseFail) gives ``metarm_failure_reward`` and is
counted, never raised."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence

from genrm.metarm import CALLFAIL, CORRECT, INCORRECT, PARSEFAIL, meta_judge, rationale_of
from genrm.rewards.base import GenRMReward, RewardParams, RewardResult, Rollout
from genrm.settings import MetaRMSettings
from plumbing.config.schema import ANY

_COUNTER = {CORRECT: "metarm_correct", INCORRECT: "metarm_incorrect", CALLFAIL: "metarm_call_fail",
            PARSEFAIL: "metarm_parse_fail"}


@dataclass
class RAlignParams(RewardParams, MetaRMSettings):
    """The base reward's and the MetaRM's settings (what it reads, its re-asks), and:"""

    # the reward of a label-correct rollout whose MetaRM call fails (CallFail / ParseFail)
    metarm_failure_reward: float = field(default=0.0, metadata={"range": ANY})


class RAlignReward(GenRMReward):
    Params = RAlignParams
    name = "ralign"
    needs = ("metarm",)
    measures = ("rationale_correct",)  # its metarm_correct / metarm_incorrect verdicts

    def score(self, rollouts: Sequence[Rollout]) -> List[RewardResult]:
        results = self.outcome(rollouts)
        gated = [i for i, r in enumerate(results) if r.diagnostics["label_correct"] and rollouts[i].sample.gt_judgment]
        for i, r in enumerate(results):
            if r.diagnostics["label_correct"] and not rollouts[i].sample.gt_judgment:
                r.reward = self.cfg.metarm_failure_reward  # nothing to check the rationale against
        if not gated:
            return results
        judge = self.judges["metarm"]
        verdicts = meta_judge(judge.backend, [(rollouts[i].sample, rationale_of(rollouts[i].completion, self.cfg.rationale))
                                              for i in gated], judge.sampling, self.cfg.parse_retries)
        for i, v in zip(gated, verdicts):
            d = results[i].diagnostics
            d["metarm_called"] = 1.0
            d[_COUNTER[v.verdict]] = 1.0
            if v.verdict == CORRECT:
                results[i].reward = 1.0
            elif v.verdict == INCORRECT:
                results[i].reward = 0.0
            else:
                results[i].reward = self.cfg.metarm_failure_reward
        return results
