"""The failure budget: a judge that fails on most calls stops training (local and in
OpenRLHF's reward function) instead of feeding it failure rewards; one failure does not."""

from __future__ import annotations

import pytest

from plumbing.errors import RunFailed
from plumbing.failures import MIN_CALLS, FailureGuard, over_budget
from plumbing.llm.types import ChatRequest, ChatResult, FailureKind, LLMBackend


class Flaky(LLMBackend):
    """Fails the requests whose text says so: a stand-in for a judge server's answers."""

    model_id = "flaky"

    def _complete(self, requests, on_result, progress):
        out = []
        for i, r in enumerate(requests):
            res = (ChatResult.failure(FailureKind.SERVER_ERROR, "injected") if "fail" in r.messages[-1]["content"]
                   else ChatResult(text="ok", finish_reason="stop"))
            on_result(i, res)
            out.append(res)
        return out


def ask(backend, text, n=1):
    return backend.complete([ChatRequest.of([{"role": "user", "content": text}]) for _ in range(n)])


def test_over_budget_names_the_role_and_the_counts():
    assert over_budget({"genrm": {"requests": 100, "failed": 5}}, 0.05) == []
    assert over_budget({"genrm": {"requests": 100, "failed": 6}, "metarm": {"requests": 0, "failed": 0}}, 0.05) == [
        "genrm: 6 of 100 calls failed (6.0% > max_failure_rate=0.05)"]


def test_the_guard_waits_for_enough_calls_then_stops_a_failing_judge():
    guard = FailureGuard(Flaky(), "genrm", 0.05)
    ask(guard, "fail")  # one early failure: not yet a rate
    ask(guard, "fine", MIN_CALLS - 2)
    with pytest.raises(RunFailed, match=r"genrm: 2 of 20 calls failed"):
        ask(guard, "fail")  # the 20th result makes 2/20 = 10 %
    healthy = FailureGuard(Flaky(), "genrm", 0.05)
    ask(healthy, "fail")
    assert len(ask(healthy, "fine", 5 * MIN_CALLS)) == 5 * MIN_CALLS  # 1 in 101: under budget, goes on


def test_a_judge_that_fails_late_in_a_long_run_stops_it_soon():
    from plumbing.failures import WINDOW

    guard = FailureGuard(Flaky(), "genrm", 0.05)
    for _ in range(50):
        ask(guard, "fine", 100)  # 5000 healthy calls first
    late = 0
    with pytest.raises(RunFailed):
        while late < 1000:
            ask(guard, "fail")
            late += 1
    assert late <= 0.05 * WINDOW + 1  # not ~250 more failures, as a rate over the whole run would allow


def test_openrlhf_reward_func_stops_on_the_budget_but_not_on_one_error():
    from plumbing.engines.remote import Lazy, StopTraining, reward_function

    class Scorer:
        def __init__(self, error):
            self.error = error

        def score(self, rollouts):
            raise self.error

    func = reward_function(Lazy(lambda: Scorer(ValueError("one bad call"))), lambda r, label: r, ["x"], 0.25)
    assert func(["q a"], ["q"], ["l"])["rewards"] == 0.25
    func = reward_function(Lazy(lambda: Scorer(RunFailed("genrm over budget"))), lambda r, label: r, ["x"], 0.25)
    # not an Exception: OpenRLHF's `except Exception` around reward functions must not swallow it
    with pytest.raises(StopTraining, match="genrm over budget") as stop:
        func(["q a"], ["q"], ["l"])
    assert not isinstance(stop.value, Exception)


def test_a_judge_that_cannot_be_built_stops_training_at_once_every_time():
    """The key's variable unset on the node, no endpoint: not a failure reward per rollout
    (the guard never sees a backend that was never built), and not a new attempt per call."""
    from plumbing.config.validate import ConfigError
    from plumbing.engines.remote import Lazy, StopTraining, reward_function

    builds = []

    def build():
        builds.append(1)
        raise ConfigError([("api_key_env", "environment variable JUDGE_KEY is not set")])

    func = reward_function(Lazy(build), lambda r, label: r, ["x"], 0.25)
    for _ in range(3):
        with pytest.raises(StopTraining, match="JUDGE_KEY"):
            func(["q a"], ["q"], ["l"])
    assert len(builds) == 1
