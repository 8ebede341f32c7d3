"""IFEval through lm-eval's checkers: every instruction type, on an output that follows it
and one that does not; loose vs strict; instructions without a checker reported, not failed."""

from __future__ import annotations

import pytest

from downstream_eval.tasks import TaskConfig
from downstream_eval.tasks.ifeval import IFEvalTask, checkers

FRENCH = "Bonjour, je m'appelle Marie et j'aime beaucoup la musique classique et les longues promenades."
ENGLISH = "Hello there, my name is Mary and I really enjoy classical music and long walks in the park."

# instruction id, kwargs, a response that follows it, a response that does not
CASES = [
    ("keywords:existence", {"keywords": ["palette"]}, "A palette of colors.", "Some colors."),
    ("keywords:frequency", {"keyword": "blue", "frequency": 2, "relation": "at least"}, "blue sky, blue sea", "a blue sky"),
    ("keywords:forbidden_words", {"forbidden_words": ["red"]}, "A blue sky.", "A red sky."),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "less than"}, "hello", "buzz jazz"),
    ("language:response_language", {"language": "en"}, ENGLISH, FRENCH),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "less than"}, "One sentence only.",
     "One. Two. Three."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "First part.\n***\nSecond part.", "Just one part."),
    ("length_constraints:number_words", {"num_words": 5, "relation": "at least"}, "one two three four five six",
     "one two"),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
     "First part.\n\nThen the second.", "First part.\n\nAnd the second."),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Dear [name], at [address].", "Dear [name]."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\nP.S. See you.", "Hi. See you."),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* apples\n* pears", "* apples"),
    ("detectable_format:constrained_response", {}, "My answer is yes.", "Sure thing."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* and *two*", "*one* only"),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     "Section 1\nApples.\nSection 2\nPears.", "Section 1\nApples."),
    ("detectable_format:json_format", {}, '{"fruit": "apple"}', "fruit: apple"),
    ("detectable_format:title", {}, "<<On Rivers>>\nRivers flow.", "On Rivers\nRivers flow."),
    ("combination:two_responses", {}, "Answer one.\n******\nAnswer two.", "Only one answer."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Name a fruit."}, "Name a fruit. Apple.", "Apple."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Done. Any other questions?", "Done."),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "THE BIG dog", "The big dog"),
    ("change_case:english_capital", {}, ENGLISH.upper(), ENGLISH),
    ("change_case:english_lowercase", {}, ENGLISH.lower(), ENGLISH),
    ("punctuation:no_comma", {}, "No commas in here.", "Yes, a comma."),
    ("startend:quotation", {}, '"All of it quoted."', "Not quoted."),
]


def _task():
    return IFEvalTask(TaskConfig(name="ifeval", domain="if"))


def _doc(iid, kwargs, prompt="Do it."):
    return _task().doc({"key": 1, "prompt": prompt, "instruction_id_list": [iid], "kwargs": [kwargs]}, 1)


def test_every_registered_instruction_type_is_covered():
    registry, _ = checkers()
    assert {c[0] for c in CASES} == set(registry)


@pytest.mark.parametrize("iid, kwargs, good, bad", CASES, ids=[c[0] for c in CASES])
def test_instruction_followed_and_violated(iid, kwargs, good, bad):
    task, doc = _task(), _doc(iid, kwargs)
    followed, violated = task.grade_one(doc, good), task.grade_one(doc, bad)
    assert (followed.verdict, followed.score) == ("followed", 1.0), followed.detail
    assert (violated.verdict, violated.score) == ("not_followed", 0.0), violated.detail


def test_loose_forgives_a_preamble_and_levels_are_reported():
    task = _task()
    lower = _doc("change_case:english_lowercase", {})
    two = task.doc({"key": 2, "prompt": "p", "instruction_id_list": ["punctuation:no_comma", "keywords:existence"],
                    "kwargs": [{}, {"keywords": ["river"]}]}, 2)
    g_lower = task.grade_one(lower, "Sure!\n" + ENGLISH.lower())  # strict fails on "Sure!", loose drops the first line
    assert g_lower.detail["strict"] == [False] and g_lower.detail["loose"] == [True]
    g_two = task.grade_one(two, "A river, wide and slow.")  # keyword yes, comma no
    assert g_two.detail["strict"] == [False, True]
    s = task.summarize([[g_lower], [g_two]])
    assert s["prompt_level_strict"] == 0.0 and s["prompt_level_loose"] == 0.5
    assert s["inst_level_strict"] == pytest.approx(1 / 3) and s["inst_level_loose"] == pytest.approx(2 / 3)


def test_instruction_without_a_checker_is_reported_not_failed():
    task = _task()
    only_unknown = _doc("count:word_count_range", {"min_words": 3})
    mixed = task.doc({"key": 3, "prompt": "p", "instruction_id_list": ["count:word_count_range", "punctuation:no_comma"],
                      "kwargs": [{"min_words": 3}, {}]}, 3)
    g1, g2 = task.grade_one(only_unknown, "anything"), task.grade_one(mixed, "no commas")
    assert g1.verdict == "unchecked" and "no checker" in g1.detail["unchecked"][0]
    assert g2.verdict == "followed" and len(g2.detail["unchecked"]) == 1
    s = task.summarize([[g1], [g2]])
    assert (s["n"], s["score"], s["unchecked_prompts"], s["unchecked_instructions"]) == (1, 1.0, 1, 2)


def test_nltk_data_is_local():
    import nltk

    from downstream_eval.nltk_offline import ensure_punkt

    ensure_punkt()
    nltk.data.find("tokenizers/punkt_tab/english/")  # raises LookupError if it would need a download
