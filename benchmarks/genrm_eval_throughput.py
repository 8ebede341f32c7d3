"""genrm.evaluate end to end against a loopback judge server, and genrm.score on 1M records.

1. Throughput: N synthetic R-Align samples; a loopback server (own process) answers as the
   rule judge of genrm/testing.py after a fixed delay L with at most C requests in flight.
   genrm.evaluate (GenRM + MetaRM through the HTTP backend at concurrency C, MLflow on)
   cannot beat the server-bound ideal (GenRM calls + MetaRM calls) * L / C.
2. MetaRM calls saved by label gating: label-wrong samples are never sent.
3. genrm.score wall time (a whole `python -m genrm.score` process) on 1,000,000 records.

    python benchmarks/genrm_eval_throughput.py [--samples 2048] [--latency 0.25] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_client_throughput import start_server  # noqa: E402

from plumbing.config.hydra_app import compose, execute, finalize  # noqa: E402


def synthetic_ralign(path: Path, n: int, accuracy: float, seed: int = 0) -> None:
    """Samples whose rule-judge verdict is right with probability ``accuracy``."""
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for i in range(n):
            gt = rng.choice("AB")
            judge_right = rng.random() < accuracy
            good = gt if judge_right else ("B" if gt == "A" else "A")
            tag = rng.choice(["#fact", "#style"])
            a = f"answer A to question {i} " + ("<<good>> " + tag if good == "A" else "")
            b = f"answer B to question {i} " + ("<<good>> " + tag if good == "B" else "")
            fh.write(json.dumps({"id": i, "conversations": [{"role": "user", "content": f"question {i}"}],
                                 "response_A": a, "response_B": b, "gt_label": gt,
                                 "gt_judgment": f"{gt} is better because of #fact", "source": {"subset": "synthetic"}}) + "\n")


def throughput(n: int, latency: float, conc: int, tmp: Path) -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    data = tmp / "bench.jsonl"
    synthetic_ralign(data, n, accuracy=0.7)
    proc, url = start_server(latency, conc, "genrm.testing:rule_responder")
    try:
        backend = [f"genrm.concurrency={conc}", f"metarm.concurrency={conc}"]
        overrides = [f"output_dir={tmp / 'out'}", "data=helpsteer3", f"data.helpsteer3.path={data}",
                     "llm@genrm=openai", f"genrm.base_url={url}", "genrm.model=genrm",
                     "llm@metarm=openai", f"metarm.base_url={url}", "metarm.model=metarm", *backend]
        obj, cfg = finalize(*compose("genrm_eval", overrides))
        t0 = time.perf_counter()
        summary = execute("genrm_eval", obj, cfg)
        dt = time.perf_counter() - t0
        with urllib.request.urlopen(url[: -len("/v1")] + "/stats") as resp:
            calls = json.load(resp)["chat_requests"]
    finally:
        proc.terminate()
        proc.wait(10)
    b = summary["benchmarks"]["helpsteer3"]
    ideal = calls * latency / conc
    return {"samples": n, "latency_s": latency, "concurrency": conc, "server_calls": calls,
            "genrm_calls": n, "metarm_calls": b["metarm_calls"], "metarm_calls_saved": b["metarm_calls_saved"],
            "ideal_s": round(ideal, 2),
            # the benchmark's own work: judging, MetaRM, scoring, writing samples.jsonl
            "benchmark_s": b["seconds"], "benchmark_ratio": round(ideal / b["seconds"], 3),
            # the whole stage: + opening the MLflow run (a new sqlite store) and logging to it
            "stage_s": round(dt, 2), "stage_ratio": round(ideal / dt, 3),
            "samples_per_s": round(n / dt, 1), "l_acc": round(b["l_acc"], 3)}


def score_million(tmp: Path, repeats: int) -> dict:
    path = tmp / "million.jsonl"
    rng = random.Random(1)
    judgment = "The first answer handles the edge case while the second ignores it. " * 3
    with open(path, "w") as fh:
        for i in range(1_000_000):
            gt = rng.choice("AB")
            pred = gt if rng.random() < 0.7 else ("B" if gt == "A" else "A")
            verdict = rng.choice(["Correct", "Correct", "Incorrect"]) if pred == gt else "SkippedLabelMismatch"
            fh.write(json.dumps({"id": i, "gt_label": gt, "model_pred": pred, "model_judgment": judgment + f"\\boxed{{{pred}}}",
                                 "metarm_verdict": verdict, "source": {"subset": rng.choice(["chat", "math", "code"])}}) + "\n")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "genrm.score", f"input={path}", f"output_dir={tmp / 'score'}"],
                       check=True, capture_output=True)
        times.append(round(time.perf_counter() - t0, 2))
    return {"records": 1_000_000, "file_mb": round(path.stat().st_size / 2**20), "wall_s": times,
            "median_s": sorted(times)[len(times) // 2]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-score", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [throughput(args.samples, args.latency, args.concurrency, Path(tmp) / f"r{i}") for i in range(args.repeats)]
        score = None if args.skip_score else score_million(Path(tmp), args.repeats)
    print(json.dumps({"throughput": runs, "score": score}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
