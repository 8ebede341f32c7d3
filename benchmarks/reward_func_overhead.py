"""The OpenRLHF reward module of GenRM training: CPU time spent in the suite's own code per
reward_func call, and MetaRM calls saved by label gating and caching on a GRPO batch.

A loopback MetaRM (own process, fixed latency) answers as the rule judge; the generated
reward module (the ralign reward of preset genrm_ralign_qwen3_8b, dry run) is loaded by
path as OpenRLHF loads it, and called once per sample from 32 threads. CPU time is this
process's (all threads: parsing, prompts, hashing, the cache, the HTTP client); the server's
work is in the other process.

    python benchmarks/reward_func_overhead.py [--prompts 64] [--samples 8] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_client_throughput import start_server  # noqa: E402

from plumbing.config.hydra_app import compose, execute, finalize  # noqa: E402


def prepare(tmp: Path, prompts: int) -> dict:
    rng = random.Random(0)
    data = tmp / "data.jsonl"
    with open(data, "w") as fh:
        for i in range(prompts):
            gt = rng.choice("AB")
            fh.write(json.dumps({"id": i, "conversations": [{"role": "user", "content": f"question {i} " + "context " * 40}],
                                 "response_A": "answer A " * 60, "response_B": "answer B " * 60, "gt_label": gt,
                                 "gt_judgment": f"{gt} is better: #fact", "source": {"subset": "bench"}}) + "\n")
    obj, cfg = finalize(*compose("genrm_train", ["experiment=genrm_ralign_qwen3_8b", "dry_run=true",
                                                 f"output_dir={tmp / 'run'}", f"data.ralign_rl.path={data}",
                                                 "swap_balance=false", "metarm.concurrency=64"]))
    return execute("genrm_train", obj, cfg)


def rollouts(labels, samples: int, seed: int = 0):
    """A GRPO batch: per prompt `samples` completions drawn from 4 distinct ones (sampling
    repeats itself), 3 of them with the right verdict, 1 wrong; 5% unparsable."""
    rng = random.Random(seed)
    out = []
    for label in labels:
        gt = json.loads(label)["gt_label"]
        wrong = "B" if gt == "A" else "A"
        pool = [f"Reasoning variant {k}: the better answer is right because of #fact. " * 8 + f"\\boxed{{{gt}}}"
                for k in range(3)] + ["It looks nicer. " * 8 + f"\\boxed{{{wrong}}}"]
        for _ in range(samples):
            out.append((rng.choice(pool) if rng.random() > 0.05 else "I am not sure.", label))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--threads", type=int, default=32)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare(Path(tmp), args.prompts)
        module_path = Path(prepared["reward_module"])
        labels = [json.loads(line)["label"] for line in Path(prepared["dataset"]).open()]
        batch = rollouts(labels, args.samples)
        proc, url = start_server(args.latency, 64, "genrm.testing:rule_responder")
        try:
            module_path.with_name("metarm_endpoint").write_text(url)
            spec = importlib.util.spec_from_file_location("reward_func", str(module_path))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            prompt = "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"
            module.reward_func([prompt + "warm \\boxed{A}"], [prompt], [labels[0]])  # build the reward once
            with urllib.request.urlopen(url[: -len("/v1")] + "/stats") as r:
                before = json.load(r)["chat_requests"]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            with ThreadPoolExecutor(args.threads) as pool:
                results = list(pool.map(lambda x: module.reward_func([prompt + x[0] + "<|im_end|>"], [prompt], [x[1]]),
                                        batch))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            with urllib.request.urlopen(url[: -len("/v1")] + "/stats") as r:
                calls = json.load(r)["chat_requests"] - before
        finally:
            proc.terminate()
            proc.wait(10)
    n = len(batch)
    label_correct = sum(r["extra_logs"]["label_correct"] for r in results)
    report = {
        "rollouts": n, "prompts": args.prompts, "samples_per_prompt": args.samples, "threads": args.threads,
        "cpu_ms_per_call": round(1000 * cpu / n, 3), "wall_s": round(wall, 2),
        "metarm_calls_naive": n, "label_correct": int(label_correct), "metarm_calls_sent": calls,
        "saved_by_gating": round(1 - label_correct / n, 3), "saved_total": round(1 - calls / n, 3),
        "reward_errors": sum(r["extra_logs"]["reward_error"] for r in results),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
