"""GenRM-training rewards inside OpenRLHF: ``reward_func(queries, prompts, labels)``.

``build(settings)`` returns the function the generated ``--reward.remote_url`` module
exports. OpenRLHF calls it once per sample (lists of length 1) from many threads of each
vLLM engine actor, so it builds the reward and its judge backends once (lazily, under a
lock) and shares them; judge calls are cached per host and identical calls in flight are
sent once. It never raises: an error gives the failure reward and ``reward_error = 1``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from genrm.records import sample_from_json
from genrm.rewards import reward_class
from genrm.rewards.base import DIAGNOSTICS, Judge, Rollout

log = logging.getLogger("ralign.reward")
# Tokens a decoded query may end with after the response.
END_MARKERS = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<|end_of_text|>", "<eos>")
ASSISTANT_MARKERS = ("<|im_start|>assistant\n", "<|start_header_id|>assistant<|end_header_id|>\n\n")


def response_of(query: str, prompt: str) -> str:
    """The response part of OpenRLHF's query (prompt + response, decoded with special tokens)."""
    if query.startswith(prompt):
        text = query[len(prompt):]
    else:  # the prompt did not survive the tokenizer round trip: cut after the last assistant header
        cut = max((query.rfind(m) + len(m) for m in ASSISTANT_MARKERS if m in query), default=0)
        text = query[cut:]
    changed = True
    while changed:
        changed = False
        text = text.rstrip()
        for marker in END_MARKERS:
            if text.endswith(marker):
                text, changed = text[: -len(marker)], True
    return text


def _llm_config(d: Dict[str, Any]) -> Any:
    from omegaconf import OmegaConf

    from plumbing.config.schema import LLMConfig

    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(LLMConfig), d))


def resolve_endpoint(spec: Dict[str, Any], wait_s: float = 600.0) -> Optional[str]:
    """The judge's base URL: from the settings, an environment variable, or the endpoint file
    the job's judge server writes when it is healthy (waited for)."""
    if spec.get("env") and os.environ.get(spec["env"]):
        return os.environ[spec["env"]]
    path = spec.get("endpoint_file")
    if path:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if Path(path).is_file() and Path(path).read_text().strip():
                return Path(path).read_text().strip()
            time.sleep(2)
        raise RuntimeError(f"no judge endpoint in {path} after {wait_s}s")
    return spec["llm"].get("base_url")


class _Service:
    def __init__(self, settings: Dict[str, Any]):
        self.settings = settings
        self._lock = threading.Lock()
        self.reward: Any = None

    def get(self) -> Any:
        with self._lock:
            if self.reward is None:
                from omegaconf import OmegaConf

                from plumbing.config.schema import RewardConfig
                from plumbing.llm.registry import build_backend
                from plumbing.llm.types import SamplingParams as SP

                cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RewardConfig), self.settings["reward"]))
                judges = {}
                cache_dir = Path(self.settings.get("cache_dir") or ".")
                for role, spec in (self.settings.get("judges") or {}).items():
                    llm = _llm_config({**spec["llm"], "base_url": resolve_endpoint(spec)})
                    llm.cache.path = str(cache_dir / f"{role}-{socket.gethostname()}.sqlite")  # sqlite WAL: per host
                    judges[role] = Judge(build_backend(llm, cache_dir, role), SP.from_config(llm.sampling))
                self.reward = reward_class(cfg.name).from_config(cfg, judges)
            return self.reward


def build(settings: Dict[str, Any]) -> Callable[[List[str], List[str], List[str]], Dict[str, Any]]:
    service = _Service(settings)
    failure = float((settings.get("reward") or {}).get("format_fail_reward", 0.0))

    def reward_func(queries: List[str], prompts: List[str], labels: List[str]) -> Dict[str, Any]:
        try:
            reward = service.get()
            rollouts = [Rollout(response_of(q, p), sample_from_json(l)) for q, p, l in zip(queries, prompts, labels)]
            results = reward.score(rollouts)
            rewards = [r.reward for r in results]
            logs = {k: sum(r.diagnostics.get(k, 0.0) for r in results) / len(results) for k in DIAGNOSTICS}
            logs["reward_error"] = 0.0
        except Exception as e:  # OpenRLHF only logs an exception and fails later elsewhere: never raise
            log.warning("reward_func failed (%s: %s); giving the failure reward", type(e).__name__, e)
            rewards = [failure] * len(queries)
            logs = {k: 0.0 for k in DIAGNOSTICS}
            logs["reward_error"] = 1.0
        value: Any = rewards[0] if len(rewards) == 1 else rewards
        return {"rewards": value, "scores": value, "extra_logs": logs}

    return reward_func
