"""``hybrid`` (RationaleRM): outcome + ``lambda_ap`` x AP of the rollout's atomic rationale
against the golden checklist. AP counts on wrong verdicts only with
``ap_on_wrong_verdict``; a MetaJudge failure leaves AP at 0 and is counted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

from genrm.metajudge import evaluate_atomic
from genrm.metarm import rationale_of
from genrm.metrics import AtomicRules
from genrm.rewards.base import GenRMReward, RewardParams, RewardResult, Rollout
from genrm.settings import AtomicListSettings, MetaRMSettings


@dataclass
class HybridParams(RewardParams, MetaRMSettings, AtomicListSettings):
    """The base reward's, the MetaJudge's (what it reads, its re-asks) and the atomic list
    rules' settings, and:"""

    lambda_ap: float = 1.0  # weight of AP in the reward
    ap_on_wrong_verdict: bool = False  # add AP to rollouts whose verdict is wrong too

    def check(self) -> list:
        return MetaRMSettings.check(self) + AtomicListSettings.check(self)


class HybridReward(GenRMReward):
    Params = HybridParams
    name = "hybrid"
    needs = ("metajudge",)
    needs_fields = ("gt_checklist",)  # AP against the golden checklist
    measures = ("checklist_ap",)  # a valid AP is marked ap_measured (an AP of 0 is one too)

    def score(self, rollouts: Sequence[Rollout]) -> List[RewardResult]:
        results = self.outcome(rollouts)
        wanted = [i for i, r in enumerate(results)
                  if r.pred is not None and rollouts[i].sample.gt_checklist
                  and (r.diagnostics["label_correct"] or self.cfg.ap_on_wrong_verdict)]
        if not wanted:
            return results
        c = self.cfg
        judge = self.judges["metajudge"]
        atomic = evaluate_atomic(judge.backend, [rollouts[i].sample.gt_checklist for i in wanted],
                                 [rationale_of(rollouts[i].completion, c.rationale) for i in wanted],
                                 AtomicRules(c.max_model_items, c.skip_more_than, c.skip_empty), judge.sampling,
                                 max_decomposed_items=c.max_decomposed_items, parse_retries=c.parse_retries)
        for i, a in zip(wanted, atomic):
            d = results[i].diagnostics
            d["metarm_called"] = 1.0
            if a.status == "valid" and a.scores:
                d["ap"], d["ap_measured"] = a.scores["ap"], 1.0
                results[i].reward += self.cfg.lambda_ap * a.scores["ap"]
            elif a.reason == "call_fail":
                d["metarm_call_fail"] = 1.0
            elif a.reason == "matcher_invalid":
                d["metarm_parse_fail"] = 1.0
        return results
