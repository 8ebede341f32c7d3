"""The pairwise GenRM reward inside OpenRLHF: an agent executor (``--train.agent_func_path``)
around OpenRLHF's own single-turn generation, so the reward sees each sample's
``truncated`` flag (``pairwise.penalize_truncated``), which a ``reward_func`` never gets.

Reference mode scores each sample against its reference as soon as it is generated. Group
mode lets the n samples of one prompt be judged against each other:

OpenRLHF's vLLM actor runs the n ``execute`` calls of a prompt concurrently in one event
loop (``generate_responses``). Each call joins its prompt's group before it generates (with
OpenRLHF's own single-turn code) and waits at the meeting point after; the group is scored
round-robin in a worker thread once every sibling that started has arrived and n have
started, so a long response is compared like a short one however long it takes. Fewer than
n siblings (evaluation with another n) are scored once all that started have arrived and no
other started for ``group_wait_s``. A sibling whose generation fails leaves the group.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Tuple

from plumbing.engines.remote import Lazy, judge_backends, stop_training
from plumbing.errors import SuiteError
from policy_rlhf.reward import DIAGNOSTICS, PairwiseReward, PairwiseRewardConfig, PolicyRollout


def pairwise_config(settings: Dict[str, Any]) -> PairwiseRewardConfig:
    from omegaconf import OmegaConf

    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(PairwiseRewardConfig), settings["pairwise"]))


def make_scorer(settings: Dict[str, Any]) -> PairwiseReward:
    """The pairwise reward over the GenRM the settings name (the label is the prompt item as
    JSON: conversation, reference, id)."""
    backend, sampling = judge_backends(settings)["genrm"]
    return PairwiseReward(pairwise_config(settings), backend, sampling)


class _Group:
    def __init__(self) -> None:
        self.members: List[Tuple[PolicyRollout, "asyncio.Future[Tuple[float, Dict[str, float]]]"]] = []
        self.started = 0  # siblings that joined (generating or arrived)
        self.closed = False
        self.timer: Optional[asyncio.TimerHandle] = None


def make_executor(settings: Dict[str, Any]) -> type:
    """The ``AgentExecutor`` class the generated module exports."""
    import json

    from openrlhf.utils.agent import SingleTurnAgentExecutor

    scorer = Lazy(lambda: make_scorer(settings))
    n = int(settings["n_samples_per_prompt"])
    wait_s = float(settings.get("group_wait_s", 120.0))
    failure = pairwise_config(settings).failure  # neutral, on the configured scale
    grouped = settings["pairwise"].get("mode") == "group"

    async def _score(rollouts: List[PolicyRollout]) -> List[Tuple[float, Dict[str, float]]]:
        """(reward, logs) of each rollout, in a worker thread; the failure reward if scoring fails."""
        try:
            results = await asyncio.to_thread(scorer.get().score, rollouts)
            return [(r.reward, {**{k: r.diagnostics.get(k, 0.0) for k in DIAGNOSTICS}, "reward_error": 0.0})
                    for r in results]
        except SuiteError as e:  # the GenRM fails on too many rollouts, or cannot be reached: training stops
            raise stop_training(e) from e
        except Exception:  # never let a sample hang or raise inside OpenRLHF
            return [(failure, {**{k: 0.0 for k in DIAGNOSTICS}, "reward_error": 1.0})] * len(rollouts)

    class AgentExecutor(SingleTurnAgentExecutor):
        groups: Dict[Tuple[str, str], _Group] = {}
        scoring: set = set()

        def __init__(self) -> None:
            super().__init__(remote_rm_url=None)  # generation only: the reward is ours

        async def execute(self, prompt: Any, label: Any, sampling_params: Any, max_length: int, hf_tokenizer: Any,
                          llm_engine: Any, images: Any = None) -> Dict[str, Any]:
            key = (str(prompt), str(label))
            group = self._join(key) if grouped else None
            try:
                out = await super().execute(prompt, label, sampling_params, max_length, hf_tokenizer, llm_engine,
                                            images)
                start, end = out["action_ranges"][0]
                response = hf_tokenizer.decode(out["observation_tokens"][start:end], skip_special_tokens=True)
                item = json.loads(label)
                rollout = PolicyRollout(item["context"], response, item.get("reference"),
                                        truncated=bool(out["truncated"]), group=item.get("id"))
            except BaseException:  # leave the group, or the siblings would wait for this sample forever
                if group is not None:
                    group.started -= 1
                    self._check(key, group)
                raise
            if group is None:  # reference mode: this sample alone, now
                [(reward, logs)] = await _score([rollout])
            else:
                future: "asyncio.Future[Tuple[float, Dict[str, float]]]" = asyncio.get_running_loop().create_future()
                group.members.append((rollout, future))
                self._check(key, group)
                reward, logs = await future
            out.update(reward=reward, scores=reward, extra_logs=logs)
            return out

        def _join(self, key: Tuple[str, str]) -> _Group:
            group = self.groups.get(key)
            if group is None or group.closed or group.started >= n:  # a full group: another copy of the prompt
                group = self.groups[key] = _Group()
            group.started += 1
            if group.timer is not None:  # a sibling started after all others had arrived: wait for it too
                group.timer.cancel()
                group.timer = None
            return group

        def _check(self, key: Tuple[str, str], group: _Group) -> None:
            if group.closed or len(group.members) < group.started:
                return  # a sibling is still generating
            if group.started >= n:
                self._close(key, group)
            elif group.members and group.timer is None:
                group.timer = asyncio.get_running_loop().call_later(wait_s, self._close, key, group)

        def _close(self, key: Tuple[str, str], group: _Group) -> None:
            if group.closed:
                return
            group.closed = True
            if group.timer is not None:
                group.timer.cancel()
            if self.groups.get(key) is group:
                del self.groups[key]
            task = asyncio.get_running_loop().create_task(self._score_group(group))
            self.scoring.add(task)  # a reference, so the task is not collected while it runs
            task.add_done_callback(self.scoring.discard)

        async def _score_group(self, group: _Group) -> None:
            try:
                answers = await _score([r for r, _ in group.members])
            except BaseException as e:  # every sibling gets it: none waits forever
                for _, future in group.members:
                    if not future.done():
                        future.set_exception(e)
                return
            for (_, future), answer in zip(group.members, answers):
                if not future.done():
                    future.set_result(answer)

    return AgentExecutor
