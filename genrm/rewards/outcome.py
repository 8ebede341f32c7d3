"""``outcome`` (the RLVR baseline): 1 if the verdict equals the golden label, else 0;
an unparsable verdict gets ``format_fail_reward``."""

from __future__ import annotations

from typing import List, Sequence

from genrm.rewards.base import GenRMReward, RewardResult, Rollout


class OutcomeReward(GenRMReward):
    name = "outcome"

    def score(self, rollouts: Sequence[Rollout]) -> List[RewardResult]:
        return self.outcome(rollouts)
