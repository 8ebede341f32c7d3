"""math-verify under a hard time limit: a pathological answer (a power tower sympy would
evaluate digit by digit, a factorial nest) is a counted timeout within a bounded wall time, the
grader's threads keep running meanwhile, the next answer is graded by a fresh worker, a worker
whose grader is gone ends by its own CPU limit, and timeouts are not cached."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from downstream_eval import math_verifier
from downstream_eval.tasks import Doc, TaskConfig
from downstream_eval.tasks.math_answer import MathTask
from plumbing.config.hydra_app import compose
from plumbing.config.validate import ConfigError

TOWER = "\\boxed{9^{9^{9^{9}}}}"  # 9^(9^387420489): hours of big-integer work holding the GIL
FACTORIALS = "\\boxed{((((10)!)!)!)!}"


def _task(**params):
    return MathTask(TaskConfig(name="t", domain="stem", params=params), {"workers": 2})


@pytest.mark.parametrize("output", [TOWER, FACTORIALS])
def test_a_pathological_answer_times_out_within_a_bounded_time(output):
    task = _task(timeout_s=1.5)
    started = time.monotonic()
    g = task.grade_one(Doc("d", [], "56"), output)
    elapsed = time.monotonic() - started
    assert g.verdict == "timeout" and g.score == 0.0 and "1.5s" in g.detail["error"]
    assert 1.5 <= elapsed < 15, elapsed  # the limit, plus at most a worker start
    # the killed worker is replaced: the next answer is graded
    assert task.grade_one(Doc("e", [], "\\frac{1}{2}"), "\\boxed{0.5}").verdict == "correct"


def test_the_grader_s_threads_run_while_a_check_overruns():
    """In-process, the power tower holds the GIL: no other thread of the grader would run."""
    task = _task(timeout_s=2)
    ticks, done = [0], threading.Event()

    def tick():
        while not done.is_set():
            ticks[0] += 1
            time.sleep(0.01)

    t = threading.Thread(target=tick)
    t.start()
    try:
        g = task.grade_one(Doc("d", [], "56"), TOWER)
    finally:
        done.set()
        t.join()
    assert g.verdict == "timeout" and ticks[0] > 50, ticks


def test_timeouts_are_counted_shown_and_not_cached():
    task = _task(timeout_s=1)
    grades = task.grade([(Doc("a", [], "56"), ["\\boxed{56}", TOWER]), (Doc("b", [], "3"), ["\\boxed{4}"])])
    assert [[g.verdict for g in gs] for gs in grades] == [["correct", "timeout"], ["wrong"]]
    s = task.summarize(grades)
    assert s["grade_timeout"] == 1 and s["verdicts"] == {"correct": 1, "timeout": 1, "wrong": 1}
    assert s["score"] == pytest.approx((0.5 + 0) / 2)
    assert not task.cacheable(grades[0][1]) and task.cacheable(grades[0][0]) and task.cacheable(grades[1][0])
    assert task.grading_identity()["params"]["timeout_s"] == 1  # another limit grades again


def test_a_worker_whose_grader_is_gone_ends_by_its_own_cpu_limit():
    """The grader that would kill an overrunning worker may itself be killed: the worker's
    RLIMIT_CPU (its CPU time so far + the check's limit + 2 s) ends it all the same."""
    w = math_verifier._Worker()
    try:
        started = time.monotonic()
        w.proc.stdin.write((json.dumps(["56", "9^{9^{9^{9}}}", 1]) + "\n").encode())
        w.proc.stdin.flush()
        assert w._line(60) == ""  # no reply: EOF, nobody killed it
        assert w.proc.wait(10) == -signal.SIGXCPU
        assert time.monotonic() - started < 20
    finally:
        w.kill()


def test_the_time_limit_must_be_positive():
    with pytest.raises(ConfigError) as err:
        compose("downstream_eval", ["~suite", "output_dir=/tmp/ralign-mv", "task=[smoke_math]",
                                    "tasks.smoke_math.params.timeout_s=0"])
    assert "must be > 0" in dict(err.value.problems)["tasks.smoke_math.params.timeout_s"]
