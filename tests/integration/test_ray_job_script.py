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


JUDGE = """
import http.server, os, sys
open(sys.argv[2], "w").write(str(os.getpid()))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404); self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is gone for our purpose
        return fh.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.parametrize("how", ["ok", "fails", "signalled"])
def test_the_judge_server_the_job_started_is_stopped_however_the_job_ends(tmp_path, how):
    """The judge (a stand-in for `vllm serve` speaking its health route) is started in the
    background, waited for, and stopped by the job's cleanup: after a clean exit, a failed
    command, and a TERM (a time limit or preemption)."""
    from plumbing.launch.slurm import JudgeSection

    port, pid_file, endpoint = _free_port(), tmp_path / "judge.pid", tmp_path / "genrm_endpoint"
    command = {"ok": f'curl -sf "$(cat {endpoint})/../health"',
               "fails": "exit 3", "signalled": "sleep 120"}[how]
    spec = JobSpec(name=f"judge-{how}", command=command, job_dir=str(tmp_path),
                   judge=JudgeSection(command=shell_join([sys.executable, "-c", JUDGE, str(port), str(pid_file)]),
                                      port=port, endpoint_file=str(endpoint), startup_timeout_s=60))
    script = write(spec, tmp_path / "job.sbatch")
    proc = subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    if how == "signalled":
        import time

        deadline = time.monotonic() + 60
        while not endpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        proc.terminate()
        signalled = time.monotonic()
    out, _ = proc.communicate(timeout=120)
    if how == "signalled":  # at once, not when the command would have ended (120 s)
        assert time.monotonic() - signalled < 30, out
    assert proc.returncode == {"ok": 0, "fails": 3, "signalled": 143}[how], out
    assert endpoint.read_text().startswith("http://") and "judge healthy" in out
    pid = int(pid_file.read_text())
    assert not _alive(pid), f"the judge (pid {pid}) outlived the job:\n{out}"


def test_a_judge_sharing_the_one_node_leaves_ray_the_rest_and_the_job_runs(tmp_path):
    """cluster=local with a judge the job serves: the judge takes GPUs 0,1 of the only node and
    Ray starts there too on GPUs 2,3 (not an empty node list: `RAY_NODES[0]: unbound variable`)."""
    from plumbing.launch.slurm import JudgeSection

    env = {**os.environ, "RALIGN_RAY_POLL_S": "1"}
    for var in ("RAY_ADDRESS", "CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "SLURM_JOB_NODELIST"):
        env.pop(var, None)
    port, pid_file, endpoint = _free_port(), tmp_path / "judge.pid", tmp_path / "genrm_endpoint"
    judge = f"import os; open({str(tmp_path / 'judge.gpus')!r}, 'w').write(os.environ['CUDA_VISIBLE_DEVICES'])\n"
    spec = JobSpec(name="shared", command="ray_job " + shell_join([sys.executable, "-c", "print('trained')"]),
                   job_dir=str(tmp_path),
                   judge=JudgeSection(command=shell_join([sys.executable, "-c", judge + JUDGE, str(port), str(pid_file)]),
                                      port=port, endpoint_file=str(endpoint), startup_timeout_s=60, devices="0,1"),
                   ray=RaySection(num_cpus=2, num_gpus=2, port=_free_port(), dashboard_port=_free_port(),
                                  startup_timeout_s=180, devices="2,3"))
    proc = subprocess.run(["bash", str(write(spec, tmp_path / "job.sbatch"))], capture_output=True, text=True,
                          env=env, timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Ray cluster up: 1 node(s)" in out and "succeeded" in out and "trained" in out
    assert (tmp_path / "judge.gpus").read_text() == "0,1"
    assert not _alive(int(pid_file.read_text()))
