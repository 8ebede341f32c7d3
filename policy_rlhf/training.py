"""Policy training rows and the engine adapters of the pairwise reward."""

from __future__ import annotations

import json
import random
from typing import Any, Dict, List, Optional

from genrm.training import completion_text
from policy_rlhf.prompts import PromptItem
from plumbing.engines import batch_means
from policy_rlhf.reward import DIAGNOSTICS, PairwiseReward, PolicyRollout


def training_rows(items: List[PromptItem]) -> List[Dict[str, Any]]:
    """TRL rows: the chat prompt plus the columns the reward reads."""
    return [{"prompt": it.context, "reference": it.reference or "", "domain": it.domain, "group": it.id}
            for it in items]


def warm_start_rows(items: List[PromptItem], targets: str = "golden", dodge_share: float = 0.5,
                    cue_share: float = 0.5, seed: int = 0,
                    cue_share_right: Optional[float] = None) -> List[Dict[str, Any]]:
    """SFT rows for the policy's warm start: the reference answers (``golden``) or, in the toy
    world (``toy_mixed``), templated answers that are right or dodge, polite or not."""
    if targets == "toy_mixed":
        from toy_world import policy_answer

        rng = random.Random(seed)
        return [{"prompt": it.context, "completion": policy_answer(it.context[-1]["content"], rng, dodge_share,
                                                                    cue_share, cue_share_right)} for it in items]
    return [{"prompt": it.context, "completion": it.reference} for it in items if it.reference]


def label_of(item: PromptItem) -> str:
    """What OpenRLHF carries to the reward as the label: the item, as JSON."""
    return json.dumps(item.as_row(), ensure_ascii=False)


class TRLPairwiseReward:
    """The pairwise GenRM reward as TRL's reward function; truncation is read from the
    completion's token count, diagnostics go to TRL's metric log as ``policy_reward/*``."""

    def __init__(self, reward: PairwiseReward, max_completion_length: int):
        self.reward = reward
        self.max_len = max_completion_length
        self.__name__ = f"pairwise_genrm_{reward.cfg.mode}"

    def __call__(self, prompts: List[Any], completions: List[Any], reference: List[str], group: List[str],
                 completion_ids: Optional[List[List[int]]] = None, log_metric: Any = None, **_: Any) -> List[float]:
        rollouts = [PolicyRollout(p if isinstance(p, list) else [{"role": "user", "content": str(p)}],
                                  completion_text(c), ref or None,
                                  truncated=bool(completion_ids and len(completion_ids[k]) >= self.max_len),
                                  group=g)
                    for k, (p, c, ref, g) in enumerate(zip(prompts, completions, reference, group))]
        results = self.reward.score(rollouts)
        if log_metric is not None:
            for k, v in batch_means(results, DIAGNOSTICS).items():
                log_metric(f"policy_reward/{k}", v)
        return [r.reward for r in results]
