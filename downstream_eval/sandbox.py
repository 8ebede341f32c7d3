"""Run model-written code in a sandbox: a subprocess with time, memory, process and file-size
limits, no network, and a filesystem it cannot change outside its own work directory.

Layers, each used where the machine allows it (``Result.isolation`` says which were on):
- ``rlimits``: address space, CPU seconds, file size, open files, no core dumps;
- ``timeout``: a wall-clock limit, then the whole process tree is killed;
- ``namespaces`` (root, util-linux ``unshare``/``setpriv``): new PID, mount and network
  namespaces, so no network at all and every process dies with the sandbox; every mount is
  read-only except the work directory (/tmp included); a private /dev/shm; all
  capabilities dropped, no new privileges;
- ``pids_cgroup`` (a writable pids cgroup): at most ``max_processes`` processes, so a fork
  bomb stops at the limit instead of filling the host's PID table;
- ``nproc`` (non-root): the same through RLIMIT_NPROC;
- ``prelude`` (Python code): ``socket`` refuses to connect, also where namespaces are not
  available.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

PRELUDE = '''\
import socket as _s
def _no_network(*a, **k):
    raise PermissionError("network access is disabled in the sandbox")
class _NoSocket(_s.socket):
    def connect(self, *a, **k): _no_network()
    def connect_ex(self, *a, **k): _no_network()
    def bind(self, *a, **k): _no_network()
_s.socket = _NoSocket
_s.create_connection = _no_network
del _s
'''

# Run inside the new namespaces (as root, before dropping privileges): make every mount
# read-only but the work directory (bound onto itself, so it is a mount of its own that stays
# writable) and a private /dev/shm, then exec the command without any capability. /tmp is not
# masked but read-only like the rest: the interpreter may live there (a checkout under /tmp);
# the sandbox's TMPDIR is its work directory.
INIT = r'''set -e
work="$1"; shift
mount --make-rprivate /
[ -d /dev/shm ] && mount -t tmpfs -o size=64m,mode=1777 tmpfs /dev/shm
mount --bind "$work" "$work"
for mp in $(awk '{print $5}' /proc/self/mountinfo | sort -ru); do
  case "$mp" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|"$work") continue ;; esac
  mount -o remount,bind,ro "$mp" 2>/dev/null || true
done
cd "$work"
exec setpriv --no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"
'''


@dataclass
class Limits:
    timeout_s: float = 10.0
    memory_mb: int = 1024
    max_processes: int = 32
    max_file_mb: int = 64
    max_output_bytes: int = 1 << 20

    @property
    def cpu_s(self) -> int:
        return int(self.timeout_s) + 1


@dataclass
class Result:
    status: str  # ok | error | timeout | memory | output_limit | sandbox_error
    returncode: Optional[int]
    stdout: str
    stderr: str
    seconds: float
    isolation: List[str] = field(default_factory=list)
    workdir: Optional[str] = None  # kept (run(keep=True)) for the caller to read; the caller removes it

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@functools.lru_cache(maxsize=None)
def _root_isolation(base: str) -> bool:
    """Whether namespaces work here: root with util-linux, and the kernel or container lets
    this process create them (a container without CAP_SYS_ADMIN does not): tried once."""
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "setpriv", "mount")):
        return False
    probe = Path(tempfile.mkdtemp(prefix="probe-", dir=base))
    try:
        r = subprocess.run(["unshare", "--fork", "--pid", "--mount", "--net", "--mount-proc", "--kill-child",
                            "sh", "-c", INIT, "sandbox-init", str(probe), "true"],
                           cwd=probe, capture_output=True, timeout=30)
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def _pids_cgroup_root() -> Optional[Path]:
    """A pids cgroup this process may create children in (cgroup v1 or v2), else None."""
    v1 = Path("/sys/fs/cgroup/pids")
    if (v1 / "cgroup.procs").exists() and os.access(v1, os.W_OK):
        return v1
    for v2 in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        control = v2 / "cgroup.subtree_control"
        if control.exists() and "pids" in control.read_text().split() and os.access(v2, os.W_OK):
            return v2
    return None


class Sandbox:
    """Runs commands in fresh work directories under ``base_dir``; thread-safe."""

    def __init__(self, base_dir: Optional[str | os.PathLike] = None, limits: Optional[Limits] = None):
        self.limits = limits or Limits()
        self.base = Path(base_dir) if base_dir else Path(tempfile.gettempdir()) / "ralign-sandbox"
        self.base.mkdir(parents=True, exist_ok=True)
        self.namespaces = _root_isolation(str(self.base))
        self.cgroup_root = _pids_cgroup_root()
        self.python = sys.executable

    @property
    def layers(self) -> List[str]:
        """The isolation layers a run gets on this machine (Python runs add ``prelude``)."""
        out = ["rlimits", "timeout"]
        if self.namespaces:
            out.append("namespaces")
        elif os.geteuid() != 0:
            out.append("nproc")
        if self.cgroup_root is not None:
            out.append("pids_cgroup")
        return out

    # -------------------------------------------------------------------- the public calls
    def run_python(self, code: str, stdin: str = "", files: Optional[Dict[str, str]] = None,
                   limits: Optional[Limits] = None, env: Optional[Dict[str, str]] = None) -> Result:
        """Run ``code`` as a script (the prelude first) with ``stdin``."""
        program = {"prelude.py": PRELUDE, "main.py": code, **(files or {})}
        runner = "exec(open('prelude.py').read()); import runpy; runpy.run_path('main.py', run_name='__main__')"
        return self.run([self.python, "-I", "-B", "-c", runner], stdin=stdin, files=program, limits=limits, env=env,
                        prelude=True)

    def run(self, argv: Sequence[str], stdin: str = "", files: Optional[Dict[str, str]] = None,
            limits: Optional[Limits] = None, env: Optional[Dict[str, str]] = None, keep: bool = False,
            prelude: bool = False) -> Result:
        """Run ``argv`` in a fresh work directory holding ``files``; ``prelude``: the command
        runs the Python prelude (reported in ``Result.isolation``)."""
        limits = limits or self.limits
        work = self.base / f"run-{uuid.uuid4().hex[:12]}"
        work.mkdir(mode=0o755)
        try:
            for name, text in (files or {}).items():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_text(text)
            result = self._run(list(argv), stdin, work, limits, env or {})
            if prelude:
                result.isolation.append("prelude")
            if keep:
                result.workdir = str(work)
            return result
        finally:
            if not keep:
                shutil.rmtree(work, ignore_errors=True)

    # -------------------------------------------------------------------- internals
    def _run(self, argv: List[str], stdin: str, work: Path, limits: Limits, env_extra: Dict[str, str]) -> Result:
        isolation = [x for x in self.layers if x != "pids_cgroup"]
        cmd = argv
        if self.namespaces:
            cmd = ["unshare", "--fork", "--pid", "--mount", "--net", "--mount-proc", "--kill-child",
                   "sh", "-c", INIT, "sandbox-init", str(work), *argv]
        cgroup = self._make_cgroup(limits)
        if cgroup is not None:
            isolation.append("pids_cgroup")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "TMPDIR": str(work),
               "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", **env_extra}

        def limit() -> None:  # in the child, before exec
            if cgroup is not None:
                (cgroup / "cgroup.procs").write_text(str(os.getpid()))
            mem = limits.memory_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
            size = limits.max_file_mb * 2**20
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if os.geteuid() != 0:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))

        start = time.monotonic()
        try:
            proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True, preexec_fn=limit)
        except OSError as e:
            self._drop_cgroup(cgroup)
            return Result("sandbox_error", None, "", f"{type(e).__name__}: {e}", 0.0, isolation)
        timed_out = False
        try:
            out, err = proc.communicate(stdin.encode(), timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            self._kill(proc, cgroup)
            out, err = proc.communicate()
        finally:
            self._kill(proc, cgroup)
            self._drop_cgroup(cgroup)
        seconds = time.monotonic() - start
        stdout = out[: limits.max_output_bytes].decode(errors="replace")
        stderr = err[-limits.max_output_bytes:].decode(errors="replace")
        rc = proc.returncode
        if timed_out or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            status = "timeout"
        elif len(out) > limits.max_output_bytes:
            status = "output_limit"
        elif rc == 0:
            status = "ok"
        elif "MemoryError" in stderr:
            status = "memory"
        else:
            status = "error"
        return Result(status, rc, stdout, stderr, seconds, isolation)

    def _kill(self, proc: subprocess.Popen, cgroup: Optional[Path]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # with namespaces: PID 1 dies and takes every process along
        except (ProcessLookupError, PermissionError):
            pass
        if cgroup is not None:  # a process that left the session is still in the cgroup
            try:
                for pid in (cgroup / "cgroup.procs").read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass

    def _make_cgroup(self, limits: Limits) -> Optional[Path]:
        if self.cgroup_root is None:
            return None
        path = self.cgroup_root / f"ralign-sandbox-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(limits.max_processes))
            return path
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
            return None

    def _drop_cgroup(self, cgroup: Optional[Path]) -> None:
        if cgroup is None:
            return
        for _ in range(50):
            try:
                cgroup.rmdir()
                return
            except OSError:
                time.sleep(0.02)
