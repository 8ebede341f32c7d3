"""Servers the suite starts and stops itself: a model behind an OpenAI-compatible API
(`transformers serve` on CPU, `vllm serve` on GPU) and `mlflow server`. Each is owned by
PID (its own process group), waited for on ``/health``, and cleaned up on every exit path.

    with LocalServer("transformers", "/path/to/model") as srv:
        backend = OpenAIHTTPBackend(srv.base_url, srv.served_model)
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from plumbing.errors import ModelLoadError

_LIVE: "weakref.WeakSet[ManagedServer]" = weakref.WeakSet()


class ServerStartError(RuntimeError):
    pass


class ModelServerError(ModelLoadError, ServerStartError):
    """A model server that died loading its model (or never got healthy): a stage stops at
    once naming the model and the server's log (exit 2, no traceback), not with 8 of 8 calls
    failed and a traceback."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def is_healthy(root_url: str, timeout_s: float = 2.0) -> bool:
    """True when ``GET <root_url>/health`` answers 200."""
    try:
        with urllib.request.urlopen(f"{root_url}/health", timeout=timeout_s) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tail(path: Optional[Path], n: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(lines[-n:])


class ManagedServer:
    """A server process we own: spawned in its own process group, healthy when
    ``GET /health`` answers 200, stopped (SIGTERM, then SIGKILL) by process group."""

    name = "server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, log_path: Optional[str | os.PathLike] = None,
                 startup_timeout_s: float = 300.0, env: Optional[Dict[str, str]] = None):
        self.host = host
        self.port = port
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout_s = startup_timeout_s
        self.env = dict(env or {})
        self.proc: Optional[subprocess.Popen] = None

    def command(self, port: Optional[int] = None) -> List[str]:
        raise NotImplementedError

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def start(self) -> "ManagedServer":
        if self.proc is not None and self.proc.poll() is None:
            return self
        fixed = self.port != 0
        tries = 1 if fixed else 3
        for attempt in range(tries):
            port = self.port if fixed else free_port(self.host)
            try:
                self._spawn(port)
                self._wait_healthy()
                return self
            except ServerStartError as e:
                self.stop()
                if not fixed:
                    self.port = 0
                busy = "address already in use" in str(e).lower()
                if not fixed and busy and attempt + 1 < tries:
                    continue
                raise
        raise AssertionError("unreachable")

    def _spawn(self, port: int) -> None:
        self.port = port
        cmd = self.command(port)
        # Die with the parent when it is killed outright (only from the main thread: Linux
        # sends the parent-death signal when the *thread* that forked exits).
        if shutil.which("setpriv") and threading.current_thread() is threading.main_thread():
            cmd = ["setpriv", "--pdeathsig", "SIGTERM", "--", *cmd]
        env = {**os.environ, **self.env}
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path, "ab")
        else:
            out = subprocess.DEVNULL  # type: ignore[assignment]
        try:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child holds its own descriptor
        _LIVE.add(self)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            rc = self.proc.poll() if self.proc else -1
            if rc is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {rc} before it was healthy; "
                    f"command: {' '.join(self.command(self.port))}\n{_tail(self.log_path)}"
                )
            if is_healthy(self.root_url):
                return
            time.sleep(0.25)
        raise ServerStartError(f"{self.name} not healthy after {self.startup_timeout_s}s\n{_tail(self.log_path)}")

    def stop(self, grace_s: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            proc.wait()
        # The process group may hold children (workers) that outlive the leader.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _LIVE.discard(self)

    def __enter__(self) -> "ManagedServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalServer(ManagedServer):
    """A model behind an OpenAI-compatible API: `transformers serve` (CPU) or `vllm serve` (GPU)."""

    def __init__(
        self,
        launcher: str,
        model: str,
        host: str = "127.0.0.1",
        port: int = 0,
        device: str = "cpu",
        extra_args: Sequence[str] = (),
        log_path: Optional[str | os.PathLike] = None,
        startup_timeout_s: float = 300.0,
        env: Optional[Dict[str, str]] = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
        dtype: str = "auto",
    ):
        if launcher not in ("transformers", "vllm"):
            raise ValueError(f"unknown server launcher {launcher!r} (transformers | vllm)")
        super().__init__(host, port, log_path, startup_timeout_s, env)
        self.launcher = launcher
        self.name = f"{launcher} serve"
        # A local directory is passed as an absolute path; the server then names the model so.
        self.model = str(Path(model).resolve()) if Path(model).exists() else model
        self.device = device
        self.extra_args = list(extra_args)
        self.tensor_parallel_size = tensor_parallel_size
        self.gpu_memory_utilization = gpu_memory_utilization
        self.dtype = dtype
        self._failed: Optional[ModelServerError] = None

    def start(self) -> "LocalServer":
        if self._failed is not None:  # starting it again would fail again, slowly
            raise self._failed
        try:
            super().start()
        except ServerStartError as e:
            self._failed = ModelServerError(self.model, e, self.log_path)
            raise self._failed from e
        return self

    @property
    def served_model(self) -> str:
        """The name requests must carry in their ``model`` field."""
        return self.model

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def command(self, port: Optional[int] = None) -> List[str]:
        port = self.port if port is None else port
        if self.launcher == "transformers":
            return _console("transformers") + [
                "serve", self.model, "--host", self.host, "--port", str(port), "--device", self.device,
                "--dtype", self.dtype, "--log-level", "warning", *self.extra_args]
        return _console("vllm") + [
            "serve", self.model, "--host", self.host, "--port", str(port), "--served-model-name", self.model,
            "--tensor-parallel-size", str(self.tensor_parallel_size),
            "--gpu-memory-utilization", str(self.gpu_memory_utilization), "--dtype", self.dtype,
            *self.extra_args]


class MlflowServer(ManagedServer):
    """`mlflow server` over a sqlite store, serving artifacts from a local folder."""

    name = "mlflow server"

    def __init__(self, store: str | os.PathLike, artifacts: str | os.PathLike, host: str = "127.0.0.1",
                 port: int = 0, log_path: Optional[str | os.PathLike] = None, startup_timeout_s: float = 120.0):
        super().__init__(host, port, log_path, startup_timeout_s)
        self.store = Path(store).resolve()
        self.artifacts = Path(artifacts).resolve()

    @property
    def uri(self) -> str:
        return self.root_url

    def command(self, port: Optional[int] = None) -> List[str]:
        port = self.port if port is None else port
        return _console("mlflow") + [
            "server", "--backend-store-uri", f"sqlite:///{self.store}", "--artifacts-destination",
            str(self.artifacts), "--host", self.host, "--port", str(port), "--workers", "1"]


def _console(name: str) -> List[str]:
    """A console script of this environment (beside the interpreter), else from PATH."""
    exe = Path(sys.executable).with_name(name)
    return [str(exe)] if exe.exists() else [name]


@atexit.register
def _stop_all() -> None:
    for srv in list(_LIVE):
        srv.stop(grace_s=5.0)
