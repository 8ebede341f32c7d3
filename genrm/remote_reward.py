"""GenRM-training rewards inside OpenRLHF (``--reward.remote_url``): ``build(settings)`` is
the ``reward_func(queries, prompts, labels)`` the generated module exports. The label is
the training sample as JSON (genrm.training). Each sample's ``extra_logs`` carry the reward's
diagnostics and the training dynamics (``genrm_dynamics/*``, the same rates TRL logs; the
monitor, if any, unguarded: its failures are counted, never stop the job)."""

from __future__ import annotations

from typing import Any, Callable, Dict

from genrm.dynamics import LOGGED, Dynamics, DynamicsSettings, MeasuredReward
from genrm.records import sample_from_json
from genrm.rewards import RewardConfig
from genrm.rewards.base import Judge, Rollout
from plumbing.engines.remote import Lazy, judge_backends, reward_function


def build(settings: Dict[str, Any]) -> Callable[..., Dict[str, Any]]:
    reward = RewardConfig.from_dict(settings["reward"])
    dynamics = DynamicsSettings(**settings.get("dynamics") or {})

    def make() -> Any:
        judges = {role: Judge(backend, sampling) for role, (backend, sampling) in judge_backends(settings).items()}
        monitor = None
        if settings.get("monitor"):
            monitors = judge_backends({**settings, "judges": {"monitor": settings["monitor"]}, "max_failure_rate": None})
            monitor = Judge(*monitors["monitor"])
        scorer = reward.build(judges)
        return MeasuredReward(scorer, Dynamics(scorer, dynamics, monitor))

    failure = reward.typed_params().format_fail_reward
    return reward_function(Lazy(make), lambda response, label: Rollout(response, sample_from_json(label)),
                           tuple(reward.component().produces) + LOGGED, failure)
