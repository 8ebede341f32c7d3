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


def _host() -> str:
    """This host as owners name it: the hostname and this PID namespace (containers that share
    a hostname do not see each other's processes)."""
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        ns = 0
    return f"{socket.gethostname()}/{ns}"


def me() -> str:
    """This process, as ``host:pid:start``."""
    return f"{_host()}:{os.getpid()}:{start_time(os.getpid())}"


def local(owner: str) -> bool:
    """Whether an owner is a process of this host (one whose liveness can be known here)."""
    return owner.partition(":")[0] == _host()


def gone(owner: str) -> bool:
    """An owner (``host:pid:start``) on this host that no longer runs; another host's, an
    owner that is not a process (a Slurm job), or one whose start time could not be read, is
    never known to be gone."""
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != _host() or not pid.isdigit() or not started.isdigit():
        return False
    return not alive(int(pid), started)
