"""Start and stop a local OpenAI-compatible model server (`transformers serve` on CPU,
`vllm serve` on GPU): by PID, with a wait for ``/health``, and cleanup on every exit path.

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


_LIVE: "weakref.WeakSet[LocalServer]" = weakref.WeakSet()


class ServerStartError(RuntimeError):
    pass


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


class LocalServer:
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
        self.launcher = launcher
        # A local directory is passed as an absolute path; the server then names the model so.
        self.model = str(Path(model).resolve()) if Path(model).exists() else model
        self.host = host
        self.port = port
        self.device = device
        self.extra_args = list(extra_args)
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout_s = startup_timeout_s
        self.env = dict(env or {})
        self.tensor_parallel_size = tensor_parallel_size
        self.gpu_memory_utilization = gpu_memory_utilization
        self.dtype = dtype
        self.proc: Optional[subprocess.Popen] = None

    # ------------------------------------------------------------------ properties
    @property
    def served_model(self) -> str:
        """The name requests must carry in their ``model`` field."""
        return self.model

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def command(self, port: Optional[int] = None) -> List[str]:
        port = self.port if port is None else port
        if self.launcher == "transformers":
            exe = Path(sys.executable).with_name("transformers")
            head = [str(exe)] if exe.exists() else [sys.executable, "-m", "transformers.cli.transformers"]
            return head + ["serve", self.model, "--host", self.host, "--port", str(port),
                           "--device", self.device, "--dtype", self.dtype, "--log-level", "warning",
                           *self.extra_args]
        exe = Path(sys.executable).with_name("vllm")
        head = [str(exe)] if exe.exists() else ["vllm"]
        return head + ["serve", self.model, "--host", self.host, "--port", str(port),
                       "--served-model-name", self.model,
                       "--tensor-parallel-size", str(self.tensor_parallel_size),
                       "--gpu-memory-utilization", str(self.gpu_memory_utilization),
                       "--dtype", self.dtype, *self.extra_args]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "LocalServer":
        if self.proc is not None and self.proc.poll() is None:
            return self
        tries = 3 if self.port == 0 else 1
        for attempt in range(tries):
            port = self.port or free_port(self.host)
            try:
                self._spawn(port)
                self._wait_healthy()
                return self
            except ServerStartError as e:
                self.stop()
                busy = "address already in use" in str(e).lower()
                if self.port == 0 and busy and attempt + 1 < tries:
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
                    f"{self.launcher} server exited with code {rc} before it was healthy; "
                    f"command: {' '.join(self.command())}\n{_tail(self.log_path)}"
                )
            if is_healthy(self.root_url):
                return
            time.sleep(0.25)
        raise ServerStartError(
            f"{self.launcher} server not healthy after {self.startup_timeout_s}s\n{_tail(self.log_path)}"
        )

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

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for srv in list(_LIVE):
        srv.stop(grace_s=5.0)
