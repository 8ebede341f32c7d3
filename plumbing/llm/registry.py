"""The one way stages open a configured LLM backend: a server started on demand when the
config asks for one, the call cache around it.

A backend is a component (``LLMConfig._target_``, see :mod:`plumbing.components`): there is no
list of backends; :meth:`~plumbing.config.schema.LLMConfig.build` constructs the class the
config names.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence

from plumbing.llm.types import ChatRequest, ChatResult, LLMBackend, OnResult


def resolve_api_key(cfg: Any) -> Optional[str]:
    """The API key from the config or from the environment variable it names."""
    if cfg.api_key:
        return cfg.api_key
    if cfg.api_key_env:
        value = os.environ.get(cfg.api_key_env)
        if not value:
            from plumbing.config.validate import ConfigError

            raise ConfigError([("api_key_env", f"environment variable {cfg.api_key_env} is not set")])
        return value
    return None


class ServedBackend(LLMBackend):
    """The config's HTTP backend (its class declares ``over_http``, which ``LLMConfig.check``
    requires of a served config) on a local server that starts on the first request that
    needs it (a fully cached rerun never starts one) and stops on close."""

    def __init__(self, cfg: Any, log_path: Path):
        from plumbing.launch.server import LocalServer
        from plumbing.llm.cache import model_fingerprint

        super().__init__()
        self.cfg = cfg
        self.server = LocalServer(
            cfg.serve.launcher, cfg.model, host=cfg.serve.host, port=cfg.serve.port,
            device=cfg.serve.device, extra_args=cfg.serve.extra_args, log_path=log_path,
            startup_timeout_s=cfg.serve.startup_timeout_s,
            tensor_parallel_size=cfg.tensor_parallel_size,
            gpu_memory_utilization=cfg.gpu_memory_utilization, dtype=cfg.dtype,
        )
        fp = model_fingerprint(self.server.served_model)
        self.model_id = f"openai:{self.server.served_model}" + (f"@{fp}" if fp else "")
        self._http: Optional[LLMBackend] = None
        self._lock = threading.Lock()

    def _backend(self) -> LLMBackend:
        with self._lock:
            if self._http is None:
                self.server.start()
                self._http = replace(self.cfg, base_url=self.server.base_url,
                                     model=self.server.served_model).build()
            return self._http

    def _complete(self, requests: Sequence[ChatRequest], on_result: OnResult, progress: bool) -> List[ChatResult]:
        if not requests:
            return []
        return self._backend().complete(requests, on_result=on_result, progress=progress)

    def close(self) -> None:
        with self._lock:
            http, self._http = self._http, None
        try:
            if http is not None:
                http.close()
        finally:
            self.server.stop()


def build_backend(cfg: Any, output_dir: str | os.PathLike, name: str = "llm") -> LLMBackend:
    """A configured backend: a local server when ``serve.launcher`` asks for one (started
    lazily), the cache around it. The caller closes it (see :func:`open_backend`)."""
    from plumbing.llm.cache import CachedBackend, LLMCache

    out = Path(output_dir)
    if cfg.serve.launcher != "none":
        backend: LLMBackend = ServedBackend(cfg, out / "logs" / f"{name}_server.log")
    else:
        backend = cfg.build()
    if cfg.cache.enabled:
        path = Path(cfg.cache.path) if cfg.cache.path else out / "llm_cache.sqlite"
        backend = CachedBackend(backend, LLMCache(path), cfg.cache.namespace)
    return backend


@contextlib.contextmanager
def open_backend(cfg: Any, output_dir: str | os.PathLike, name: str = "llm") -> Iterator[LLMBackend]:
    """:func:`build_backend`, closed on exit (servers stopped) whatever happened."""
    backend = build_backend(cfg, output_dir, name)
    try:
        yield backend
    finally:
        backend.close()
