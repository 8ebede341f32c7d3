"""The one interface every LLM backend implements: complete a batch of chat requests.

A backend never raises for a single request: each item ends as a :class:`ChatResult` that
is either a success (``text``) or a typed failure (``error``), so one bad sample never kills
a run and callers can count failures exactly.
"""

from __future__ import annotations

import abc
import enum
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

Message = Mapping[str, str]
OnResult = Callable[[int, "ChatResult"], None]


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: Optional[int] = None
    stop: Tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: Any) -> "SamplingParams":
        return cls(cfg.temperature, cfg.top_p, cfg.max_tokens, cfg.seed, tuple(cfg.stop))

    def as_dict(self) -> Dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "seed": self.seed, "stop": list(self.stop)}


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion. ``sample_index`` tells repeated samples of one prompt apart."""

    messages: Tuple[Message, ...]
    sampling: SamplingParams = SamplingParams()
    sample_index: int = 0

    @classmethod
    def of(cls, messages: Sequence[Message], sampling: Optional[SamplingParams] = None,
           sample_index: int = 0) -> "ChatRequest":
        msgs = tuple({"role": str(m["role"]), "content": str(m["content"])} for m in messages)
        return cls(msgs, sampling or SamplingParams(), sample_index)


class FailureKind(str, enum.Enum):
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    MALFORMED = "malformed_response"
    BACKEND_ERROR = "backend_error"


RETRYABLE = frozenset(
    {FailureKind.TIMEOUT, FailureKind.CONNECTION, FailureKind.RATE_LIMITED,
     FailureKind.SERVER_ERROR, FailureKind.MALFORMED}
)


@dataclass
class ChatResult:
    text: Optional[str] = None
    error: Optional[FailureKind] = None
    detail: str = ""
    attempts: int = 1
    latency_s: float = 0.0
    cached: bool = False
    finish_reason: Optional[str] = None
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    @classmethod
    def failure(cls, kind: FailureKind, detail: str = "", attempts: int = 1,
                latency_s: float = 0.0) -> "ChatResult":
        return cls(text=None, error=kind, detail=detail[:500], attempts=attempts, latency_s=latency_s)

    def to_cache(self) -> Dict[str, Any]:
        return {"text": self.text, "finish_reason": self.finish_reason,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "latency_s": round(self.latency_s, 4)}

    @classmethod
    def from_cache(cls, d: Mapping[str, Any]) -> "ChatResult":
        return cls(text=d["text"], finish_reason=d.get("finish_reason"),
                   prompt_tokens=d.get("prompt_tokens"), completion_tokens=d.get("completion_tokens"),
                   latency_s=0.0, attempts=0, cached=True)


@dataclass
class BackendStats:
    """Thread-safe counters a backend keeps; stages show them in their summary."""

    requests: int = 0
    succeeded: int = 0
    retries: int = 0
    cache_hits: int = 0
    failures: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, result: ChatResult) -> None:
        with self._lock:
            self.requests += 1
            if result.cached:
                self.cache_hits += 1
            if result.ok:
                self.succeeded += 1
            elif result.error is not None:
                self.failures[result.error.value] += 1
            self.retries += max(result.attempts - 1, 0)

    def as_dict(self) -> Dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "succeeded": self.succeeded, "retries": self.retries,
                    "cache_hits": self.cache_hits, "failed": sum(self.failures.values()),
                    "failures": dict(self.failures)}


class LLMBackend(abc.ABC):
    """Complete a batch of chat requests; results come back in request order.

    ``on_result(i, result)`` is called as soon as item ``i`` finishes (the cache uses it to
    persist each answer immediately, so a crash loses at most the calls in flight).
    Implementations must be safe to call from several threads at once.

    A backend is a component (:mod:`plumbing.components`): ``conf/llm/<name>.yaml`` names
    its class as ``_target_``; settings only it reads are its ``Params`` dataclass, given
    under ``params:`` and checked like any config; the settings every backend shares are
    :class:`~plumbing.config.schema.LLMConfig`'s fields.
    """

    #: identity of the model behind the backend; part of every cache key (one left empty is
    #: filled with the class, model and params by ``LLMConfig.build``)
    model_id: str = ""
    #: the backend reaches its model over OpenAI-compatible HTTP (base_url, or a server the
    #: stage starts): the only kind a started server or a cluster job's judge can use
    over_http: bool = False

    def __init__(self) -> None:
        self.stats = BackendStats()

    @classmethod
    def from_config(cls, cfg: Any, params: Any) -> "LLMBackend":
        """The backend for an ``LLMConfig`` (shared settings) and its typed ``Params``."""
        return cls()

    @abc.abstractmethod
    def _complete(self, requests: Sequence[ChatRequest], on_result: OnResult, progress: bool) -> List[ChatResult]:
        ...

    def complete(self, requests: Sequence[ChatRequest], on_result: Optional[OnResult] = None,
                 progress: bool = False) -> List[ChatResult]:
        def _done(i: int, res: ChatResult) -> None:
            self.stats.record(res)
            if on_result is not None:
                on_result(i, res)

        return self._complete(list(requests), _done, progress)

    def close(self) -> None:
        """Release connections, threads, GPU memory."""

    def __enter__(self) -> "LLMBackend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
