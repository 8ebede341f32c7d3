"""Parsers on messy real-world outputs."""

import pytest

from genrm.parsing import parse_checklist, parse_matches, parse_metarm, parse_verdict, strip_thinking


@pytest.mark.parametrize(
    "text,label",
    [
        ("Answer A is correct. \\boxed{A}", "A"),
        ("<think>B looks right... \\boxed{B}</think>\nOn reflection A is better.\n\\boxed{A}", "A"),
        ("I first thought \\boxed{A} but actually \\boxed{B}", "B"),
        ("Final verdict: boxed{B}", "B"),
        ("final: \\boxed{a}", "A"),
        ("\\boxed{\\text{B}}", "B"),
        ("\\boxed{ Response A }", "A"),
        ("\\boxed{Assistant B}", "B"),
        ("\\boxed{**A**}", "A"),
        ("\\boxed {A}", "A"),
        ("The answer is \\boxed{A}. The sum is \\boxed{42}.", "A"),
        ("reasoning...</think>\n\n\\boxed{B}", "B"),  # template opened the thinking block
        ("Both are fine, I pick A.", None),  # no boxed verdict
        ("<think>long reasoning \\boxed{A} and then the output was cut", None),  # unterminated thinking
        ("\\boxed{A=B}", None),  # a tie is not a verdict
        ("\\boxed{}", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_verdict(text, label):
    assert parse_verdict(text) == label


def test_strip_thinking():
    assert strip_thinking("<think>x</think>answer") == "answer"
    assert strip_thinking("<THINK>x</THINK> a <think>y</think> b") == "b"
    assert strip_thinking("no tags") == "no tags"
    assert strip_thinking("<think>never closed") == ""


@pytest.mark.parametrize(
    "text,verdict",
    [
        ("The judge cites the same bug.\nVerdict: Correct", "Correct"),
        ("**Verdict:** Incorrect", "Incorrect"),
        ("verdict: correct", "Correct"),
        ("Verdict: Correct\nWait, no. Verdict: Incorrect", "Incorrect"),
        ("Final answer: [[Incorrect]]", "Incorrect"),
        ("\\boxed{Correct}", "Correct"),
        ("<think>Verdict: Correct</think>I am not sure.", None),
        ("The rationale is correct.", None),  # no verdict line
        ("Verdict: Mostly right", None),
        ("Verdict: Correctness is unclear", None),
        # R-Align's own MetaRM prompt asks for XML tags
        ("<golden_key_points>\nA has a math error\n</golden_key_points>\n<genrm_analysis>\nIt says so.\n"
         "</genrm_analysis>\n<final_verdict>\nCorrect\n</final_verdict>", "Correct"),
        ("<genrm_analysis>x</genrm_analysis><final_verdict>incorrect</final_verdict>", "Incorrect"),
        ("<final_verdict>**Incorrect**</final_verdict>", "Incorrect"),
        ("<final_verdict>Correct.</final_verdict>", "Correct"),  # a closing full stop is still the verdict
        ("<final_verdict>\nCorrect OR Incorrect\n</final_verdict>", None),  # the template echoed, no verdict
    ],
)
def test_parse_metarm(text, verdict):
    assert parse_metarm(text) == verdict


def test_parse_checklist_takes_numbered_and_bulleted_lines():
    text = "Here are the reasons:\n1. A has the right sum.\n2) B misreads the question\n- A is concise\n* **B is rude**\nDone."
    assert parse_checklist(text) == ["A has the right sum.", "B misreads the question", "A is concise", "B is rude"]
    assert parse_checklist("no list here") == []


def test_parse_matches_valid_and_tolerant_of_form():
    text = "analysis...\n<RESULT_START>\n- R1@S2: 0.75\nR2 @ S0 : 0\n- r3@s1: 1\n<RESULT_END>"
    p = parse_matches(text, n=3, m=2)
    assert p.ok and p.matches == [(1, 2, 0.75), (2, 0, 0.0), (3, 1, 1.0)]
    no_end = parse_matches("<RESULT_START>\n- R1@S1: .5\n", 1, 1)
    assert no_end.ok and no_end.matches == [(1, 1, 0.5)]
    assert parse_matches("<RESULT_START>\n- R1@S0: 1\n<RESULT_END>", 1, 3).matches == [(1, 0, 0.0)]


@pytest.mark.parametrize(
    "block,n,m,error",
    [
        ("- R1@S1: 1", 2, 1, "1 lines for 2"),
        ("- R1@S1: 1\n- R1@S1: 0.5", 2, 1, "twice"),
        ("- R3@S1: 1", 1, 1, "R3 outside"),
        ("- R1@S4: 1", 1, 3, "S4 outside"),
        ("- R1@S1: 0.3", 1, 1, "score 0.3"),
        ("- R1 matches S1 fully", 1, 1, "malformed"),
    ],
)
def test_parse_matches_invalid(block, n, m, error):
    p = parse_matches(f"<RESULT_START>\n{block}\n<RESULT_END>", n, m)
    assert not p.ok and error in p.error
    assert not parse_matches("- R1@S1: 1", 1, 1).ok  # no block at all
