"""MultiChallenge on its published protocol (ScaleAI's evaluator and result parser): the judge
sees the response and the rubric question only; an attempt passes when its verdict is the
PASS_CRITERIA; a conversation passes when any attempt does; the score is the mean of the axis
pass rates. Hand-made judge replies on a real loopback server, scores worked out by hand."""

from __future__ import annotations

import json
import re

import pytest

from downstream_eval.tasks import Grade, TaskConfig
from downstream_eval.tasks.multichallenge import MultiChallengeTask, parse_verdict, stratified_interval
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.integration

# (id, axis, expected verdict, the policy's response, the judge's hand-written reply, passes)
ITEMS = [
    ("c1", "INSTRUCTION_RETENTION", "YES", "One sentence [r1].", "It is one sentence.\nVERDICT: YES", True),
    ("c2", "INSTRUCTION_RETENTION", "YES", "Two. Sentences [r2].", '{"reasoning": "two", "verdict": "NO"}', False),
    ("c3", "INSTRUCTION_RETENTION", "YES", "Fine [r3].", "Looks right.\n**Verdict:** yes", True),
    ("c4", "INFERENCE_MEMORY", "NO", "Peanut sauce [r4].", "<think>hmm YES</think>It uses peanuts.\nVERDICT: NO", True),
    ("c5", "INFERENCE_MEMORY", "YES", "Something [r5].", "I cannot tell.", False),  # no verdict: fails
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(tmp_path, data, preds, responder, *extra):
    """downstream_eval on MultiChallenge with its judge on a real loopback server."""
    with LoopbackServer(responder=responder) as srv:
        obj, cfg = finalize(*compose("downstream_eval", [
            "~suite", "task=[multichallenge]", f"tasks.multichallenge.path={data}", f"predictions={preds}",
            f"output_dir={tmp_path / 'out'}", "llm@judge=openai", f"judge.base_url={srv.base_url}",
            "judge.model=mc-judge", "judge.max_retries=0", *extra]))
        return execute("downstream_eval", obj, cfg)["tasks"]["multichallenge"]


def test_scores_by_the_benchmark_s_protocol_end_to_end(tmp_path):
    """Axis scores 2/3 (instruction retention) and 1/2 (inference memory); the score is their
    mean 7/12, not the 3/5 of all conversations."""
    data = _write(tmp_path / "mc.jsonl", [
        {"QUESTION_ID": i, "AXIS": axis, "PASS_CRITERIA": exp, "TARGET_QUESTION": f"Criterion of {i}?",
         "CONVERSATION": [{"role": "user", "content": f"Secret turn of {i}"}]} for i, axis, exp, *_ in ITEMS])
    preds = _write(tmp_path / "preds.jsonl", [{"task_id": i, "output": resp} for i, _, _, resp, _, _ in ITEMS])
    replies = {re.search(r"\[(r\d)\]", resp).group(1): reply for _, _, _, resp, reply, _ in ITEMS}
    prompts = []

    def judge(body):
        [msg] = body["messages"]  # one user message, no system prompt
        prompts.append(msg["content"])
        return replies[re.search(r"\[(r\d)\]", msg["content"]).group(1)]

    s = _run(tmp_path, data, preds, judge, "max_failure_rate=0.5")
    assert s["by_axis"] == pytest.approx({"INFERENCE_MEMORY": 1 / 2, "INSTRUCTION_RETENTION": 2 / 3})
    assert s["score"] == pytest.approx((2 / 3 + 1 / 2) / 2) and s["pass_rate_micro"] == pytest.approx(3 / 5)
    assert s["verdicts"] == {"pass": 3, "fail": 1, "judge_parse_fail": 1} and s["judge_parse_fail"] == 1
    assert s["score_ci"][0] <= s["score"] <= s["score_ci"][1]
    assert s["judge"] == "openai:mc-judge" and s["judge_prompt"].startswith("multichallenge@")
    # the judge saw each response and its criterion, never the conversation
    assert all("Secret turn" not in p for p in prompts) and any("Criterion of c1?" in p for p in prompts)
    assert len(prompts) == 5 + 2  # c5 asked again twice (parse_retries) before it fails


def _g(ok, axis):
    return Grade(1.0 if ok else 0.0, "YES", "pass" if ok else "fail", {"category": axis, "judge_status": "ok"})


def test_a_conversation_passes_when_any_attempt_passes():
    """Two attempts each: c1 [fail, pass] passes, c2 [fail, fail] fails (axis A: 1/2), c3
    [pass, pass] passes (axis B: 1): score 3/4, where the mean over attempts would be 1/2."""
    task = MultiChallengeTask(TaskConfig(name="mc", domain="general", n_samples=2))
    s = task.summarize([[_g(False, "A"), _g(True, "A")], [_g(False, "A"), _g(False, "A")],
                        [_g(True, "B"), _g(True, "B")]])
    assert s["by_axis"] == {"A": 0.5, "B": 1.0} and s["score"] == pytest.approx(0.75)
    assert s["conversations_passed"] == 2


def test_the_interval_resamples_within_axes():
    """Axis A [1, 0], axis B [1]: B's mean is always 1, A's is 0, 1/2 or 1 (probabilities 1/4,
    1/2, 1/4), so the score is 1/2, 3/4 or 1: its 2.5% and 97.5% points are 1/2 and 1."""
    assert stratified_interval([1, 0, 1], ["A", "A", "B"], 4000, 0, 0.05) == pytest.approx([0.5, 1.0])
    assert stratified_interval([1, 1, 0], ["A", "A", "B"], 500, 0, 0.05) == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize("text, verdict", [
    ("Reasoning.\nVERDICT: YES", "YES"),
    ("verdict: no", "NO"),
    ('{"reasoning": "r", "verdict": "YES"}', "YES"),
    ("First VERDICT: NO, on reflection VERDICT: YES", "YES"),  # the last one
    ("<think>VERDICT: YES</think>\nVERDICT: NO", "NO"),  # thinking is not the verdict
    ("So the answer is \\boxed{NO}", "NO"),  # the generic rubric reading as a fallback
    ("I am not sure.", None),
])
def test_judge_verdict_parsing(text, verdict):
    assert parse_verdict(text) == verdict


def test_a_conversation_without_a_response_fails_in_its_own_axis(tmp_path):
    """c3 has no prediction: the benchmark records it as verdict NO, failed, in its axis
    (INFERENCE_MEMORY 1/2, INSTRUCTION_RETENTION 1: score 3/4). Without the axis on the
    no-output grade it formed an axis of its own ("all": 0) and the score fell to 2/3."""
    items = [("c1", "INSTRUCTION_RETENTION"), ("c2", "INFERENCE_MEMORY"), ("c3", "INFERENCE_MEMORY")]
    data = _write(tmp_path / "mc.jsonl", [
        {"QUESTION_ID": i, "AXIS": axis, "PASS_CRITERIA": "YES", "TARGET_QUESTION": f"Criterion of {i}?",
         "CONVERSATION": [{"role": "user", "content": f"Turn of {i}"}]} for i, axis in items])
    preds = _write(tmp_path / "preds.jsonl", [{"task_id": i, "output": f"Answer {i}."} for i in ("c1", "c2")])
    s = _run(tmp_path, data, preds, lambda body: "Met.\nVERDICT: YES", "allow_missing=true")
    assert s["by_axis"] == pytest.approx({"INFERENCE_MEMORY": 1 / 2, "INSTRUCTION_RETENTION": 1.0})
    assert s["score"] == pytest.approx(3 / 4) and s["pass_rate_micro"] == pytest.approx(2 / 3)
