"""The reward phase of one policy-training step with a pairwise GenRM reward, against a
loopback GenRM of fixed latency L and at most C calls in flight.

Each rollout is judged against its reference in both orders: 2 GenRM calls per rollout.
- OpenRLHF path: the generated reward module (preset policy_ppo_qwen3_8b, dry run), loaded
  by path and called once per rollout from 32 threads, as OpenRLHF's vLLM actors do.
- local path: the TRL adapter, one call for the whole batch.
The ideal is calls * L / C.

    python benchmarks/policy_reward_phase.py [--rollouts 512] [--latency 0.25] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_client_throughput import start_server  # noqa: E402

from plumbing.config.hydra_app import compose, execute, finalize  # noqa: E402


def calls_on(url: str) -> int:
    with urllib.request.urlopen(url[: -len("/v1")] + "/stats") as r:
        return json.load(r)["chat_requests"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rollouts", type=int, default=512)
    p.add_argument("--latency", type=float, default=0.25)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--threads", type=int, default=32)
    args = p.parse_args()
    report = {"rollouts": args.rollouts, "latency_s": args.latency, "concurrency": args.concurrency}
    with tempfile.TemporaryDirectory() as tmp:
        obj, cfg = finalize(*compose("policy_train", [
            "experiment=policy_ppo_qwen3_8b", "dry_run=true", f"output_dir={tmp}", "data=smoke_prompts",
            "genrm.model=genrm", f"genrm.concurrency={args.concurrency}"]))
        prepared = execute("policy_train", obj, cfg)
        labels = [json.loads(line)["label"] for line in Path(prepared["dataset"]).open()]
        proc, url = start_server(args.latency, args.concurrency, "genrm.testing:rule_responder")
        try:
            Path(prepared["reward_module"]).with_name("genrm_endpoint").write_text(url)
            spec = importlib.util.spec_from_file_location("reward_func", prepared["reward_module"])
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            prompt = "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"
            module.reward_func([prompt + "warm-up"], [prompt], [labels[0]])
            rollouts = [(f"response {k} " + ("<<good>>" if k % 3 == 0 else "plain"), labels[k % len(labels)])
                        for k in range(args.rollouts)]
            before, t0 = calls_on(url), time.perf_counter()
            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(lambda r: module.reward_func([prompt + r[0]], [prompt], [r[1]]), rollouts))
            wall, calls = time.perf_counter() - t0, calls_on(url) - before
            ideal = calls * args.latency / args.concurrency
            report["openrlhf_reward_module"] = {"genrm_calls": calls, "calls_per_rollout": calls / args.rollouts,
                                                "ideal_s": round(ideal, 3), "wall_s": round(wall, 3),
                                                "ratio": round(ideal / wall, 3), "threads": args.threads}

            from plumbing.llm.openai_http import OpenAIHTTPBackend
            from plumbing.llm.types import SamplingParams
            from policy_rlhf.reward import PairwiseReward, PairwiseRewardConfig
            from policy_rlhf.training import TRLPairwiseReward

            backend = OpenAIHTTPBackend(url, "genrm", concurrency=args.concurrency)
            adapter = TRLPairwiseReward(PairwiseReward(PairwiseRewardConfig(), backend, SamplingParams(max_tokens=64)), 64)
            ctx = [{"role": "user", "content": "q"}]
            batch = [(ctx, [{"role": "assistant", "content": f"local {k} " + r[0]}]) for k, r in enumerate(rollouts)]
            before, t0 = calls_on(url), time.perf_counter()
            adapter([b[0] for b in batch], [b[1] for b in batch], ["a reference"] * len(batch), ["g"] * len(batch))
            wall, calls = time.perf_counter() - t0, calls_on(url) - before
            ideal = calls * args.latency / args.concurrency
            report["local_adapter"] = {"genrm_calls": calls, "ideal_s": round(ideal, 3), "wall_s": round(wall, 3),
                                       "ratio": round(ideal / wall, 3)}
            backend.close()
        finally:
            proc.terminate()
            proc.wait(10)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
