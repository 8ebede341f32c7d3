"""GenRM-training rewards inside OpenRLHF (``--reward.remote_url``): ``build(settings)`` is
the ``reward_func(queries, prompts, labels)`` the generated module exports. The label is
the training sample as JSON (genrm.training)."""

from __future__ import annotations

from typing import Any, Callable, Dict

from genrm.records import sample_from_json
from genrm.rewards import RewardConfig
from genrm.rewards.base import Judge, Rollout
from plumbing.engines.remote import Lazy, judge_backends, reward_function


def build(settings: Dict[str, Any]) -> Callable[..., Dict[str, Any]]:
    reward = RewardConfig.from_dict(settings["reward"])

    def make() -> Any:
        judges = {role: Judge(backend, sampling) for role, (backend, sampling) in judge_backends(settings).items()}
        return reward.build(judges)

    failure = reward.typed_params().format_fail_reward
    return reward_function(Lazy(make), lambda response, label: Rollout(response, sample_from_json(label)),
                           reward.component().produces, failure)
