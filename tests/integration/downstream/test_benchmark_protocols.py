"""Arena-Hard-v2 and WildBench end to end through downstream_eval.run, with the suite's own task
YAMLs, graded predictions and a rule judge served over a real loopback HTTP server speaking the
OpenAI protocol; the numbers are worked out by hand from the protocols' definitions."""

from __future__ import annotations

import json
import re

import pytest

from downstream_eval.tasks.arena_hard import PROMPT_VERSION as ARENA_PROMPT
from downstream_eval.tasks.wildbench import PROMPT_VERSION as WB_PROMPT
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.data import InputError
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.integration


def _run(overrides):
    obj, cfg = finalize(*compose("downstream_eval", overrides))
    return execute("downstream_eval", obj, cfg)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _judge(url):
    return ["llm@judge=openai", f"judge.base_url={url}", "judge.model=rule-judge", "judge.max_retries=0"]


def _between(text, start, end):
    return re.search(re.escape(start) + r"\n(.*?)\n" + re.escape(end), text, re.S).group(1)


# ---------------------------------------------------------------------------- Arena-Hard-v2
SEEN = []


def arena_judge(body):
    """Five-level verdicts from markers: <<much>> significantly better, <<good>> slightly; a
    <<garbage>> answer gets no verdict; otherwise a tie."""
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    a = _between(user, "<assistant_A_answer>", "</assistant_A_answer>")
    b = _between(user, "<assistant_B_answer>", "</assistant_B_answer>")
    SEEN.append(("own answer first" if "write your own answer" in system else "compare", a, b))
    if "<<garbage>>" in a + b:
        return "I cannot tell."
    for mark, label in (("<<much>>", ">>"), ("<<good>>", ">")):
        if mark in a:
            return f"Reasoning...\nFinal verdict: [[A{label}B]]"
        if mark in b:
            return f"Reasoning...\nFinal verdict: [[B{label}A]]"
    return "About the same. [[A=B]]"


def _arena_data(tmp_path):
    questions = [("q1", "hard_prompt", "<<much>> mine"), ("q2", "hard_prompt", "mine"),
                 ("q3", "hard_prompt", "mine"), ("q4", "creative_writing", "<<good>> a poem"),
                 ("q5", "hard_prompt", "<<garbage>>")]
    baselines = {"q1": "theirs", "q2": "<<good>> theirs", "q3": "theirs", "q5": "theirs"}
    d = tmp_path / "arena-hard-v2.0"
    (d / "model_answer").mkdir(parents=True)
    _write(d / "question.jsonl", [{"uid": u, "category": c, "subcategory": c, "prompt": f"Question {u}?"}
                                  for u, c, _ in questions])
    answer = lambda uid, text, model: {"uid": uid, "model": model,  # noqa: E731
                                       "messages": [{"role": "user", "content": "?"},
                                                    {"role": "assistant", "content": {"answer": text}}]}
    _write(d / "model_answer" / "o3-mini-2025-01-31.jsonl", [answer(u, t, "o3-mini") for u, t in baselines.items()])
    _write(d / "model_answer" / "gemini-2.0-flash-001.jsonl", [answer("q4", "a poem", "gemini")])
    preds = _write(tmp_path / "preds.jsonl", [{"task_id": u, "output": o} for u, _, o in questions])
    return preds


def test_arena_hard_v2_end_to_end(tmp_path, monkeypatch):
    """Hard prompts (the headline), battles by hand: q1 much better in both games, 3 + 3 wins;
    q2 the baseline slightly better twice, 2 losses; q3 ties, 2 x 0.5; q5 no verdict, dropped.
    Win rate (6 + 0 + 1) / 10 = 0.7. Creative writing (q4, its own baseline and the compare-only
    prompt): slightly better twice, 1.0."""
    preds = _arena_data(tmp_path)
    monkeypatch.setenv("RALIGN_DATA", str(tmp_path))
    SEEN.clear()
    out = tmp_path / "out"
    args = ["~suite", "task=[arena_hard_v2]", f"predictions={preds}", f"output_dir={out}",
            "max_failure_rate=0.25", "tasks.arena_hard_v2.params.parse_retries=1"]
    with LoopbackServer(responder=arena_judge) as srv:
        summary = _run(args + _judge(srv.base_url))
        s = summary["tasks"]["arena_hard_v2"]
        assert s["win_rate"] == pytest.approx(0.7)
        assert s["battles"] == 10
        assert s["win_rate_ci"][0] <= 0.7 <= s["win_rate_ci"][1] and s["score_ci_level"] == 0.9
        # the YAML's style control makes the headline: q1 is 5 tokens longer than its baseline (6 vs 1
        # tokens, relative length 5/7) and wins, q2 5 tokens shorter (-5/7) and loses, q3 as long and
        # ties; the fit is symmetric about 0, so at equal style the win rate is 1/2
        assert s["score"] == s["win_rate_style_controlled"] == pytest.approx(0.5, abs=1e-6)
        assert 0 <= s["score_ci"][0] <= s["score"] <= s["score_ci"][1] <= 1
        assert s["by_category"]["creative_writing"] == pytest.approx(1.0, abs=1e-3)
        assert (s["judge_parse_fail"], s["judge_call_fail"], s["judge_verdicts"]) == (2, 0, 10)
        assert s["judge"] == "openai:rule-judge" and s["judge_prompt"].startswith(ARENA_PROMPT + "@")
        # the creative item was judged against gemini's answer with the compare-only prompt, both orders
        creative = [x for x in SEEN if "a poem" in x[1] + x[2]]
        assert sorted(creative) == [("compare", "<<good>> a poem", "a poem"), ("compare", "a poem", "<<good>> a poem")]
        assert {x[0] for x in SEEN if "a poem" not in x[1] + x[2]} == {"own answer first"}
        rows = [json.loads(line) for line in (out / "arena_hard_v2" / "samples.jsonl").read_text().splitlines()]
        by_id = {r["id"]: r for r in rows}
        assert by_id["q1"]["detail"]["battles"] == [1.0] * 6 and by_id["q1"]["detail"]["games"] == ["B>>A", "A>>B"]
        assert by_id["q5"]["verdict"] == "no_verdict" and by_id["q5"]["detail"]["battles"] == []
        recorded = {(r["detail"]["judge"], r["detail"]["judge_prompt"]) for r in rows}
        assert {(j, p.split("@")[0]) for j, p in recorded} == {("openai:rule-judge", ARENA_PROMPT)}
        # a rerun grades nothing again: every grade but q5's (no verdict is still a verdict) is cached
        calls = srv.chat_requests
        again = _run(args + _judge(srv.base_url))["tasks"]["arena_hard_v2"]
        assert again["win_rate"] == s["win_rate"] and srv.chat_requests == calls
        # without style control the headline is the plain Bradley-Terry win rate
        plain = _run(args + _judge(srv.base_url) + ["tasks.arena_hard_v2.params.style_control=[]",
                                                    "tasks.arena_hard_v2.params.score_categories=null"])
        p = plain["tasks"]["arena_hard_v2"]
        assert p["score"] == pytest.approx(9 / 12) and "win_rate_style_controlled" not in p  # all categories


def test_arena_hard_question_without_a_baseline_names_file_line_and_field(tmp_path, monkeypatch):
    _arena_data(tmp_path)
    monkeypatch.setenv("RALIGN_DATA", str(tmp_path))
    base = tmp_path / "arena-hard-v2.0" / "model_answer" / "o3-mini-2025-01-31.jsonl"
    base.write_text("".join(line + "\n" for line in base.read_text().splitlines() if '"q3"' not in line))
    obj, _ = compose("downstream_eval", ["~suite", "task=[arena_hard_v2]", f"output_dir={tmp_path}/o",
                                         *_judge("http://127.0.0.1:9/v1")])
    from downstream_eval.run import build_tasks

    with pytest.raises(InputError, match=r"question.jsonl.*3.*uid.*no baseline answer with this id in .*o3-mini"):
        build_tasks(obj)["arena_hard_v2"].load()


# ---------------------------------------------------------------------------- WildBench
def wildbench_judge(body):
    """WB-Score: the score written in the response as <<s=N>>; WB-Reward: A++/B++ for
    <<much>>, A+/B+ for <<good>>, else A=B; <<garbage>>: no JSON."""
    text = body["messages"][-1]["content"]
    SEEN.append(text)
    if "<|begin_of_response|>" in text:
        answer = _between(text, "<|begin_of_response|>", "<|end_of_response|>")
        m = re.search(r"<<s=(\d+)>>", answer)
        return f'Analysis.\n```json\n{{"strengths": "s", "weaknesses": "w", "score": "{m.group(1)}"}}\n```' \
            if m else "No idea."
    a = _between(text, "<|begin_of_response_A|>", "<|end_of_response_A|>")
    b = _between(text, "<|begin_of_response_B|>", "<|end_of_response_B|>")
    choice = "A=B"
    for mark, plus in (("<<much>>", "++"), ("<<good>>", "+")):
        if mark in a or mark in b:
            choice = ("A" if mark in a else "B") + plus
            break
    return json.dumps({"analysis of A": "..", "analysis of B": "..", "choice": choice})


def _wb_records(refs):
    tags = [("Coding & Debugging", []), ("Coding & Debugging", ["Data Analysis"]), ("Creative Writing", []),
            ("Brainstorming", []), ("Reasoning", [])]
    return [{"id": f"w{i}", "session_id": f"w{i}", "checklist": [f"Is item {i} answered?", "Is it correct?"],
             "conversation_input": ([{"role": "user", "content": "Earlier question"},
                                     {"role": "assistant", "content": "Earlier answer"}] if i == 0 else [])
             + [{"role": "user", "content": f"Query {i}"}],
             "primary_tag": p, "secondary_tags": s, "references": {"gpt-4": refs[i]}}
            for i, (p, s) in enumerate(tags)]


def test_wb_score_end_to_end(tmp_path):
    """Scores 8 (Coding), 6 (Coding + Math), 3 (Creative), an empty answer 1 without the judge
    (Creative), one judge without a score (left out). Rescaled 6, 2, -4, -8: Coding 4, Math 2,
    Creative -6; WB-Score = (4*1.25 + 2*1 - 6*0.5) / 2.75 * 10 = 14.545..; micro
    ((8+6+3+1)/4 - 5) * 2 * 10 = -10."""
    data = _write(tmp_path / "wb.jsonl", _wb_records(["r"] * 5))
    outputs = ["<<s=8>> code", "<<s=6>> code and data", "<<s=3>> a story", "", "<<garbage>>"]
    preds = _write(tmp_path / "preds.jsonl", [{"task_id": f"w{i}", "output": o} for i, o in enumerate(outputs)])
    SEEN.clear()
    with LoopbackServer(responder=wildbench_judge) as srv:
        summary = _run(["~suite", "task=[wildbench]", f"tasks.wildbench.path={data}", f"predictions={preds}",
                        f"output_dir={tmp_path / 'out'}", *_judge(srv.base_url), "max_failure_rate=0.3"])
        s = summary["tasks"]["wildbench"]
        assert srv.chat_requests == 4 + 2  # the empty answer is not sent; the scoreless one re-asked twice
    macro = (4 * 1.25 + 2 * 1 - 6 * 0.5) / 2.75
    assert s["wb_score"] == pytest.approx(macro * 10) and s["score"] == pytest.approx(macro / 10)
    assert s["wb_score_micro"] == pytest.approx(-10.0) and s["judged"] == 4
    assert s["by_category"] == pytest.approx({"coding_debugging": 40.0, "math_data_analysis": 20.0, "creative": -60.0})
    assert (s["judge_parse_fail"], s["judge_verdicts"]) == (1, 4)
    assert s["judge"] == "openai:rule-judge" and s["judge_prompt"].startswith(WB_PROMPT + "@")
    first = next(t for t in SEEN if "<<s=8>>" in t)
    assert "USER: Earlier question\n\nASSISTANT: Earlier answer" in first and "Query 0" in first
    assert "- Is item 0 answered?\n- Is it correct?\n" in first


def test_wb_reward_end_to_end(tmp_path):
    """K = 10. w0 much better: +100; w1 slightly better but 40 characters longer than the
    reference: a tie, 0; w2 the reference slightly better (1 character longer, within K): -50;
    w3 empty: -100 without the judge; w4 the same: a tie. WB-Reward (100 + 0 - 50 - 100 + 0) / 5
    = -10, the same whichever position each answer had, one random order or both."""
    refs = ["a reference", "ref", "<<good>> r", "something", "same"]
    outputs = ["<<much>> mine", "<<good>> " + "x" * 34, "mine mine", "", "same"]
    preds = _write(tmp_path / "preds.jsonl", [{"task_id": f"w{i}", "output": o} for i, o in enumerate(outputs)])
    data = _write(tmp_path / "wb.jsonl", _wb_records(refs))
    # the reference also from a file of its own, as WildBench's model outputs are kept (a list of samples)
    ref_file = _write(tmp_path / "ref.jsonl", [{"session_id": f"w{i}", "output": [r]} for i, r in enumerate(refs)])
    runs = {"random order": [], "both orders": ["tasks.wildbench_reward.params.both_orders=true"],
            "reference file": [f"tasks.wildbench_reward.params.reference_path={ref_file}",
                               "tasks.wildbench_reward.params.reference_field=output"]}
    with LoopbackServer(responder=wildbench_judge) as srv:
        for name, extra in runs.items():
            summary = _run(["~suite", "task=[wildbench_reward]", f"tasks.wildbench_reward.path={data}",
                            f"predictions={preds}", f"output_dir={tmp_path / name}", *_judge(srv.base_url),
                            "tasks.wildbench_reward.params.length_penalty=10", *extra])
            s = summary["tasks"]["wildbench_reward"]
            assert s["wb_reward"] == pytest.approx(-10.0), name
            assert s["outcomes"] == {"win_much": 1, "win": 0, "tie": 2, "lose": 1, "lose_much": 1}, name
            assert s["wb_reward_length_penalty"] == 10
            samples = tmp_path / name / "wildbench_reward" / "samples.jsonl"
            rows = [json.loads(x) for x in samples.read_text().splitlines()]
            positions = [[side for _, side in r["detail"]["choices"]] for r in rows if r["detail"]["choices"]]
            if name == "both orders":
                assert positions == [["policy=A", "policy=B"]] * 4
            else:
                assert [len(p) for p in positions] == [1] * 4
            assert all(r["detail"]["judge_prompt"].startswith(WB_PROMPT + "@") for r in rows)
        # without the length margin the slight win counts
        s = _run(["~suite", "task=[wildbench_reward]", f"tasks.wildbench_reward.path={data}", f"predictions={preds}",
                  f"output_dir={tmp_path / 'nok'}", *_judge(srv.base_url),
                  "tasks.wildbench_reward.params.length_penalty=null"])["tasks"]["wildbench_reward"]
        assert s["wb_reward"] == pytest.approx((100 + 50 - 50 - 100 + 0) / 5)
