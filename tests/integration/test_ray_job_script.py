"""The OpenRLHF job script's Ray part, run for real outside Slurm (as cluster=local runs it):
a Ray head started with the planned resources, the command submitted as a Ray job whose
*status* (not its log stream) decides the exit code, and nothing of Ray left afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from plumbing.launch.slurm import JobSpec, RaySection, shell_join, write

pytestmark = pytest.mark.integration
pytest.importorskip("ray")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _job(tmp_path, name, code):
    spec = JobSpec(name=name, command="ray_job " + shell_join([sys.executable, "-c", code]), job_dir=str(tmp_path),
                   ray=RaySection(num_cpus=2, num_gpus=0, port=_free_port(), dashboard_port=_free_port(),
                                  startup_timeout_s=180))
    return write(spec, tmp_path / f"{name}.sbatch")


@pytest.mark.timeout(900)
def test_a_ray_job_s_status_decides_and_ray_is_stopped(tmp_path):
    env = {**os.environ, "RALIGN_RAY_POLL_S": "1"}
    env.pop("RAY_ADDRESS", None)
    ok = subprocess.run(["bash", str(_job(tmp_path / "ok", "ok", "import time; time.sleep(3); print('trained')"))],
                        capture_output=True, text=True, env=env, timeout=400)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert "trained" in ok.stdout + ok.stderr and "succeeded" in ok.stdout
    bad = subprocess.run(["bash", str(_job(tmp_path / "bad", "bad", "import sys; sys.exit(3)"))],
                         capture_output=True, text=True, env=env, timeout=400)
    assert bad.returncode == 1 and "FAILED" in bad.stderr, bad.stdout[-3000:] + bad.stderr[-3000:]
    left = subprocess.run(["pgrep", "-f", "raylet|gcs_server"], capture_output=True, text=True).stdout
    assert not left.strip(), f"Ray processes left after the job: {left}"
