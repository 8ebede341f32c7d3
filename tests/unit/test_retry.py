"""Response classification and backoff of the HTTP backend (no network)."""

from __future__ import annotations

import json
import random

import pytest

from plumbing.llm.openai_http import OpenAIHTTPBackend, parse_response
from plumbing.llm.types import RETRYABLE, ChatResult, FailureKind


def _ok(message: dict) -> str:
    return json.dumps({"choices": [{"message": message, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 2}})


@pytest.mark.parametrize(
    "status,body,header,kind,wait",
    [
        (500, "boom", None, FailureKind.SERVER_ERROR, None),
        (503, "busy", "2", FailureKind.SERVER_ERROR, 2.0),
        (429, "slow", "1.5", FailureKind.RATE_LIMITED, 1.5),
        (429, "slow", "Wed, 21 Oct 2099 07:28:00 GMT", FailureKind.RATE_LIMITED, None),
        (408, "late", None, FailureKind.TIMEOUT, None),
        (400, "context too long", None, FailureKind.CLIENT_ERROR, None),
        (401, "no key", None, FailureKind.CLIENT_ERROR, None),
        (200, '{"choices": [ {"message": ', None, FailureKind.MALFORMED, None),
        (200, '{"object": "x"}', None, FailureKind.MALFORMED, None),
        (200, '{"choices": []}', None, FailureKind.MALFORMED, None),
        (200, _ok({"content": 5}), None, FailureKind.MALFORMED, None),
    ],
)
def test_failures_are_classified(status, body, header, kind, wait):
    (got_kind, detail), got_wait = parse_response(status, body, header)
    assert got_kind is kind and got_wait == wait
    assert (kind in RETRYABLE) == (kind is not FailureKind.CLIENT_ERROR)


def test_success_keeps_reasoning_as_a_thinking_block():
    res = parse_response(200, _ok({"content": "\\boxed{A}", "reasoning_content": "A is right"}))
    assert isinstance(res, ChatResult) and res.ok
    assert res.text == "<think>\nA is right\n</think>\n\n\\boxed{A}"
    assert (res.prompt_tokens, res.completion_tokens, res.finish_reason) == (3, 2, "stop")
    plain = parse_response(200, _ok({"content": None}))
    assert plain.ok and plain.text == ""


def test_backoff_is_exponential_with_full_jitter_and_a_cap():
    b = OpenAIHTTPBackend("http://x/v1", "m", backoff_initial_s=0.5, backoff_max_s=4.0, rng=random.Random(0))
    for attempt, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delays = [b._backoff(attempt, None) for _ in range(300)]
        assert 0 <= min(delays) and max(delays) <= cap
        assert max(delays) > 0.8 * cap  # the whole interval is used (jitter), not a fixed delay
    assert b._backoff(0, 3.0) >= 3.0  # Retry-After is honoured...
    assert b._backoff(0, 999.0) <= 4.0  # ...up to the cap


def test_payload_carries_sampling_and_per_sample_seed():
    from plumbing.llm.types import ChatRequest, SamplingParams

    b = OpenAIHTTPBackend("http://x/v1", "served", chat_template_kwargs={"enable_thinking": False})
    req = ChatRequest.of([{"role": "user", "content": "hi"}],
                         SamplingParams(temperature=0.6, top_p=0.9, max_tokens=64, seed=10, stop=("</s>",)),
                         sample_index=3)
    body = b.payload(req)
    assert body == {"model": "served", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.6,
                    "top_p": 0.9, "max_tokens": 64, "seed": 13, "stop": ["</s>"],
                    "chat_template_kwargs": {"enable_thinking": False}}
    assert "secret" not in repr(OpenAIHTTPBackend("http://x/v1", "m", api_key="secret"))
