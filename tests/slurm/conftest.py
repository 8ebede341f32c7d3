"""A real one-node Slurm cluster (scripts/slurm_local.sh), started once for the slurm tests
and stopped after them if they started it; the tests are skipped, with the reason, where it
cannot start (not root, no apt, a container without the rights the daemons need)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm_local.sh"


def _up() -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(s in out for s in ("idle", "mixed", "allocated"))


@pytest.fixture(scope="session")
def slurm_cluster():
    started = False
    if not _up():
        r = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=600)
        if r.returncode != 0 or not _up():
            pytest.skip(f"no local Slurm cluster: `scripts/slurm_local.sh start` exit {r.returncode}: "
                        f"{(r.stderr or r.stdout).strip()[-400:]}")
        started = True
    yield
    if started:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, timeout=60)
