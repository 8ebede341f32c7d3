"""GenRM-training rewards: components, one module and one YAML each.

``conf/reward/<name>.yaml`` names the reward's class as ``_target_`` and its settings under
``params:`` (checked against the class's ``Params``); ``reward=<name>`` chooses it. A reward
from outside the suite is the same two files: a module on the path and a YAML on Hydra's
search path (``hydra.searchpath=[file:///my/conf]``), or ``reward._target_=my.module.Class``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from genrm.rewards.base import GenRMReward, Judge, RewardParams, RewardResult, Rollout
from plumbing.components import ComponentConfig


@dataclass
class RewardConfig(ComponentConfig):
    """The ``reward`` slot of GenRM training: a :class:`GenRMReward` and its params."""

    base = GenRMReward

    def declared(self, attr: str) -> tuple:
        """What the reward declares (``needs``, ``needs_fields``); empty if it does not import
        (reported by ``check``)."""
        try:
            return tuple(getattr(self.component(), attr, ()))
        except (ImportError, AttributeError):
            return ()

    def build(self, judges: Optional[Dict[str, Judge]] = None) -> GenRMReward:
        return self.component().from_config(self.typed_params(), judges)

    @classmethod
    def from_dict(cls, raw: Dict[str, Any]) -> "RewardConfig":
        """Back from ``dataclasses.asdict`` (the settings a cluster job's reward reads)."""
        return cls(**{k: raw[k] for k in ("_target_", "params", "name") if k in raw})


__all__ = ["GenRMReward", "Judge", "RewardConfig", "RewardParams", "RewardResult", "Rollout"]
