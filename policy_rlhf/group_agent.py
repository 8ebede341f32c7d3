"""Group mode inside OpenRLHF: an agent executor (``--train.agent_func_path``) that lets the
n samples of one prompt be judged against each other.

OpenRLHF's vLLM actor runs the n ``execute`` calls of a prompt concurrently in one event
loop (``generate_responses``). Each call generates its sample with OpenRLHF's own
single-turn code, then waits at a per-prompt meeting point; when n samples are there (or
``group_wait_s`` passed since the first, e.g. for evaluation with another n), the group is
scored round-robin in a worker thread and each call returns its own reward.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Tuple

from plumbing.engines.remote import Lazy
from policy_rlhf.remote_reward import make_scorer
from policy_rlhf.reward import DIAGNOSTICS, PolicyRollout


class _Group:
    def __init__(self) -> None:
        self.members: List[Tuple[PolicyRollout, "asyncio.Future[Tuple[float, Dict[str, float]]]"]] = []
        self.closed = False


def make_executor(settings: Dict[str, Any]) -> type:
    """The ``AgentExecutor`` class the generated module exports."""
    import json

    from openrlhf.utils.agent import SingleTurnAgentExecutor

    scorer = Lazy(lambda: make_scorer(settings))
    n = int(settings["n_samples_per_prompt"])
    wait_s = float(settings.get("group_wait_s", 120.0))
    neutral = float(settings["pairwise"].get("neutral", 0.5))

    class AgentExecutor(SingleTurnAgentExecutor):
        groups: Dict[Tuple[str, str], _Group] = {}

        def __init__(self) -> None:
            super().__init__(remote_rm_url=None)  # generation only: the reward is ours

        async def execute(self, prompt: Any, label: Any, sampling_params: Any, max_length: int, hf_tokenizer: Any,
                          llm_engine: Any, images: Any = None) -> Dict[str, Any]:
            out = await super().execute(prompt, label, sampling_params, max_length, hf_tokenizer, llm_engine, images)
            start, end = out["action_ranges"][0]
            response = hf_tokenizer.decode(out["observation_tokens"][start:end], skip_special_tokens=True)
            item = json.loads(label)
            rollout = PolicyRollout(item["context"], response, item.get("reference"), truncated=bool(out["truncated"]),
                                    group=item.get("id"))
            reward, logs = await self._meet(str(prompt), str(label), rollout)
            out.update(reward=reward, scores=reward, extra_logs=logs)
            return out

        async def _meet(self, prompt: str, label: str, rollout: PolicyRollout) -> Tuple[float, Dict[str, float]]:
            loop = asyncio.get_running_loop()
            key = (prompt, label)
            group = self.groups.get(key)
            if group is None or group.closed:
                group = self.groups[key] = _Group()
                loop.create_task(self._close_later(key, group))
            future: "asyncio.Future[Tuple[float, Dict[str, float]]]" = loop.create_future()
            group.members.append((rollout, future))
            if len(group.members) >= n:
                self._close(key, group)
            return await future

        async def _close_later(self, key: Tuple[str, str], group: _Group) -> None:
            await asyncio.sleep(wait_s)
            self._close(key, group)

        def _close(self, key: Tuple[str, str], group: _Group) -> None:
            if group.closed:
                return
            group.closed = True
            if self.groups.get(key) is group:
                del self.groups[key]
            asyncio.get_running_loop().create_task(self._score(group))

        async def _score(self, group: _Group) -> None:
            try:
                results = await asyncio.to_thread(scorer.get().score, [r for r, _ in group.members])
                answers = [(r.reward, {**{k: r.diagnostics.get(k, 0.0) for k in DIAGNOSTICS}, "reward_error": 0.0})
                           for r in results]
            except Exception:  # never let a sample hang or raise inside OpenRLHF
                answers = [(neutral, {**{k: 0.0 for k in DIAGNOSTICS}, "reward_error": 1.0})] * len(group.members)
            for (_, future), answer in zip(group.members, answers):
                if not future.done():
                    future.set_result(answer)

    return AgentExecutor
