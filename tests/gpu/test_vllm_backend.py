"""vLLM, in process and as `vllm serve`, with the tiny model (needs CUDA and the cluster extra)."""

from __future__ import annotations

import pytest

from plumbing.llm.types import ChatRequest, SamplingParams

pytestmark = pytest.mark.gpu
pytest.importorskip("vllm")


def _reqs(n):
    return [ChatRequest.of([{"role": "user", "content": f"q{i}"}], SamplingParams(temperature=0.0, max_tokens=8))
            for i in range(n)]


def test_in_process_vllm_generates_for_a_batch(tiny_model):
    from plumbing.llm.vllm_local import VLLMBackend

    with VLLMBackend(str(tiny_model), gpu_memory_utilization=0.3) as b:
        res = b.complete(_reqs(16))
    assert all(r.ok for r in res) and all(r.completion_tokens <= 8 for r in res)


def test_vllm_serve_through_the_http_backend(tiny_model, tmp_path):
    from plumbing.launch.server import LocalServer
    from plumbing.llm.openai_http import OpenAIHTTPBackend

    with LocalServer("vllm", str(tiny_model), device="cuda", gpu_memory_utilization=0.3,
                     log_path=tmp_path / "vllm.log", startup_timeout_s=900) as srv:
        with OpenAIHTTPBackend(srv.base_url, srv.served_model, concurrency=16) as b:
            res = b.complete(_reqs(32))
    assert all(r.ok for r in res)
