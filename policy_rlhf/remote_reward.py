"""The pairwise GenRM reward inside OpenRLHF (reference mode, ``--reward.remote_url``):
``build(settings)`` is the ``reward_func(queries, prompts, labels)`` the generated module
exports. The label is the prompt item as JSON (conversation, reference, domain)."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict

from plumbing.engines.remote import Lazy, judge_backends, reward_function
from policy_rlhf.reward import DIAGNOSTICS, PairwiseReward, PairwiseRewardConfig, PolicyRollout


def make_scorer(settings: Dict[str, Any]) -> PairwiseReward:
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(PairwiseRewardConfig), settings["pairwise"]))
    backend, sampling = judge_backends(settings)["genrm"]
    return PairwiseReward(cfg, backend, sampling)


def rollout(response: str, label: str) -> PolicyRollout:
    item = json.loads(label)
    return PolicyRollout(item["context"], response, item.get("reference"), group=item.get("id"))


def build(settings: Dict[str, Any]) -> Callable[..., Dict[str, Any]]:
    neutral = float(settings["pairwise"].get("neutral", 0.5))
    return reward_function(Lazy(lambda: make_scorer(settings)), rollout, DIAGNOSTICS, neutral)
