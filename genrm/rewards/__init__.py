"""GenRM-training rewards, registered by name: ``outcome``, ``ralign``, ``hybrid``.

A reward is one module here (a class with ``from_config``) plus one YAML in
``conf/reward/``; a new one registers with :func:`register_reward` or is named as
``"package.module:Class"`` in its YAML's ``name``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict

from genrm.rewards.base import GenRMReward, RewardResult, Rollout

_REWARDS: Dict[str, Any] = {
    "outcome": "genrm.rewards.outcome:OutcomeReward",
    "ralign": "genrm.rewards.ralign:RAlignReward",
    "hybrid": "genrm.rewards.hybrid:HybridReward",
}


def register_reward(name: str) -> Callable[[Any], Any]:
    def deco(cls: Any) -> Any:
        _REWARDS[name] = cls
        return cls

    return deco


def reward_names() -> list:
    return sorted(_REWARDS)


def reward_class(name: str) -> Any:
    target = _REWARDS.get(name, name if ":" in name else None)
    if target is None:
        raise KeyError(f"unknown reward {name!r}; known: {reward_names()}")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    return target


__all__ = ["GenRMReward", "RewardResult", "Rollout", "register_reward", "reward_names", "reward_class"]
