"""Prompts: multi-turn context, both orders, and formats the parsers and rule judge read back."""

from genrm.parsing import RESULT_END, RESULT_START
from genrm.prompts import judge_messages, match_messages, metarm_messages
from genrm.records import PairwiseSample


def _sample():
    ctx = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
           {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "2+2?"}]
    return PairwiseSample("s1", ctx, "It is 4.", "It is 5.", "A", "A is right", ["A computes 4"])


def test_judge_prompt_renders_history_then_the_last_message_and_both_answers():
    msgs = judge_messages(_sample())
    assert [m["role"] for m in msgs] == ["system", "user"]
    text = msgs[1]["content"]
    assert text.index("[Conversation so far]") < text.index("Assistant: Hello! How can I help?") \
        < text.index("[Latest user message]\n2+2?") < text.index("[Answer A]\nIt is 4.") < text.index("[Answer B]\nIt is 5.")
    assert "\\boxed{A} or \\boxed{B}" in text and "tie is not allowed" in text


def test_single_turn_has_no_history_block_and_swap_flips_answers_and_label():
    s = PairwiseSample("s2", [{"role": "user", "content": "q"}], "first", "second", "A")
    assert "[Conversation so far]" not in judge_messages(s)[1]["content"]
    sw = s.swapped()
    assert (sw.response_a, sw.response_b, sw.gt_label, sw.meta["swapped"]) == ("second", "first", "B", True)
    assert sw.swapped().gt_label == "A"
    assert judge_messages(s, system=None)[0]["role"] == "user"


def test_metarm_and_matcher_prompts_carry_what_the_parsers_expect():
    text = metarm_messages(_sample(), "A is right because 2+2=4", "A computes 4 correctly")[1]["content"]
    assert "[Reference judgment]\nA computes 4 correctly" in text and "[AI judge's evaluation]\nA is right" in text
    assert 'Verdict: Correct' in text and 'Verdict: Incorrect' in text
    match = match_messages(["ref one", "ref two"], ["mod one"])[0]["content"]
    assert "R1. ref one\nR2. ref two" in match and "S1. mod one" in match
    assert RESULT_START in match and RESULT_END in match
