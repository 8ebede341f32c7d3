"""Preflight: check that a model answers through its configured backend before costly stages.

Materialises the model (a tiny model is built offline), opens the backend (starting and
stopping a local server when configured), sends a batch of chat prompts through the cache,
and reports successes, typed failures, retries, cache hits and latency. Fails (exit 2) when
fewer than ``min_success_rate`` of the requests succeed; the summary is written first.

    python -m plumbing.preflight llm=openai llm.base_url=http://node:8000/v1 llm.model=genrm
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List

from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import DataConfig, LLMConfig, ModelConfig, Problems, StageConfig, check_produces
from plumbing.data import DataFormat, chat_messages, load_data, require
from plumbing.errors import SuiteError
from plumbing.llm.registry import open_backend
from plumbing.llm.types import ChatRequest, SamplingParams
from plumbing.models import resolve_model
from plumbing.report import table
from plumbing.tracking import StageRun


@dataclass
class PreflightConfig(StageConfig):
    stage: str = "preflight"
    model: ModelConfig = field(default_factory=ModelConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    data: Dict[str, DataConfig] = field(default_factory=dict)
    n_requests: int = 32
    min_success_rate: float = 1.0

    def check(self) -> Problems:
        p = super().check()
        if self.n_requests < 1:
            p.append(("n_requests", "must be >= 1"))
        if not 0 <= self.min_success_rate <= 1:
            p.append(("min_success_rate", "must be in [0, 1]"))
        if not self.data:
            p.append(("data", "give at least one prompt set, e.g. data=preflight_prompts"))
        p += check_produces(self.data, "chat_prompts")
        return p


SCHEMA = PreflightConfig


class ChatPrompts(DataFormat):
    """Chat prompt sets: ``{"messages": [{role, content}, ...]}`` per record."""

    produces = "chat_prompts"  # convert() returns a list of chat messages

    def convert(self, rec: Dict[str, Any]) -> List[Dict[str, str]]:
        return chat_messages(require(rec, "messages", list))


def plan(cfg: PreflightConfig) -> Dict[str, Any]:
    """What the stage will do, without doing it (``dry_run=true``)."""
    step: Dict[str, Any] = {"model": cfg.model.path, "build_tiny_model": cfg.model.tiny is not None,
                            "backend": cfg.llm.label, "requests": cfg.n_requests,
                            "data": {n: d.path or d.hub_id for n, d in cfg.data.items()}}
    if cfg.llm.serve.launcher != "none":
        from plumbing.launch.server import LocalServer

        srv = LocalServer(cfg.llm.serve.launcher, cfg.llm.model, host=cfg.llm.serve.host,
                          device=cfg.llm.serve.device, extra_args=cfg.llm.serve.extra_args,
                          tensor_parallel_size=cfg.llm.tensor_parallel_size,
                          gpu_memory_utilization=cfg.llm.gpu_memory_utilization, dtype=cfg.llm.dtype)
        step["server_command"] = " ".join(srv.command(cfg.llm.serve.port or 0))
    else:
        step["base_url"] = cfg.llm.base_url
    return step


def run(cfg: PreflightConfig, tracker: StageRun) -> Dict[str, Any]:
    out = Path(cfg.output_dir)
    if cfg.dry_run:
        steps = plan(cfg)
        print("[preflight] dry run:\n" + "\n".join(f"  {k}: {v}" for k, v in steps.items()))
        return {"dry_run": True, "plan": steps}
    model_path = resolve_model(cfg.model, cfg.output_dir)
    llm = replace(cfg.llm, model=model_path) if cfg.llm.model == cfg.model.path else cfg.llm
    prompts: List[List[Dict[str, str]]] = []
    loads = {}
    for name, d in cfg.data.items():
        items, report = load_data(d)
        prompts += items
        loads[name] = report.as_dict()
    sampling = SamplingParams.from_config(llm.sampling)
    requests = [
        ChatRequest.of(prompts[i % len(prompts)], sampling, sample_index=i // len(prompts))
        for i in range(cfg.n_requests)
    ]
    print(f"[preflight] {cfg.n_requests} requests to the {llm.label} backend for {cfg.model.name}")
    with open_backend(llm, out, name="preflight") as backend:
        results = backend.complete(requests, progress=True)
        stats = backend.stats.as_dict()
        inner = getattr(backend, "inner", backend)
        stats["calls_sent"] = inner.stats.requests

    with open(out / "samples.jsonl", "w") as fh:
        for req, res in zip(requests, results):
            fh.write(json.dumps({"messages": list(req.messages), "sample_index": req.sample_index,
                                 "text": res.text, "error": res.error.value if res.error else None,
                                 "detail": res.detail, "attempts": res.attempts, "cached": res.cached,
                                 "latency_s": round(res.latency_s, 4)}) + "\n")
    latencies = sorted(r.latency_s for r in results if r.ok and not r.cached)
    ok = sum(r.ok for r in results)
    summary: Dict[str, Any] = {
        "model": cfg.model.name,
        "backend": llm.label,
        "requests": len(results),
        "succeeded": ok,
        "success_rate": ok / len(results),
        "failures": stats["failures"],
        "retries": stats["retries"],
        "cache_hits": stats["cache_hits"],
        "calls_sent": stats["calls_sent"],
        "latency_p50_s": statistics.median(latencies) if latencies else None,
        "latency_max_s": latencies[-1] if latencies else None,
        "data": loads,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    tracker.log_metrics({f"preflight/{k}": v for k, v in summary.items() if isinstance(v, (int, float))})
    tracker.log_artifact(out / "summary.json")
    tracker.log_artifact(out / "samples.jsonl")
    print(table(["requests", "succeeded", "failed", "retries", "cache hits", "calls sent", "p50 latency s"],
                [[summary["requests"], ok, len(results) - ok, summary["retries"], summary["cache_hits"],
                  summary["calls_sent"], summary["latency_p50_s"]]]))
    if summary["success_rate"] < cfg.min_success_rate:
        raise SuiteError(
            f"preflight: only {ok}/{len(results)} requests succeeded "
            f"(min_success_rate={cfg.min_success_rate}); failures: {stats['failures']}; see {out / 'samples.jsonl'}"
        )
    return summary


main = stage_main("preflight")

if __name__ == "__main__":
    main()
