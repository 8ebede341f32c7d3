"""The sandbox against hostile model-written code: each attack is contained, graded as a
failure, and leaves the host as it was."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from downstream_eval.sandbox import Limits, Sandbox
from downstream_eval.tasks import Doc, TaskConfig
from downstream_eval.tasks.humaneval import HumanEvalTask

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return Sandbox(tmp_path_factory.mktemp("sandbox"))


def _grade(sandbox, body: str, timeout_s: float = 3) -> str:
    """The HumanEval grader's verdict on an answer whose function body is ``body``."""
    task = HumanEvalTask(TaskConfig(name="he", kind="humaneval", domain="code", options={"timeout_s": timeout_s}),
                         {"sandbox": sandbox, "workers": 1})
    doc = Doc("Hostile/0", [], "def check(candidate):\n    assert candidate(2) == 4\n",
              {"prompt": "def double(x):\n", "entry_point": "double"})
    answer = f"```python\ndef double(x):\n{body}\n    return 2 * x\n```"
    [[grade]] = task.grade([(doc, [answer])])
    return grade.verdict


def _alive(marker: str) -> list:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def test_a_correct_answer_passes(sandbox):
    assert _grade(sandbox, "    pass") == "passed"


def test_infinite_loop_times_out(sandbox):
    marker = f"loop-{uuid.uuid4().hex}"
    assert _grade(sandbox, f"    import sys; sys.argv.append('{marker}')\n    while True:\n        pass") == "timeout"
    assert not _alive(marker)


def test_huge_allocation_is_refused(sandbox):
    r = sandbox.run_python("x = bytearray(64 * 2**30)\n", limits=Limits(memory_mb=512))
    assert r.status == "memory"
    grow = "    chunks = []\n    while True:\n        chunks.append(bytearray(50 * 2**20))"
    assert _grade(sandbox, grow, timeout_s=30) == "memory"


def test_fork_bomb_is_contained(sandbox):
    if not {"pids_cgroup", "nproc", "namespaces"} & set(sandbox.layers):
        pytest.skip(f"no process limit on this machine (layers: {sandbox.layers})")
    marker = f"bomb-{uuid.uuid4().hex}"
    code = (f"import os, sys, time\nsys.argv.append({marker!r})\nn = 0\n"
            "try:\n    for _ in range(5000):\n        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n"
            "        n += 1\nexcept OSError:\n    print('forks', n, flush=True)\n    raise\n")
    r = sandbox.run_python(code, limits=Limits(timeout_s=5, max_processes=16))
    assert r.status != "ok"
    if "pids_cgroup" in r.isolation or "nproc" in r.isolation:
        assert r.stdout.startswith("forks") and int(r.stdout.split()[1]) < 16
    assert not _alive(marker)  # every child died with the sandbox
    body = "    import os\n    while True:\n        os.fork()"
    assert _grade(sandbox, body) != "passed"


def test_writes_outside_the_work_dir_do_not_reach_the_host(sandbox, tmp_path):
    if "namespaces" not in sandbox.layers:
        pytest.skip(f"no read-only mounts on this machine (layers: {sandbox.layers})")
    targets = [tmp_path / "escaped.txt", REPO / f"escaped-{uuid.uuid4().hex}.txt",
               Path.home() / f"escaped-{uuid.uuid4().hex}.txt"]
    lines = "\n".join(f"    try:\n        open({str(p)!r}, 'w').write('x')\n    except OSError:\n        pass"
                      for p in targets)
    assert _grade(sandbox, lines) == "passed"  # the answer itself is right...
    assert not any(p.exists() for p in targets)  # ...and nothing it wrote reached the host
    r = sandbox.run_python(f"open({str(REPO / 'pyproject.toml')!r}, 'a').write('# pwned')\n")
    assert r.status == "error" and "Read-only file system" in r.stderr
    assert "# pwned" not in (REPO / "pyproject.toml").read_text()


def test_network_is_unreachable(sandbox):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        connect = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hi')\n"
        r = sandbox.run_python(connect)
        assert r.status == "error" and "network access is disabled" in r.stderr  # the prelude
        if "namespaces" in sandbox.layers:  # without the prelude: no route out of the network namespace
            r = sandbox.run([sys.executable, "-c", connect])
            assert r.status == "error" and ("Connection refused" in r.stderr or "unreachable" in r.stderr)
        with pytest.raises(socket.timeout):
            server.accept()  # no connection ever reached the host
    assert _grade(sandbox, f"    import socket\n    socket.create_connection(('127.0.0.1', {port}))") == "error"


def test_output_flood_is_cut(sandbox):
    r = sandbox.run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
                           limits=Limits(timeout_s=3, max_output_bytes=1 << 16))
    assert r.status in ("output_limit", "timeout") and len(r.stdout) <= 1 << 16


def test_work_dirs_are_removed(sandbox):
    before = set(os.listdir(sandbox.base))
    sandbox.run_python("open('scratch.txt', 'w').write('x')\n")
    assert set(os.listdir(sandbox.base)) == before
