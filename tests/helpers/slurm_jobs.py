"""Waiting on Slurm jobs in tests."""

from __future__ import annotations

import subprocess
import time
from typing import Iterable


def wait_for_jobs(job_ids: Iterable[str], timeout: float = 600) -> None:
    """Until none of the jobs is pending or running."""
    ids = ",".join(job_ids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", ids, "-o", "%i %T"], capture_output=True, text=True).stdout
        if not out.strip():
            return
        time.sleep(1)
    raise TimeoutError(f"jobs {ids} still queued after {timeout}s:\n{out}")
