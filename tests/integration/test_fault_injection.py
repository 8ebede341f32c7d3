"""The HTTP backend against a real loopback server that fails on purpose: every request ends
as a success or a typed failure, none raises, and the counts are exact."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from plumbing.llm.openai_http import OpenAIHTTPBackend
from plumbing.llm.types import ChatRequest, FailureKind
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.integration

# marker -> (how many requests carry it, expected outcome, attempts each request makes)
MIX = {
    "": (100, None, 1),
    "[fault:500]": (20, FailureKind.SERVER_ERROR, 3),
    "[fault:500x2]": (20, None, 3),
    "[fault:429x1]": (10, None, 2),
    "[fault:hang]": (10, FailureKind.TIMEOUT, 3),
    "[fault:malformed]": (20, FailureKind.MALFORMED, 3),
    "[fault:nochoices]": (5, FailureKind.MALFORMED, 3),
    "[fault:drop]": (10, FailureKind.CONNECTION, 3),
    "[fault:400]": (5, FailureKind.CLIENT_ERROR, 1),
}


def _requests():
    reqs, expect = [], []
    for marker, (count, outcome, attempts) in MIX.items():
        for i in range(count):
            reqs.append(ChatRequest.of([{"role": "user", "content": f"{marker} item {i}"}]))
            expect.append((outcome, attempts))
    return reqs, expect


def test_every_request_ends_as_success_or_typed_failure_with_exact_counts():
    reqs, expect = _requests()
    with LoopbackServer(latency_s=0.005) as srv:
        backend = OpenAIHTTPBackend(srv.base_url, "m", concurrency=32, timeout_s=2.0, max_retries=2,
                                    backoff_initial_s=0.01, backoff_max_s=0.02)
        results = backend.complete(reqs)
        backend.close()
        server_calls = srv.chat_requests
    assert len(results) == len(reqs)
    for req, res, (outcome, attempts) in zip(reqs, results, expect):
        assert res.error is outcome, (req.messages[0]["content"], res.detail)
        assert res.attempts == attempts, req.messages[0]["content"]
        if outcome is None:
            assert res.text == f"echo: {req.messages[0]['content']}"
    failures = Counter(r.error.value for r in results if r.error)
    assert failures == {"server_error": 20, "timeout": 10, "malformed_response": 25, "connection": 10,
                        "client_error": 5}
    assert sum(r.ok for r in results) == 130
    assert server_calls == sum(count * attempts for count, _, attempts in MIX.values())
    stats = backend.stats.as_dict()
    assert stats["succeeded"] == 130 and stats["failed"] == 70 and stats["failures"] == dict(failures)


def test_concurrency_bound_holds_across_threads_sharing_one_backend():
    with LoopbackServer(latency_s=0.02) as srv:
        backend = OpenAIHTTPBackend(srv.base_url, "m", concurrency=8, max_retries=0)
        out: dict = {}

        def worker(t: int) -> None:  # e.g. OpenRLHF calls reward_func from many threads
            reqs = [ChatRequest.of([{"role": "user", "content": f"t{t} r{i}"}]) for i in range(15)]
            out[t] = [r.text for r in backend.complete(reqs)]

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(12)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        backend.close()
        assert srv.max_seen_inflight == 8  # the bound is reached and never passed
    for t in range(12):
        assert out[t] == [f"echo: t{t} r{i}" for i in range(15)]  # each thread gets its own answers


def test_server_down_is_a_connection_failure_not_an_exception():
    from plumbing.launch.server import free_port

    backend = OpenAIHTTPBackend(f"http://127.0.0.1:{free_port()}/v1", "m", max_retries=1,
                                backoff_initial_s=0.01)
    res = backend.complete([ChatRequest.of([{"role": "user", "content": "anyone?"}])])
    backend.close()
    assert res[0].error is FailureKind.CONNECTION and res[0].attempts == 2
