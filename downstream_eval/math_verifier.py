"""math-verify with a hard time limit: each equivalence check runs in a worker process that is
killed when it overruns.

Why a process: math-verify's own timeouts use ``signal.alarm``, which only the main thread may
set (grading runs in a worker thread), and no in-process limit stops a single long C-level
computation: ``\\boxed{9^{9^{9^{9}}}}`` makes sympy compute a power with hundreds of millions of
digits while holding the GIL, stalling every thread of the grader. A worker (``python -c`` ...
:func:`serve`, math-verify imported once) answers one check at a time over a pipe; the grader
waits ``timeout_s`` (wall clock) for the answer, then kills the worker and starts a new one for
the next check. The worker also caps its own CPU time per check (``RLIMIT_CPU``: the kernel
ends it even if the grader died) and its address space (``MEMORY_MB``).
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Tuple

MEMORY_MB = 4096  # address-space cap of a worker: a runaway expression fails, the machine does not
START_TIMEOUT_S = 120.0  # a worker's start (python + math-verify import)


# ---------------------------------------------------------------------------- worker side
def _equivalent(gold: str, answer: str) -> bool:
    from math_verify import parse, verify

    wrap = lambda s: s if "$" in s or "\\boxed" in s else f"${s}$"  # noqa: E731
    # math-verify's own (signal) timeouts off: the grader's limit is the one, and it is counted
    gold_p, ans_p = parse(wrap(gold), parsing_timeout=None), parse(wrap(answer), parsing_timeout=None)
    if not gold_p or not ans_p:
        return gold.strip() == answer.strip()
    return bool(verify(gold_p, ans_p, timeout_seconds=None))


def serve() -> None:
    """The worker: one JSON request per line on stdin (``[gold, answer, timeout_s]``), one JSON
    reply per line on stdout (``{"equal": bool}`` or ``{"error": "..."}``); EOF ends it."""
    import logging
    import resource

    logging.disable(logging.WARNING)  # math-verify warns on every call that its timeouts are off
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # nothing a library prints can corrupt the replies
    limit = MEMORY_MB << 20
    for res, value in ((resource.RLIMIT_AS, limit), (resource.RLIMIT_CORE, 0)):  # no core file of an overrun
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass
    importlib.import_module("math_verify")  # before "ready": a check's time is its own

    out.write("ready\n")
    for line in sys.stdin:
        gold, answer, timeout_s = json.loads(line)
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu = int(used.ru_utime + used.ru_stime + timeout_s) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, resource.RLIM_INFINITY))  # SIGXCPU ends an overrun
        try:
            reply = {"equal": _equivalent(gold, answer)}
        except MemoryError:
            reply = {"error": "MemoryError: over the worker's memory cap"}
        except Exception as e:  # parser edge cases: a failed check, not a dead worker
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")


# ---------------------------------------------------------------------------- grader side
class Timeout(Exception):
    """The check ran past its time limit (the worker was killed)."""


class WorkerDied(RuntimeError):
    """The worker ended while checking (killed from outside, out of memory at the kernel)."""


class _Worker:
    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[1])
        boot = f"import sys; sys.path.insert(0, {root!r}); from downstream_eval.math_verifier import serve; serve()"
        self.proc = subprocess.Popen([sys.executable, "-c", boot], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, close_fds=True)
        self._buf = b""
        if self._line(START_TIMEOUT_S) != "ready":  # "" or None: died or hung while starting
            self.kill()
            raise RuntimeError(f"the math-verify worker did not start within {START_TIMEOUT_S:g}s "
                               f"({sys.executable} -c 'import math_verify' should work)")

    def _line(self, timeout_s: float) -> Optional[str]:
        """The next line of the worker's stdout; None on timeout, "" at EOF (the worker died)."""
        assert self.proc.stdout is not None
        fd, end = self.proc.stdout.fileno(), time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return ""
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def check(self, gold: str, answer: str, timeout_s: float) -> bool:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps([gold, answer, timeout_s]) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            self.kill()
            raise WorkerDied(f"the math-verify worker had exited ({self.proc.returncode})") from None
        line = self._line(timeout_s)
        if line is None:
            self.kill()
            raise Timeout(f"no verdict within {timeout_s:g}s")
        if line == "":
            try:
                self.proc.wait(5)  # its stdout closed: it is exiting; read how it ended
            except subprocess.TimeoutExpired:
                pass
            self.kill()
            if self.proc.returncode == -signal.SIGXCPU:  # its own CPU limit: an overrun too
                raise Timeout(f"over the CPU limit of {timeout_s:g}s")
            raise WorkerDied(f"the math-verify worker exited ({self.proc.returncode})")
        reply = json.loads(line)
        if "error" in reply:
            raise ValueError(reply["error"])
        return bool(reply["equal"])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass


class Verifier:
    """Equivalence checks with a hard per-check time limit, on up to ``size`` worker processes
    (thread-safe: each call borrows an idle worker; a killed one is replaced on demand)."""

    def __init__(self, size: int = 1):
        self.size = max(1, size)
        self._idle: List[_Worker] = []
        self._started = 0
        self._cond = threading.Condition()
        self._closed = False

    def _borrow(self) -> _Worker:
        with self._cond:
            while not self._idle and self._started >= self.size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._started += 1
        try:
            return _Worker()
        except BaseException:
            with self._cond:
                self._started -= 1
                self._cond.notify()
            raise

    def _give_back(self, worker: Optional[_Worker]) -> None:
        with self._cond:
            if worker is None or self._closed:
                self._started -= 1
                if worker is not None:
                    worker.kill()
            else:
                self._idle.append(worker)
            self._cond.notify()

    def equivalent(self, gold: str, answer: str, timeout_s: float) -> bool:
        """math-verify equivalence of ``answer`` to ``gold``; :class:`Timeout` past ``timeout_s``
        seconds, ``ValueError`` when math-verify failed on them."""
        worker = self._borrow()
        try:
            result = worker.check(gold, answer, timeout_s)
        except (Timeout, WorkerDied):
            self._give_back(None)  # killed: the next check starts a fresh worker
            raise
        except BaseException:
            self._give_back(worker)
            raise
        self._give_back(worker)
        return result

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._started -= len(idle)
        for w in idle:
            w.kill()


_SHARED: Optional[Verifier] = None
_SHARED_LOCK = threading.Lock()


def shared(size: int) -> Verifier:
    """The process's verifier (grown to ``size`` workers when asked for more); closed at exit."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            import atexit

            _SHARED = Verifier(size)
            atexit.register(_SHARED.close)
        elif size > _SHARED.size:
            with _SHARED._cond:
                _SHARED.size = size
                _SHARED._cond.notify_all()
        return _SHARED


def check(gold: str, answer: str, timeout_s: float, workers: int = 1) -> Tuple[str, Optional[str]]:
    """(verdict, error) of one check on the shared verifier: correct | wrong | timeout (past
    ``timeout_s``) | error (math-verify failed on the answer) | grader_error (the worker died).
    A worker that cannot start raises: no answer could be graded."""
    try:
        ok = shared(workers).equivalent(gold, answer, timeout_s)
    except Timeout as e:
        return "timeout", str(e)
    except WorkerDied as e:
        return "grader_error", str(e)
    except ValueError as e:
        return "error", str(e)
    return ("correct" if ok else "wrong"), None
