"""GenRM-training rewards, registered by name: ``outcome``, ``ralign``, ``hybrid``.

A reward is one module here (a class with ``from_config``) plus one YAML in
``conf/reward/``; a new one registers with :func:`register_reward` or is named as
``"package.module:Class"`` in its YAML's ``name``.
"""

from __future__ import annotations

from genrm.rewards.base import GenRMReward, RewardResult, Rollout
from plumbing.registry import Registry

REWARDS = Registry("reward", {
    "outcome": "genrm.rewards.outcome:OutcomeReward",
    "ralign": "genrm.rewards.ralign:RAlignReward",
    "hybrid": "genrm.rewards.hybrid:HybridReward",
})
register_reward, reward_names, reward_class = REWARDS.register, REWARDS.names, REWARDS.get

__all__ = ["GenRMReward", "RewardResult", "Rollout", "register_reward", "reward_names", "reward_class"]
