"""Reading code out of a model's answer, and running code tasks' programs in the sandbox."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, TypeVar

from plumbing.config.schema import Problems, check_positive

T = TypeVar("T")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)


@dataclass
class SandboxParams:
    """A code kind's limits of one sandboxed run (each kind sets its own defaults)."""

    timeout_s: float = 10.0
    memory_mb: int = 1024

    def limits(self, timeout_s: Optional[float] = None) -> Any:
        from downstream_eval.sandbox import Limits

        return Limits(timeout_s=float(timeout_s or self.timeout_s), memory_mb=int(self.memory_mb))

    def check(self) -> Problems:
        p: Problems = []
        check_positive(p, "timeout_s", self.timeout_s)
        check_positive(p, "memory_mb", self.memory_mb)
        return p


def extract_code(text: str, entry_point: Optional[str] = None) -> str:
    """The fenced code block if there is one, else the whole text. With several blocks: the
    last Python one that defines ``entry_point`` (when given), else the last Python one,
    else the last one."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text or "")]
    if not blocks:
        return (text or "").strip("\n")
    python = [b for lang, b in blocks if lang in ("python", "py", "python3", "")] or [b for _, b in blocks]
    if entry_point:
        defining = [b for b in python if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", b, re.MULTILINE)]
        if defining:
            return defining[-1]
    return python[-1]


def parallel_map(fn: Callable[[T], Any], items: Sequence[T], workers: Optional[int] = None) -> List[Any]:
    """``fn`` over items on a thread pool (each call waits on its own sandbox process)."""
    if not items:
        return []
    with ThreadPoolExecutor(workers or max(2, os.cpu_count() or 2)) as pool:
        return list(pool.map(fn, items))


class Candidate:
    """The candidate's function as the checks see it: each call runs in the sandbox and
    returns plain data."""

    def __init__(self, served: Any, name: str):
        self._served, self._name = served, name
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._served.call(self._name, args, kwargs)


def run_check(sandbox: Any, program: str, limits: Any, entry_point: str, test: str, helpers: str = "",
              name: str = "check") -> str:
    """Run a HumanEval-style ``test`` (defining ``check(candidate)``) in this process against
    ``program``'s ``entry_point`` served from the sandbox; ``helpers`` (the problem's prompt:
    functions the test uses, like ``poly``) run here too. The verdict: ``passed`` only when
    ``check`` returned; else failed | error | timeout | memory | output_limit | check_error."""
    from downstream_eval.sandbox import Stopped, compiled

    scope: dict = {"__name__": "__check__"}
    try:
        if helpers:
            try:
                exec(compiled(helpers, f"<{name} prompt>"), scope)
            except Exception:  # a prompt that does not run alone: the test may not need it
                scope = {"__name__": "__check__"}
        exec(compiled(test, f"<{name} test>"), scope)
        check = scope["check"]
    except Exception:  # the problem's own test does not run: not the candidate's fault
        return "check_error"
    served = sandbox.serve(program, limits)
    try:
        with served:
            candidate = Candidate(served, entry_point)
            scope[entry_point] = candidate  # tests that name the function call the candidate too
            check(candidate)
        return "passed"
    except Stopped as e:
        return e.status
    except MemoryError:
        return "memory"
    except Exception:  # an assert, or an error: the candidate's when it raised, else its value's
        return "error" if served.raised else "failed"
