"""AIME scoring on its usual terms: k sampled answers per problem (distinct seeds), avg@k and
pass@k (Chen et al.'s unbiased estimator), each with a bootstrap interval over problems;
sampling k answers greedily is refused; the AIME tasks' settings as the suite runs them."""

from __future__ import annotations

import json
import re
from math import comb

import pytest

from downstream_eval.tasks import Doc, Grade, TaskConfig
from downstream_eval.tasks.math_answer import MathTask
from genrm.metrics import mean_ci
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.config.validate import ConfigError
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.integration
JUDGE = ["llm@judge=openai", "judge.model=m", "judge.base_url=http://127.0.0.1:9/v1"]


def _grades(correct, n):
    return [Grade(1.0, "x", "correct")] * correct + [Grade(0.0, "y", "wrong")] * (n - correct)


def test_avg_at_k_and_pass_at_k_by_hand():
    """3 problems x 4 samples, right 4, 1 and 0 times. avg@4 = (4/4 + 1/4 + 0/4) / 3 = 5/12;
    pass@2 per problem = 1 - C(n-c, 2)/C(n, 2): 1, 1 - C(3,2)/C(4,2) = 1/2, 0, mean 1/2."""
    task = MathTask(TaskConfig(name="t", domain="stem", n_samples=4, pass_k=2))
    s = task.summarize([_grades(4, 4), _grades(1, 4), _grades(0, 4)])
    assert s["score"] == s["avg@4"] == pytest.approx(5 / 12)
    assert s["pass@2"] == pytest.approx((1 + (1 - comb(3, 2) / comb(4, 2)) + 0) / 3) == pytest.approx(0.5)
    assert s["pass@2_ci"] == pytest.approx(mean_ci([1.0, 0.5, 0.0]))
    assert s["score_ci"] == pytest.approx(mean_ci([1.0, 0.25, 0.0]))
    assert s["samples"] == 12 and s["n"] == 3
    one = MathTask(TaskConfig(name="t", domain="stem")).summarize([_grades(1, 1), _grades(0, 1)])
    assert "avg@1" not in one and not [k for k in one if k.startswith("pass@")]  # k=1: the score alone


def test_k_samples_per_problem_with_distinct_seeds_end_to_end(tmp_path):
    """The generator is asked k times per problem, seed+0 .. seed+k-1; the answer depends on
    the seed: problem 1 right at every seed, problem 2 at seed 10 only, problem 3 never.
    avg@4 = (1 + 1/4 + 0) / 3, pass@4 = (1 + 1 + 0) / 3."""
    golds = {"divisors": "56", "Simplify": "x+1", "coin": "\\frac{1}{2}"}
    seen = []

    def responder(body):
        problem = body["messages"][-1]["content"]
        key = next(k for k in golds if k in problem)
        seen.append((key, body.get("seed")))
        right = key == "divisors" or (key == "Simplify" and body.get("seed") == 10)
        return f"Thinking. \\boxed{{{golds[key] if right else '7'}}}"

    with LoopbackServer(responder=responder) as srv:
        obj, cfg = finalize(*compose("downstream_eval", [
            "~suite", "task=[smoke_math]", "tasks.smoke_math.n_samples=4", "tasks.smoke_math.pass_k=4",
            "tasks.smoke_math.sampling.temperature=0.6", "tasks.smoke_math.sampling.seed=10",
            "llm@generator=openai", f"generator.base_url={srv.base_url}", "generator.model=policy",
            f"output_dir={tmp_path}"]))
        summary = execute("downstream_eval", obj, cfg)
    assert sorted(seen) == sorted((k, 10 + i) for k in golds for i in range(4))  # distinct seeds per sample
    s = summary["tasks"]["smoke_math"]
    assert s["score"] == s["avg@4"] == pytest.approx((1 + 0.25 + 0) / 3)
    assert s["pass@4"] == pytest.approx(2 / 3) and s["samples"] == 12
    assert s["pass@4_ci"] == pytest.approx(mean_ci([1.0, 1.0, 0.0]))
    rows = [json.loads(x) for x in (tmp_path / "smoke_math" / "samples.jsonl").read_text().splitlines()]
    assert sorted(r["sample"] for r in rows if r["id"] == "smoke-math-2") == [0, 1, 2, 3]


def test_the_aime_tasks_sample_as_the_suite_reports(tmp_path):
    obj, _ = compose("downstream_eval", ["suite=ralign_paper", f"output_dir={tmp_path}", *JUDGE],
                     validate_config=False)
    for name in ("aime24", "aime25"):
        t = obj.tasks[name]
        s = t.sampling.over(obj.generator.sampling)
        assert (t.n_samples, t.pass_k) == (16, 16)
        assert (s.temperature, s.top_p, s.seed, s.max_tokens) == (0.6, 0.95, 0, 32768)


def test_k_greedy_samples_are_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        compose("downstream_eval", ["~suite", "task=[smoke_math]", "tasks.smoke_math.n_samples=4",
                                    f"output_dir={tmp_path}"])  # the stage's generator: temperature 0
    problems = dict(err.value.problems)
    assert re.search(r"4 samples at temperature 0 .* tasks\.smoke_math\.sampling\.temperature",
                     problems["tasks.smoke_math.n_samples"])
    # the AIME tasks carry their own sampling: fine with any generator; one greedy sample is too
    compose("downstream_eval", ["~suite", "task=[aime24,smoke_math]", f"output_dir={tmp_path}"])
    # grading given predictions samples nothing: no refusal
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"task_id": "smoke-math-1", "output": "\\boxed{56}"}) + "\n")
    compose("downstream_eval", ["~suite", "task=[smoke_math]", "tasks.smoke_math.n_samples=4",
                                f"predictions={preds}", f"output_dir={tmp_path}"])


def test_a_doc_graded_k_times_keeps_each_sample(tmp_path):
    task = MathTask(TaskConfig(name="t", domain="stem", n_samples=2), {"workers": 1})
    [[a, b]] = task.grade([(Doc("d", [], "56"), ["\\boxed{56}", "\\boxed{55}"])])
    assert (a.verdict, b.verdict) == ("correct", "wrong")
