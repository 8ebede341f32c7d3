"""Which process owns something (a cache lease, an MLflow run, a sandbox's leftovers), and
whether it still runs: a pid with its start time, so a reused pid is not taken for it."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Optional


def start_time(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot (/proc), None if it is not running."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def alive(pid: int, started: str) -> bool:
    return start_time(pid) == started


def me() -> str:
    """This process, as ``host:pid:start``."""
    return f"{socket.gethostname()}:{os.getpid()}:{start_time(os.getpid())}"


def gone(owner: str) -> bool:
    """An owner (``host:pid:start``) on this host that no longer runs; another host's, or an
    owner that is not a process (a Slurm job), is never known to be gone."""
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not alive(int(pid), started)
