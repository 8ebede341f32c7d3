"""Reward functions that run inside OpenRLHF: ``reward_func(queries, prompts, labels)``.

OpenRLHF calls the function once per sample (lists of length 1) from many threads of each
vLLM engine actor. ``reward_function`` builds the scorer and its judge backends once
(lazily, under a lock) and shares them: judge calls are cached per host and identical
calls in flight are sent once. The function never raises (OpenRLHF would only log it and
fail later elsewhere): an error gives ``failure`` and ``reward_error = 1``; ``extra_logs``
always has the same keys. The exception is a judge that cannot serve the run (over its
failure budget ``max_failure_rate``, its key or endpoint missing on the node): that stops the
job (``StopTraining``) instead of training on failure rewards.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from plumbing.engines import batch_means
from plumbing.errors import SuiteError

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


def resolve_endpoint(spec: Dict[str, Any], wait_s: float = 600.0) -> Optional[str]:
    """A judge's base URL: an environment variable, the endpoint file the job's judge server
    writes once healthy (waited for), or the configured base_url."""
    if spec.get("env") and os.environ.get(spec["env"]):
        return os.environ[spec["env"]]
    path = spec.get("endpoint_file")
    if path:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if Path(path).is_file() and Path(path).read_text().strip():
                return Path(path).read_text().strip()
            time.sleep(2)
        raise SuiteError(f"no judge endpoint in {path} after {wait_s}s (did the job's judge server start?)")
    return spec["llm"].get("base_url")


def judge_backends(settings: Dict[str, Any]) -> Dict[str, Any]:
    """{role: (backend, SamplingParams)} for the judges in the settings."""
    from omegaconf import OmegaConf

    from plumbing.config.schema import LLMConfig
    from plumbing.failures import guarded
    from plumbing.llm.registry import build_backend
    from plumbing.llm.types import SamplingParams

    cache_dir = Path(settings.get("cache_dir") or ".")
    out = {}
    for role, spec in (settings.get("judges") or {}).items():
        llm = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(LLMConfig),
                                                  {**spec["llm"], "base_url": resolve_endpoint(spec)}))
        llm.cache.path = str(cache_dir / f"{role}-{socket.gethostname()}.sqlite")  # sqlite WAL: one file per host
        backend = guarded(build_backend(llm, cache_dir, role), role, settings.get("max_failure_rate"))
        out[role] = (backend, SamplingParams.from_config(llm.sampling))
    return out


class Lazy:
    """``get()`` builds the value once, on first use, whichever thread gets there first; a
    build that fails fails every later ``get`` the same way, at once (not a retry per call)."""

    def __init__(self, build: Callable[[], Any]):
        self._build, self._lock, self._value = build, threading.Lock(), None
        self._error: Optional[BaseException] = None

    def get(self) -> Any:
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._value is None:
                try:
                    self._value = self._build()
                except BaseException as e:
                    self._error = e
                    raise
            return self._value


class StopTraining(BaseException):
    """A judge that cannot serve the run (over its failure budget, not configured on the
    node, not loading): OpenRLHF catches ``Exception`` around reward functions and would
    train on the failure reward, so this is not one; the Ray job fails with the reason."""


def stop_training(e: BaseException) -> StopTraining:
    log.error("stopping training: %s", e)
    return StopTraining(f"{type(e).__name__}: {e}")


def reward_function(scorer: Lazy, to_rollout: Callable[[str, str], Any], diagnostics: Sequence[str],
                    failure: float) -> Callable[[List[str], List[str], List[str]], Dict[str, Any]]:
    """OpenRLHF's reward_func around ``scorer.get().score(rollouts)`` (results with ``reward``
    and ``diagnostics``); ``to_rollout(response, label)`` builds one rollout."""

    def reward_func(queries: List[str], prompts: List[str], labels: List[str]) -> Dict[str, Any]:
        try:
            rollouts = [to_rollout(response_of(q, p), label) for q, p, label in zip(queries, prompts, labels)]
            results = scorer.get().score(rollouts)
            rewards = [r.reward for r in results]
            logs = {k: v for k, v in batch_means(results, diagnostics).items() if k != "reward"}
            logs["reward_error"] = 0.0
        except SuiteError as e:  # over the budget, or no judge at all: stop, do not train on failures
            raise stop_training(e) from e
        except Exception as e:
            log.warning("reward_func failed (%s: %s); giving the failure reward", type(e).__name__, e)
            rewards = [failure] * len(queries)
            logs = {k: 0.0 for k in diagnostics}
            logs["reward_error"] = 1.0
        value: Any = rewards[0] if len(rewards) == 1 else rewards
        return {"rewards": value, "scores": value, "extra_logs": logs}

    return reward_func
