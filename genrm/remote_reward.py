"""GenRM-training rewards inside OpenRLHF (``--reward.remote_url``): ``build(settings)`` is
the ``reward_func(queries, prompts, labels)`` the generated module exports. The label is
the training sample as JSON (genrm.training)."""

from __future__ import annotations

from typing import Any, Callable, Dict

from genrm.records import sample_from_json
from genrm.rewards import reward_class
from genrm.rewards.base import DIAGNOSTICS, Judge, Rollout
from plumbing.engines.remote import Lazy, judge_backends, reward_function


def build(settings: Dict[str, Any]) -> Callable[..., Dict[str, Any]]:
    def make() -> Any:
        from omegaconf import OmegaConf

        from plumbing.config.schema import RewardConfig

        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RewardConfig), settings["reward"]))
        judges = {role: Judge(backend, sampling) for role, (backend, sampling) in judge_backends(settings).items()}
        return reward_class(cfg.name).from_config(cfg, judges)

    failure = float(settings["reward"].get("format_fail_reward", 0.0))
    return reward_function(Lazy(make), lambda response, label: Rollout(response, sample_from_json(label)),
                           DIAGNOSTICS, failure)
