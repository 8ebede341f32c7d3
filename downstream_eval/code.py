"""Reading code out of a model's answer, and running code tasks' programs in the sandbox."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional, Sequence, TypeVar

T = TypeVar("T")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)


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
