"""A real `transformers serve` with the tiny model, started and stopped by the suite."""

from __future__ import annotations

import os
import socket

import pytest

from plumbing.launch.server import LocalServer, ServerStartError, is_healthy
from plumbing.llm.openai_http import OpenAIHTTPBackend
from plumbing.llm.types import ChatRequest, SamplingParams

pytestmark = pytest.mark.integration


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_32_chat_requests_through_a_real_server_then_it_is_stopped(tiny_model, tmp_path):
    srv = LocalServer("transformers", str(tiny_model), log_path=tmp_path / "serve.log", startup_timeout_s=180)
    with srv:
        pid, port = srv.pid, srv.port
        assert is_healthy(srv.root_url)
        backend = OpenAIHTTPBackend(srv.base_url, srv.served_model, concurrency=8, timeout_s=60)
        reqs = [ChatRequest.of([{"role": "user", "content": f"Question {i}: what is {i} + {i}?"}],
                               SamplingParams(temperature=0.8, max_tokens=12, seed=i)) for i in range(32)]
        results = backend.complete(reqs)
        backend.close()
    assert [r.error for r in results] == [None] * 32
    assert all(isinstance(r.text, str) for r in results) and any(r.text for r in results)
    assert all(r.completion_tokens and r.completion_tokens <= 12 for r in results)
    # stopped: the process is gone and the port is closed
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not _port_open(port) and srv.pid is None


def test_a_server_that_cannot_start_raises_with_its_log_and_leaves_nothing_behind(tmp_path):
    srv = LocalServer("transformers", str(tmp_path / "no-such-model"), log_path=tmp_path / "serve.log",
                      startup_timeout_s=120)
    with pytest.raises(ServerStartError) as err:
        srv.start()
    assert "exited with code" in str(err.value) or "not healthy" in str(err.value)
    assert srv.proc is None
