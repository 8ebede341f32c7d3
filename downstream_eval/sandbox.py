"""Run model-written code where it can neither reach the host nor forge its grade.

Each run is a fresh process started by ``downstream_eval/sandbox_inside.py`` (its docstring
describes the start-up). The layers a run gets (``Sandbox.layers``, printed and stored in
``summary.json``):

- ``rlimits``: address space, CPU seconds, file size, open files, no core dumps;
- ``timeout``: a wall-clock limit, then every process of the run is killed;
- ``namespaces`` (root): new mount, PID, network, IPC and UTS namespaces: no network at all,
  every process dies with the run;
- ``minimal_root``: the run sees only the system's programs and libraries and the Python
  standard library, read-only; no site-packages (no benchmark data or reference solutions of
  an installed package), no project tree, home, MLflow store or cache; /proc/sys read-only,
  no /sys, no cgroup files; its only writable places are tmpfs of bounded size;
- ``unprivileged``: the run's uid/gid is the sandbox user's (``nobody`` unless configured),
  with no capability and no new privileges;
- ``seccomp``: system calls that reach beyond the run fail (kernel keyrings, which outlive
  a run and would carry answers from one grading to the next; new namespaces; memfd; bpf,
  io_uring, perf, tracing, mounts, modules): ``sandbox_inside.SECCOMP``;
- ``pids_cgroup``: at most ``max_processes`` processes (a fork bomb stops there);
- ``memory_cgroup``: the run's processes and its tmpfs together stay under a memory limit
  (RLIMIT_AS is per process);
- ``nproc`` (not root): the same through RLIMIT_NPROC.

Outputs are read as they come, each stream capped (``max_output_bytes``; past it the run is
killed), so a flood costs neither memory nor time. A grader that is killed takes its runs
with it (parent-death signals), and the next ``Sandbox`` removes what it left on disk and in
the cgroup tree.

Verdicts never rest on an exit status the program controls: ``Sandbox.serve`` loads the
program as a module and the grader calls its functions over a pipe, receiving plain data
(``sandbox_inside.encode``), so the checks run in the grader's process, out of the
program's reach.
"""

from __future__ import annotations

import atexit
import builtins
import concurrent.futures
import functools
import glob
import itertools
import json
import os
import pwd
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from downstream_eval import sandbox_inside as inside
from plumbing import processes
from plumbing.errors import SuiteError

FULL_ISOLATION = ("rlimits", "timeout", "namespaces", "minimal_root", "unprivileged", "seccomp", "pids_cgroup",
                  "memory_cgroup")
INSIDE = Path(inside.__file__).resolve()
CGROUP_PREFIX = "ralign-sandbox-"
_RUNS = itertools.count()  # run numbers, unique in this process (several Sandbox objects may share a base)


@dataclass
class Limits:
    timeout_s: float = 10.0
    memory_mb: int = 1024
    max_processes: int = 32
    max_file_mb: int = 64  # also the size of the run's writable /tmp
    max_output_bytes: int = 1 << 20  # per stream; past it the run is killed
    max_message_bytes: int = 16 << 20  # one value returned by a served function
    max_message_items: int = 1 << 20  # values inside it (each costs the grader memory to decode)

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

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Stopped(BaseException):
    """The served program stopped answering (timeout, crash, a limit): a BaseException, so
    that a check's ``except Exception`` cannot swallow it."""

    def __init__(self, status: str, message: str = ""):
        super().__init__(f"{status}: {message}" if message else status)
        self.status = status


class CandidateError(Exception):
    """A served function raised an exception whose type is not a builtin one."""


def _owner_alive(name: str) -> bool:
    """Whether the process that made ``...-<pid>-<start time>-...`` is still running."""
    parts = name.split("-")
    for i in range(len(parts) - 1):
        if parts[i].isdigit() and parts[i + 1].isdigit():
            return processes.alive(int(parts[i]), parts[i + 1])
    return False


def _kill_cgroup(cgroup: Path, spare: Optional[int] = None) -> None:
    for _ in range(20):  # a fork bomb may spawn while it is being killed; pids.max bounds it
        try:
            pids = [p for p in (cgroup / "cgroup.procs").read_text().split() if p != str(spare)]
        except OSError:
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        time.sleep(0.005)


def _rmdir_cgroup(cgroup: Path) -> None:
    for _ in range(100):
        try:
            cgroup.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            _kill_cgroup(cgroup)
            time.sleep(0.01)


def _cgroup_root(controller: str) -> Optional[Path]:
    """A cgroup hierarchy with ``controller`` this process may create children in (v1 or v2)."""
    v1 = Path("/sys/fs/cgroup") / controller
    if (v1 / "cgroup.procs").exists() and os.access(v1, os.W_OK):
        return v1
    for v2 in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        control = v2 / "cgroup.subtree_control"
        if control.exists() and controller in control.read_text().split() and os.access(v2, os.W_OK):
            return v2
    return None


def _sandbox_ids(uid: Optional[int], gid: Optional[int]) -> tuple:
    try:
        nobody = pwd.getpwnam("nobody")
        default = (nobody.pw_uid, nobody.pw_gid)
    except KeyError:
        default = (65534, 65534)
    return (default[0] if uid is None else uid, default[1] if gid is None else gid)


def _filesystem() -> Dict[str, Any]:
    """What the minimal root shows, read-only: system directories (symlinks kept as links),
    the Python installation; what it masks: every site-/dist-packages and the project."""
    binds: List[str] = []
    links: Dict[str, str] = {}
    for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(p):
            links[p] = os.readlink(p)
        elif os.path.isdir(p):
            binds.append(p)
    python = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    for need in (os.path.realpath(sys.base_prefix), os.path.dirname(python)):
        if not any(need == b or need.startswith(b + "/") for b in binds):
            binds.append(need)
    masks = set()
    for top in {os.path.realpath(sys.base_prefix), "/usr", "/usr/local"}:
        for pattern in ("/lib*/python3*/site-packages", "/lib*/python3*/dist-packages", "/lib/python3/dist-packages"):
            masks.update(os.path.realpath(p) for p in glob.glob(top + pattern))
    for p in (sys.prefix, str(INSIDE.parents[1])):  # a virtual environment, the project, if inside a bound tree
        real = os.path.realpath(p)
        if any(real.startswith(b + "/") for b in binds):
            masks.add(real)
    return {"binds": binds, "links": links, "masks": sorted(masks), "python": python}


class Sandbox:
    """Runs programs in fresh sandboxes under ``base_dir``; thread-safe."""

    def __init__(self, base_dir: Optional[str | os.PathLike] = None, limits: Optional[Limits] = None,
                 uid: Optional[int] = None, gid: Optional[int] = None):
        self.limits = limits or Limits()
        self.base = Path(base_dir) if base_dir else Path(tempfile.gettempdir()) / "ralign-sandbox"
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        self.cgroup_roots = {c: r for c in ("pids", "memory") if (r := _cgroup_root(c)) is not None}
        self.cgroup_root = self.cgroup_roots.get("pids")
        self.removed_leftovers = self._remove_leftovers()
        self.tag = f"{os.getpid()}-{processes.start_time(os.getpid())}"
        self.home = self.base / f"inst-{self.tag}"
        self.home.mkdir(mode=0o755, exist_ok=True)
        self.uid, self.gid = _sandbox_ids(uid, gid)
        self.fs = _filesystem()
        self.python = self.fs["python"]
        self._etc = self._write_etc()
        self._live: set = set()
        self._lock = threading.Lock()
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sandbox-spawn")
        atexit.register(self.close)
        self.seccomp = os.uname().machine in inside.SECCOMP
        self.isolated, self.isolation_problem = self._probe()

    # -------------------------------------------------------------------- what this machine gives
    @property
    def layers(self) -> List[str]:
        """The isolation layers a run gets on this machine."""
        out = ["rlimits", "timeout"]
        if self.isolated:
            out += ["namespaces", "minimal_root", "unprivileged"] + (["seccomp"] if self.seccomp else [])
        elif os.geteuid() != 0:
            out.append("nproc")
        out += [f"{c}_cgroup" for c in self.cgroup_roots]
        return out

    @property
    def missing(self) -> List[str]:
        return [layer for layer in FULL_ISOLATION if layer not in self.layers]

    def require_full(self, setting: str = "sandbox.allow_weaker") -> None:
        """Refuse to run model-written code with layers missing, naming the setting that accepts it."""
        if self.missing:
            why = f" ({self.isolation_problem})" if self.isolation_problem else ""
            raise SuiteError(f"the code sandbox lacks {', '.join(self.missing)} on this machine{why}: model-written "
                             f"code would run with only {', '.join(self.layers)}. Run as root with util-linux and a "
                             f"writable pids cgroup, or set {setting}=true to grade with weaker isolation.")

    def _probe(self) -> tuple:
        if os.geteuid() != 0:
            return False, "not root"
        r = self._execute(None, "script", "pass\n", b"", self.limits, {}, isolate=True)
        if r.ok:
            return True, None
        return False, (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]

    def _remove_leftovers(self) -> List[str]:
        """Work directories and cgroups of sandboxes whose process is gone (a SIGKILLed grader)."""
        gone = []
        for d in self.base.glob("inst-*"):
            if not _owner_alive(d.name):
                shutil.rmtree(d, ignore_errors=True)
                gone.append(str(d))
        for root in set(self.cgroup_roots.values()):
            for cg in root.glob(CGROUP_PREFIX + "*"):
                if cg.is_dir() and not _owner_alive(cg.name[len(CGROUP_PREFIX):]):
                    _kill_cgroup(cg)
                    _rmdir_cgroup(cg)
                    gone.append(str(cg))
        return gone

    def close(self) -> None:
        """Kill every run still going (the grader is shutting down)."""
        for live in list(self._live):
            live.kill()

    def _write_etc(self) -> str:
        etc = self.home / "etc"
        etc.mkdir(mode=0o755, exist_ok=True)
        (etc / "passwd").write_text(f"root:x:0:0:root:/:/usr/sbin/nologin\n"
                                    f"sandbox:x:{self.uid}:{self.gid}:sandbox:/tmp:/usr/sbin/nologin\n")
        (etc / "group").write_text(f"root:x:0:\nsandbox:x:{self.gid}:\n")
        (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        if os.path.isfile("/etc/ld.so.cache"):
            shutil.copyfile("/etc/ld.so.cache", etc / "ld.so.cache")
        if os.path.islink("/etc/localtime") and not (etc / "localtime").is_symlink():
            os.symlink(os.readlink("/etc/localtime"), etc / "localtime")
        for f in etc.iterdir():
            if not f.is_symlink():
                f.chmod(0o644)
        return str(etc)

    # -------------------------------------------------------------------- the public calls
    def run_python(self, code: str, stdin: str = "", files: Optional[Dict[str, str]] = None,
                   limits: Optional[Limits] = None, env: Optional[Dict[str, str]] = None) -> Result:
        """Run ``code`` as a script (``python main.py``) with ``stdin``."""
        return self._execute(None, "script", code, stdin.encode(), limits or self.limits, env or {}, files=files)

    def run(self, argv: Sequence[str], stdin: str = "", files: Optional[Dict[str, str]] = None,
            limits: Optional[Limits] = None, env: Optional[Dict[str, str]] = None) -> Result:
        """Run the command ``argv`` (resolved inside the sandbox: ``self.python`` for Python)."""
        return self._execute(list(argv), "exec", "", stdin.encode(), limits or self.limits, env or {}, files=files)

    def serve(self, code: str, limits: Optional[Limits] = None) -> "Served":
        """Load ``code`` as a module in a sandbox and serve its functions to ``Served.call``;
        use as a context manager (the sandbox ends on exit)."""
        return Served(self, code, limits or self.limits)

    # -------------------------------------------------------------------- internals
    def _prepare(self, mode: str, code: str, files: Optional[Dict[str, str]], limits: Limits,
                 env: Dict[str, str], isolate: bool) -> tuple:
        run = self.home / f"run-{next(_RUNS)}"
        (run / "files").mkdir(parents=True, mode=0o755)
        for name, text in {"main.py": code, **(files or {})}.items():
            path = run / "files" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o644)
        mem = limits.memory_mb * 2**20
        size = limits.max_file_mb * 2**20
        rl: Dict[str, list] = {"RLIMIT_AS": [mem, mem], "RLIMIT_CPU": [limits.cpu_s, limits.cpu_s + 1],
                               "RLIMIT_FSIZE": [size, size], "RLIMIT_NOFILE": [256, 256], "RLIMIT_CORE": [0, 0]}
        if not isolate and os.geteuid() != 0:
            rl["RLIMIT_NPROC"] = [limits.max_processes, limits.max_processes]
        if isolate:
            (run / "root").mkdir(mode=0o755)
            where, cwd = "/sandbox", "/tmp"
        else:
            (run / "tmp").mkdir(mode=0o700)
            where, cwd = str(run / "files"), str(run / "tmp")
        cand_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8",
                    "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", **env}
        cfg = {"isolate": isolate, "parent": os.getpid(), "mode": mode, "program": f"{where}/main.py", "cwd": cwd,
               "env": cand_env, "limits": rl, "uid": self.uid, "gid": self.gid, "root": str(run / "root"),
               "files": str(run / "files"), "etc": self._etc, "tmp_mb": limits.max_file_mb,
               "binds": self.fs["binds"], "links": self.fs["links"], "masks": self.fs["masks"],
               "no_network_prelude": not isolate}
        return run, cfg

    def _spawn(self, mode: str, code: str, stdin: bytes, limits: Limits, env: Dict[str, str],
               files: Optional[Dict[str, str]] = None, isolate: Optional[bool] = None,
               argv: Optional[List[str]] = None) -> "_Live":
        isolate = self.isolated if isolate is None else isolate
        run, cfg = self._prepare(mode, code, files, limits, env, isolate)
        cfg["argv"] = argv
        limited = self._make_cgroups(run.name, limits)  # controller -> its cgroup
        cgroups = list(dict.fromkeys(limited.values()))
        cfg["cgroups"] = [str(c / "cgroup.procs") for c in cgroups]
        cfg["seccomp"] = isolate and self.seccomp
        isolation = ["rlimits", "timeout"] + (["namespaces", "minimal_root", "unprivileged"] if isolate else [])
        isolation += ["seccomp"] if cfg["seccomp"] else []
        if not isolate and os.geteuid() != 0:
            isolation.append("nproc")
        isolation += [f"{c}_cgroup" for c in limited]
        config_r, config_w = os.pipe()
        setup_r, setup_w = os.pipe()
        child_fds = [config_r, setup_w]
        channel = None
        if mode == "serve":
            req_r, req_w = os.pipe()
            rep_r, rep_w = os.pipe()
            cfg["channels"] = [req_r, rep_w]
            child_fds += [req_r, rep_w]
            channel = (req_w, rep_r)
        cfg["setup_fd"] = setup_w

        def popen() -> subprocess.Popen:  # on one long-lived thread: the parent-death signal follows it
            return subprocess.Popen([self.python, "-I", "-S", "-B", str(INSIDE), str(config_r)], cwd=str(run),
                                    env={"PATH": cfg["env"]["PATH"], "LANG": "C.UTF-8"}, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=child_fds,
                                    start_new_session=True)

        try:
            proc = self._spawner.submit(popen).result()
        except OSError:
            for fd in [setup_r, config_w] + list(channel or ()):
                os.close(fd)
            self._cleanup(run, cgroups)
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        with os.fdopen(config_w, "wb") as f:
            try:
                f.write(json.dumps(cfg).encode())
            except BrokenPipeError:
                pass
        live = _Live(self, proc, run, cgroups, limits, isolation, setup_r, stdin, channel)
        with self._lock:
            self._live.add(live)
        return live

    def _execute(self, argv: Optional[List[str]], mode: str, code: str, stdin: bytes, limits: Limits,
                 env: Dict[str, str], files: Optional[Dict[str, str]] = None,
                 isolate: Optional[bool] = None) -> Result:
        try:
            live = self._spawn(mode, code, stdin, limits, env, files, isolate, argv)
        except OSError as e:
            return Result("sandbox_error", None, "", f"{type(e).__name__}: {e}", 0.0, self.layers)
        return live.finish()

    def _make_cgroups(self, name: str, limits: Limits) -> Dict[str, Path]:
        """The run's cgroups, by controller: a pids limit, and a memory limit on all its
        processes and its tmpfs (no swap); v1 hierarchies of their own or one v2 directory."""
        made: Dict[str, Path] = {}
        memory = (limits.memory_mb + limits.max_file_mb + 96) * 2**20
        for controller, root in self.cgroup_roots.items():
            path = root / f"{CGROUP_PREFIX}{self.tag}-{name}"
            try:
                if path not in made.values():
                    path.mkdir()
                if controller == "pids":
                    (path / "pids.max").write_text(str(limits.max_processes))
                elif (path / "memory.max").exists():  # v2
                    (path / "memory.max").write_text(str(memory))
                    if (path / "memory.swap.max").exists():
                        (path / "memory.swap.max").write_text("0")
                else:  # v1: the limit, then memory + swap at the same value
                    (path / "memory.limit_in_bytes").write_text(str(memory))
                    if (path / "memory.memsw.limit_in_bytes").exists():
                        (path / "memory.memsw.limit_in_bytes").write_text(str(memory))
                made[controller] = path
            except OSError:
                if path not in made.values():
                    _rmdir_cgroup(path)
        return made

    def _cleanup(self, run: Path, cgroups: Sequence[Path]) -> None:
        for cgroup in cgroups:
            _kill_cgroup(cgroup)
            _rmdir_cgroup(cgroup)
        shutil.rmtree(run, ignore_errors=True)


class _Live:
    """A started sandboxed process: its pipes pumped with bounded buffers, a deadline."""

    def __init__(self, sandbox: Sandbox, proc: subprocess.Popen, run: Path, cgroups: List[Path], limits: Limits,
                 isolation: List[str], setup_r: int, stdin: bytes, channel: Optional[tuple]):
        self.sandbox, self.proc, self.run, self.cgroups, self.limits = sandbox, proc, run, cgroups, limits
        self.isolation = isolation
        self.start = time.monotonic()
        self.deadline = self.start + limits.timeout_s
        self.sel = selectors.DefaultSelector()
        self.out, self.err = bytearray(), bytearray()
        self.out_total = self.err_total = 0
        self.limit_hit: Optional[str] = None
        self.timed_out = False
        self.killed = False
        self.setup_r = setup_r
        self.pending: Dict[int, bytearray] = {}
        self.owned = {setup_r}  # raw fds this object closes, each exactly once
        self.inbox = bytearray()
        self.replies_open = False
        self.requests: Optional[int] = None
        for f in (proc.stdout, proc.stderr):
            os.set_blocking(f.fileno(), False)
            self.sel.register(f.fileno(), selectors.EVENT_READ, "out" if f is proc.stdout else "err")
        stdin_fd = os.dup(proc.stdin.fileno())
        proc.stdin.close()
        proc.stdin = None
        self.owned.add(stdin_fd)
        self._queue(stdin_fd, stdin, close_after=True)
        if channel is not None:
            self.requests, replies = channel
            self.owned.update(channel)
            os.set_blocking(replies, False)
            self.sel.register(replies, selectors.EVENT_READ, "replies")
            self.replies_open = True

    # -- pumping
    def _close(self, fd: int) -> None:
        if fd in self.owned:
            self.owned.discard(fd)
            try:
                self.sel.unregister(fd)
            except (KeyError, ValueError):
                pass
            os.close(fd)

    def _queue(self, fd: int, data: bytes, close_after: bool = False) -> None:
        if fd not in self.pending:
            if not data and close_after:
                self._close(fd)
                return
            self.pending[fd] = bytearray()
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_WRITE, ("write", close_after))
        self.pending[fd] += data

    def _pump(self, timeout: float) -> None:
        for key, _ in self.sel.select(max(0.0, timeout)):
            fd, what = key.fd, key.data
            if isinstance(what, tuple):  # a pending write
                buf = self.pending[fd]
                try:
                    n = os.write(fd, bytes(buf[:65536]))
                except BlockingIOError:
                    continue
                except OSError:  # the reader is gone
                    n = len(buf)
                del buf[:n]
                if not buf:
                    del self.pending[fd]
                    if what[1]:
                        self._close(fd)
                    else:
                        self.sel.unregister(fd)
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                if what == "replies":
                    self.replies_open = False
                    self._close(fd)
                else:
                    self.sel.unregister(fd)
                continue
            if what == "replies":
                self.inbox += chunk
                continue
            cap = self.limits.max_output_bytes
            if what == "out":
                self.out_total += len(chunk)
                self.out += chunk[: max(0, cap - len(self.out))]
                over = self.out_total > cap
            else:
                self.err_total += len(chunk)
                self.err += chunk
                if len(self.err) > 2 * cap:
                    del self.err[:-cap]
                over = self.err_total > cap
            if over and self.limit_hit is None:
                self.limit_hit = "output_limit"
                self.kill()

    def _streams_open(self) -> bool:
        return any(k.data in ("out", "err") for k in self.sel.get_map().values())

    # -- the served program's channel
    def send(self, message: Any) -> None:
        if self.requests is not None:
            self._queue(self.requests, inside.frame(message))

    def receive(self, deadline: float) -> Optional[Any]:
        """The next message of the served program, or None: it died, went silent past the
        deadline, or broke a limit (``stop_reason`` says which)."""
        while True:
            if len(self.inbox) >= 4:
                n = int.from_bytes(self.inbox[:4], "big")
                if n > self.limits.max_message_bytes:
                    self.limit_hit = self.limit_hit or "output_limit"
                    self.kill()
                    return None
                if len(self.inbox) >= 4 + n:
                    data = bytes(self.inbox[4:4 + n])
                    del self.inbox[:4 + n]
                    if data.count(b"[") > self.limits.max_message_items:  # before json builds them all
                        self.limit_hit = self.limit_hit or "output_limit"
                        self.kill()
                        return None
                    try:
                        message = json.loads(data)
                    except Exception:  # noqa: BLE001 - whatever the program wrote: not a message
                        return ["malformed"]
                    return message if isinstance(message, list) else ["malformed"]
            if self.killed or not self.replies_open:
                return None
            now = time.monotonic()
            if now >= deadline:
                if deadline >= self.deadline:
                    self.timed_out = True
                return None
            self._pump(min(deadline - now, 0.5))

    def stop_reason(self) -> str:
        if self.limit_hit:
            return self.limit_hit
        if self.timed_out or time.monotonic() >= self.deadline:
            return "timeout"
        return "crashed"

    # -- the end
    def kill(self) -> None:
        """Everything inside first, so that the outer process reaps PID 1 and exits on its own;
        then the outer process (whose death alone would also take PID 1 and all inside along)."""
        if self.killed:
            return
        self.killed = True
        if self.cgroups:
            _kill_cgroup(self.cgroups[0], spare=self.proc.pid)  # every process of the run is in each
            try:
                self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def finish(self) -> Result:
        """Wait for the end (or the deadline), then the result; the run's traces are removed."""
        if self.requests is not None and self.requests not in self.pending:
            self._close_requests()
        try:
            while self._streams_open() and not self.killed:
                now = time.monotonic()
                if now >= self.deadline:
                    self.timed_out = True
                    self.kill()
                    break
                self._pump(min(self.deadline - now, 0.5))
            if not self.killed:
                try:
                    self.proc.wait(timeout=max(0.0, self.deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.timed_out = True
        finally:
            self.kill()
            self.proc.wait()
            setup = b""
            try:
                os.set_blocking(self.setup_r, False)
                setup = os.read(self.setup_r, 4096)
            except (BlockingIOError, OSError):
                pass
            self._close_all()
            oom = self._oom_killed()
            self.sandbox._cleanup(self.run, self.cgroups)
            with self.sandbox._lock:
                self.sandbox._live.discard(self)
        seconds = time.monotonic() - self.start
        rc = self.proc.returncode
        if rc is not None and rc < 0 and self.killed and not (self.timed_out or self.limit_hit):
            rc = None  # killed by us after it had finished writing
        stderr = self.err[-self.limits.max_output_bytes:].decode(errors="replace")
        if setup:
            return Result("sandbox_error", rc, "", setup.decode(errors="replace"), seconds, self.isolation)
        if self.timed_out:
            status = "timeout"
        elif self.limit_hit:
            status = self.limit_hit
        elif rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            status = "timeout"
        elif oom:
            status = "memory"
        elif rc == 0 or (rc is None and self.proc.returncode is not None):
            status = "ok" if rc == 0 else "error"
        elif "MemoryError" in stderr:
            status = "memory"
        else:
            status = "error"
        return Result(status, rc, self.out.decode(errors="replace"), stderr, seconds, self.isolation)

    def _oom_killed(self) -> bool:
        """Whether the kernel killed a process of the run at its memory cgroup's limit."""
        for cgroup in self.cgroups:
            for name in ("memory.events", "memory.oom_control"):  # v2, v1
                try:
                    for line in (cgroup / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and value.strip() not in ("", "0"):
                            return True
                except OSError:
                    continue
        return False

    def _close_requests(self) -> None:
        if self.requests is not None:
            self.pending.pop(self.requests, None)
            self._close(self.requests)
            self.requests = None

    def _close_all(self) -> None:
        self._close_requests()
        for fd in list(self.owned):
            self._close(fd)
        self.sel.close()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


class Served:
    """A program loaded as a module in a sandbox; ``call`` runs one of its functions there and
    returns the value as fresh builtin data. ``Stopped`` when the program cannot answer."""

    def __init__(self, sandbox: Sandbox, code: str, limits: Limits):
        self.sandbox, self.code, self.limits = sandbox, code, limits
        self.live: Optional[_Live] = None
        self.result: Optional[Result] = None
        self.load_error: Optional[str] = None
        self.raised = False  # a call raised an exception inside the program

    def __enter__(self) -> "Served":
        self.live = self.sandbox._spawn("serve", self.code, b"", self.limits, {})
        try:
            hello = self.live.receive(self.live.deadline)
        except BaseException:
            self.close()
            raise
        if hello is not None and hello[:1] == ["loaded"]:
            return self
        status = self.live.stop_reason() if hello is None else "error"
        self.load_error = " ".join(str(x) for x in hello[1:3]) if hello and hello[:1] == ["load_error"] else status
        self.close()
        if hello is None and self.result is not None and self.result.status == "sandbox_error":
            status, self.load_error = "sandbox_error", self.result.stderr
        raise Stopped(status, f"the program did not load: {self.load_error}")

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> Result:
        if self.result is None and self.live is not None:
            self.result = self.live.finish()
        return self.result

    def call(self, name: str, args: Sequence[Any] = (), kwargs: Optional[Dict[str, Any]] = None,
             timeout_s: Optional[float] = None) -> Any:
        live = self.live
        if live is None or live.killed:
            raise Stopped("crashed" if live is None else live.stop_reason())
        deadline = live.deadline if timeout_s is None else min(live.deadline, time.monotonic() + timeout_s)
        live.send(["call", name, inside.encode(list(args)), inside.encode(dict(kwargs or {}))])
        reply = live.receive(deadline)
        if reply is None:
            reason = "timeout" if time.monotonic() >= deadline else live.stop_reason()
            live.kill()
            raise Stopped(reason)
        if reply[:1] == ["ok"] and len(reply) == 2:
            try:
                return inside.decode(reply[1])
            except ValueError as e:
                live.kill()
                raise Stopped("error", f"malformed reply: {e}") from None
        if reply[:1] == ["raise"] and len(reply) == 3:
            self.raised = True
            raise candidate_exception(str(reply[1]), str(reply[2]))
        live.kill()
        raise Stopped("error", "malformed reply")


# Raised in the checks as the builtin the program raised (a test may expect ValueError), but
# never one that changes control flow in the checks themselves: StopIteration would end the
# map() or generator a check iterates, and a check would pass on nothing.
CONTROL_FLOW = (StopIteration, StopAsyncIteration)


def candidate_exception(kind: str, message: str) -> Exception:
    builtin = getattr(builtins, kind, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception) and not issubclass(builtin, CONTROL_FLOW):
        try:
            return builtin(message)
        except Exception:  # noqa: BLE001 - a builtin whose constructor takes other arguments
            pass
    return CandidateError(f"{kind}: {message}")


@functools.lru_cache(maxsize=None)
def compiled(source: str, name: str):
    """Trusted check code compiled once, asserts kept whatever the grader's -O."""
    return compile(source, name, "exec", optimize=0, dont_inherit=True)
