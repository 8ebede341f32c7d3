"""Throughput of the OpenAI-HTTP backend against a server-bound ideal.

A loopback OpenAI-compatible server (its own process, so it does not share the client's
GIL) answers each request after a fixed delay L with at most C requests in flight. N
requests through the backend at concurrency C cannot finish faster than N*L/C; the ratio
ideal/measured says how much of that the client achieves (1.0 = no client overhead).

    python benchmarks/llm_client_throughput.py                 # C in 8, 64, 256
    python benchmarks/llm_client_throughput.py --concurrency 64 --latency 0.5 --requests 2000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import urllib.request

from plumbing.launch.server import is_healthy
from plumbing.llm.openai_http import OpenAIHTTPBackend
from plumbing.llm.types import ChatRequest, SamplingParams

# (concurrency, latency s, requests): each case is ~4 s of server-bound ideal time, long
# enough that start-up effects are small, with a latency a judge model plausibly has.
DEFAULT_CASES = [(8, 0.05, 640), (64, 0.25, 1024), (256, 1.0, 1024)]


def start_server(latency: float, max_inflight: int, responder: str | None = None) -> tuple[subprocess.Popen, str]:
    """A loopback server in its own process; returns (process, base URL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "plumbing.testing.loopback", "--latency", str(latency),
         "--max-inflight", str(max_inflight), *(["--responder", responder] if responder else [])],
        stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline().strip()  # "listening on http://127.0.0.1:PORT/v1"
    base_url = line.rsplit(" ", 1)[-1]
    for _ in range(100):
        if is_healthy(base_url[: -len("/v1")]):
            break
        time.sleep(0.05)
    return proc, base_url


def run_case(concurrency: int, latency: float, n: int, repeats: int) -> dict:
    proc, base_url = start_server(latency, concurrency)
    try:
        backend = OpenAIHTTPBackend(base_url, "loopback", concurrency=concurrency, timeout_s=60, max_retries=0)
        warm = [ChatRequest.of([{"role": "user", "content": f"warm {i}"}]) for i in range(concurrency)]
        backend.complete(warm)  # open the connections once, as a long run would have them
        ratios, times = [], []
        for r in range(repeats):
            reqs = [ChatRequest.of([{"role": "user", "content": f"q{r}-{i}"}], SamplingParams(max_tokens=64))
                    for i in range(n)]
            t0 = time.perf_counter()
            res = backend.complete(reqs)
            dt = time.perf_counter() - t0
            assert all(x.ok for x in res), [x.detail for x in res if not x.ok][:3]
            times.append(dt)
            ratios.append(n * latency / concurrency / dt)
        with urllib.request.urlopen(base_url[: -len("/v1")] + "/stats") as resp:
            stats = json.load(resp)
        backend.close()
    finally:
        proc.terminate()
        proc.wait(10)
    ratios.sort()
    return {"concurrency": concurrency, "latency_s": latency, "requests": n,
            "ideal_s": round(n * latency / concurrency, 3), "measured_s": [round(t, 3) for t in times],
            "ratio_median": round(ratios[len(ratios) // 2], 3), "ratio_min": round(ratios[0], 3),
            "server_max_inflight": stats["max_inflight_seen"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, action="append")
    parser.add_argument("--latency", type=float)
    parser.add_argument("--requests", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()
    cases = DEFAULT_CASES
    if args.concurrency:
        cases = [(c, args.latency or 0.25, args.requests or 1024) for c in args.concurrency]
    rows = [run_case(c, l, n, args.repeats) for c, l, n in cases]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print("| C | L (s) | N | ideal N*L/C (s) | measured (s) | ratio (median of runs) | min ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['concurrency']} | {r['latency_s']} | {r['requests']} | {r['ideal_s']} | "
              f"{', '.join(map(str, r['measured_s']))} | {r['ratio_median']} | {r['ratio_min']} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
