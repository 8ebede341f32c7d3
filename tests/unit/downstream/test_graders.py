"""Graders of the downstream tasks on hand-written outputs: right and wrong answers,
formatting variants, no answer."""

from __future__ import annotations

import json

import pytest

from downstream_eval.code import extract_code
from downstream_eval.tasks import Doc, TaskConfig, pass_at_k
from downstream_eval.tasks.math_answer import MathTask, extract_answer
from downstream_eval.tasks.multiple_choice import MultipleChoiceTask, extract_letter, shuffled
from downstream_eval.tasks.pairwise import field_at, length_controlled
from downstream_eval.tasks.rubric import parse_yes_no
from downstream_eval.tasks.stdio_code import output_matches, parse_tests, same_value
from plumbing.data import FieldError, InputError


def _task(cls, domain="stem", **kw):
    return cls(TaskConfig(name="t", domain=domain, **kw))


@pytest.mark.parametrize("output, gold, verdict", [
    ("The divisors add up to \\boxed{56}.", "56", "correct"),
    ("<think>maybe \\boxed{12}</think> so \\boxed{56}", "56", "correct"),  # thinking is stripped before grading
    ("First \\boxed{55}, no wait: \\boxed{56}", "56", "correct"),  # the last box counts
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "correct"),
    ("\\boxed{0.5}", "\\frac{1}{2}", "correct"),
    ("\\boxed{1/2}", "\\frac{1}{2}", "correct"),
    ("\\boxed{x + 1}", "x+1", "correct"),
    ("\\boxed{1 + x}", "x+1", "correct"),
    ("The final answer is 56.", "56", "correct"),
    ("Answer: $56$", "56", "correct"),
    ("\\boxed{57}", "56", "wrong"),
    ("\\boxed{x - 1}", "x+1", "wrong"),
    ("I am not sure.", "56", "no_answer"),
    ("", "56", "no_answer"),
])
def test_math_grader(output, gold, verdict):
    from genrm.parsing import strip_thinking

    task = _task(MathTask)
    g = task.grade_one(Doc("d", [], gold), strip_thinking(output))
    assert g.verdict == verdict
    assert g.score == (1.0 if verdict == "correct" else 0.0)


def test_math_answer_nested_braces():
    assert extract_answer("\\boxed{\\frac{\\sqrt{3}}{2}}") == "\\frac{\\sqrt{3}}{2}"


@pytest.mark.parametrize("text, letter", [
    ("... so the answer is \\boxed{C}", "C"),
    ("\\boxed{\\text{B}}", "B"),
    ("\\boxed{(D)}", "D"),
    ("The answer is (B).", "B"),
    ("Answer: **A**", "A"),
    ("Reasoning...\nC\n", "C"),
    ("\\boxed{E}", None),  # not one of the four options
    ("I cannot decide.", None),
])
def test_letter_extraction(text, letter):
    assert extract_letter(text, 4) == letter


def test_multiple_choice_shuffle_is_fixed_and_graded():
    rec = {"Record ID": "q1", "Question": "Which?", "Correct Answer": "right", "Incorrect Answer 1": "w1",
           "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"}
    task = _task(MultipleChoiceTask, params={"seed": 0})
    doc, again = task.doc(rec, 1), task.doc(dict(rec), 1)
    assert doc.meta["options"] == again.meta["options"]  # same seed, same order
    assert doc.meta["options"][ord(doc.target) - 65] == "right"
    assert f"({doc.target}) right" in doc.messages[-1]["content"]
    orders = {tuple(shuffled(["a", "b", "c", "d"], 0, f"q{i}", 0)[0]) for i in range(20)}
    assert len(orders) > 3  # the order depends on the question: the answer is not always at one letter
    wrong = "ABCD".replace(doc.target, "")[0]
    assert task.grade_one(doc, f"\\boxed{{{doc.target}}}").score == 1.0
    assert task.grade_one(doc, f"\\boxed{{{wrong}}}").verdict == "wrong"
    assert task.grade_one(doc, "no idea").verdict == "no_answer"
    with pytest.raises(FieldError, match="Incorrect Answer 2"):
        task.doc({**rec, "Incorrect Answer 2": ""}, 1)


@pytest.mark.parametrize("text, expected", [
    ("```python\ndef f():\n    return 1\n```", "def f():\n    return 1\n"),
    ("Here:\n```py\nx = 1\n```\nand the test\n```\nassert x\n```", "assert x\n"),  # the last Python block
    ("```python\ndef f():\n    pass\n```\n```python\nprint(f())\n```", "print(f())\n"),
    ("def f():\n    return 2\n", "def f():\n    return 2"),  # no fence: the whole text
    ("```bash\nls\n```", "ls\n"),
])
def test_code_extraction(text, expected):
    assert extract_code(text) == expected


def test_code_extraction_prefers_the_block_defining_the_entry_point():
    text = "```python\ndef add(a, b):\n    return a + b\n```\nUsage:\n```python\nprint(add(1, 2))\n```"
    assert extract_code(text, "add").startswith("def add")


def test_pass_at_k_matches_the_definition():
    from itertools import combinations

    n, c, k = 6, 2, 3
    samples = [1] * c + [0] * (n - c)
    exact = sum(any(samples[i] for i in s) for s in combinations(range(n), k)) / len(list(combinations(range(n), k)))
    assert pass_at_k(n, c, k) == pytest.approx(exact)
    assert pass_at_k(5, 0, 1) == 0.0 and pass_at_k(5, 5, 2) == 1.0 and pass_at_k(4, 1, 1) == pytest.approx(0.25)


def test_stdio_outputs_and_functional_values():
    case = {"input": "", "output": "3\n4", "testtype": "stdin"}
    assert output_matches(case, "3  \n4\n\n") and not output_matches(case, "3\n5")
    fn = {"input": "", "output": "[1.0, 2]", "testtype": "functional"}
    assert output_matches(fn, "debug line\n[1.0000000001, 2]") and not output_matches(fn, "[1.1, 2]")
    assert not same_value(True, 1) and same_value({"a": [1, 2.0]}, {"a": [1, 2]})
    assert parse_tests('[{"input": "1", "output": "2"}]', "t")[0]["testtype"] == "stdin"
    with pytest.raises(FieldError, match=r"t\[0\]"):
        parse_tests([{"input": "1"}], "t")
    with pytest.raises(FieldError, match="testtype"):
        parse_tests([{"input": "1", "output": "2", "testtype": "weird"}], "t")


@pytest.mark.parametrize("text, answer", [
    ("The answer stays in one sentence.\n\\boxed{YES}", "YES"),
    ("\\boxed{\\text{no}}", "NO"),
    ("<think>\\boxed{YES}</think>It does not. NO", "NO"),
    ("Hard to say.", None),
])
def test_rubric_yes_no(text, answer):
    assert parse_yes_no(text) == answer


def test_field_at_reaches_nested_fields():
    rec = {"references": {"gpt-4": "ref"}, "messages": [{"content": {"answer": "a1"}}, {"content": {"answer": "a2"}}]}
    assert field_at(rec, "references.gpt-4") == "ref"
    assert field_at(rec, "messages.-1.content.answer") == "a2"
    assert field_at(rec, "messages.5.content") is None and field_at(rec, "nope") is None


def test_length_control_removes_a_pure_length_effect():
    # The policy wins exactly when its answer is longer: at equal length it is a coin flip.
    diffs = [-30, -20, -10, -5, 5, 10, 20, 30]
    wins = [0, 0, 0, 0, 1, 1, 1, 1]
    assert sum(wins) / len(wins) == 0.5
    assert length_controlled(wins, diffs) == pytest.approx(0.5, abs=0.02)
    # A policy that wins at every length keeps a high controlled win rate.
    assert length_controlled([1, 1, 1, 0, 1, 1, 1, 1], diffs) > 0.8


def test_bad_records_name_file_line_and_field(tmp_path):
    path = tmp_path / "math.jsonl"
    path.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n" + json.dumps({"problem": "2+2?"}) + "\n")
    task = TaskConfig(_target_="downstream_eval.tasks.math_answer.MathTask", name="m", domain="stem",
                      path=str(path)).build()
    with pytest.raises(InputError) as e:
        task.load()
    assert (e.value.line, e.value.field) == (2, "answer") and str(path) in str(e.value)
    path.write_text("{not json\n")
    with pytest.raises(InputError) as e:
        task.load()
    assert e.value.line == 1


def test_math_grading_works_off_the_main_thread():
    """The stage grades in a worker thread, where math-verify's signal-based timeout cannot run."""
    from concurrent.futures import ThreadPoolExecutor

    task = _task(MathTask)
    with ThreadPoolExecutor(1) as pool:
        g = pool.submit(task.grade_one, Doc("d", [], "\\frac{1}{2}"), "\\boxed{0.5}").result()
    assert g.verdict == "correct"


def test_thinking_is_removed_but_code_indentation_kept():
    from genrm.parsing import strip_thinking

    assert strip_thinking("<think>plan</think>\n\n    return 1\n", keep_indent=True) == "    return 1"
    assert strip_thinking("    return 1\n", keep_indent=True) == "    return 1"
    assert strip_thinking("<think>plan</think>\n  answer \n") == "answer"
