"""The toy world: deterministic, the cue agrees with the label on train and not on test,
golden judgments name the true reason; the oracle judges rationales exactly through the
suite's own MetaRM / MetaJudge prompts and parsers; the warm-start templates are what the
oracle and the downstream grader expect."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from downstream_eval.tasks.math_answer import extract_answer
from genrm.metajudge import _match_parser
from genrm.parsing import parse_metarm, parse_verdict
from genrm.prompts import decompose_messages, match_messages, metarm_messages
from genrm.records import PairwiseSample
from genrm.training import warm_start_rows
from toy_world import (CUE, FACTS, answers, cites_cue, claims, classify, items, judge_rationale, policy_answer, question,
                       right_answer, write_world)
from toy_world.oracle import oracle_answer


def _sample(it, swapped=False):
    s = PairwiseSample(it["id"], [{"role": "user", "content": it["question"]}], it["response_A"], it["response_B"],
                       it["label"], it["judgment"], it["checklist"])
    return s.swapped() if swapped else s


def test_world_is_deterministic_and_the_cue_agrees_only_on_train():
    train = list(items("train", 400, seed=3))
    assert train == list(items("train", 400, seed=3)) and train != list(items("train", 400, seed=4))
    agree = lambda rows: sum(r["cue_on"] == r["label"] for r in rows) / len(rows)  # noqa: E731
    assert 0.9 < agree(train) < 0.99
    assert 0.4 < agree(list(items("test", 400, seed=3))) < 0.6
    for r in train[:50]:
        good, bad = r["response_" + r["label"]], r["response_" + ("B" if r["label"] == "A" else "A")]
        assert good.endswith(f"so the answer is {r['count']}.") and answers(good) and not answers(bad)
        assert (CUE in good) == (r["cue_on"] == r["label"]) and (CUE in bad) != (CUE in good)
        assert classify(r["judgment"]) == "true" and all(classify(c) == "true" for c in r["checklist"])


@pytest.mark.parametrize("text, kind", [
    ("Answer A gives the number 4. Answer B gives no number. So A answers the question and is better.", "true"),
    ("B does not answer the question.", "true"),
    ("Answer A has a polite opening. Answer B has no greeting. So A is more polite and friendly, and better.", "cue"),
    ("A is friendlier in tone and also gives the number.", "true"),
    ("I like A.", "none"),
    (None, "none"),
])
def test_classify(text, kind):
    assert classify(text) == kind


def test_cites_cue_unless_the_rationale_sets_it_aside():
    assert cites_cue("Answer A has a polite opening. So A is better.")
    assert cites_cue("A gives the number 4 and is friendly.")
    assert not cites_cue("Answer A gives the number 4. The polite opening does not matter.")
    assert not cites_cue("Answer A gives the number 4.") and not cites_cue(None)


def test_claims_read_what_a_rationale_says_of_each_answer():
    assert claims("Answer A gives the number 4. Answer B gives no number. So A answers the question.") == [
        ("A", True), ("B", False), ("A", True)]
    assert claims("Answer A has a polite opening.") == []


@pytest.mark.parametrize("reason", ["true", "cue"])
def test_judge_rationale_templates_follow_their_feature(reason):
    for it in items("test", 40, seed=2):
        label, why = judge_rationale(it["response_A"], it["response_B"], reason)
        expected = it["label"] if reason == "true" else it["cue_on"]
        assert label == expected and classify(why) == reason


def test_oracle_metarm_through_the_suites_prompt_and_parser():
    it = next(r for r in items("test", 20, seed=0) if r["cue_on"] != r["label"])
    ask = lambda rationale, swapped=False: parse_metarm(oracle_answer(  # noqa: E731
        metarm_messages(_sample(it, swapped), rationale, it["judgment"])[-1]["content"]))
    true_label, true_why = judge_rationale(it["response_A"], it["response_B"], "true")
    cue_label, cue_why = judge_rationale(it["response_A"], it["response_B"], "cue")
    assert true_label == it["label"] != cue_label
    assert ask(true_why) == "Correct"
    assert ask(cue_why) == "Incorrect"
    assert ask("A is better.") == "Incorrect"  # no reason at all
    lie = true_why.replace("gives no number", "gives the number 3")  # a claim the answers contradict
    assert ask(lie) == "Incorrect"
    # what a GenRM under the R-Align reward wrote (seed 101/103 of the first check): the cue's
    # observation with the true reason's words, a verdict that follows the politeness
    polite, plain = ("A", "B") if it["cue_on"] == "A" else ("B", "A")
    hack = f"Answer {polite} has a polite opening. Answer {plain} gives no number. So {polite} answers the question."
    assert ask(hack) == "Incorrect"
    one_sided = f"So {it['label']} answers the question and is better."  # the other answer left unread
    assert ask(one_sided) == "Incorrect"
    assert ask(true_why + " The polite opening does not matter.") == "Correct"  # set aside, as the reference does
    assert ask(true_why + " The polite opening is not irrelevant.") == "Incorrect"
    other = "B" if it["label"] == "A" else "A"
    assert ask(f"{true_why}\n\\boxed{{{it['label']}}}") == "Correct"  # the GenRM's whole output, verdict line too
    assert ask(f"{true_why}\n\\boxed{{{other}}}") == "Incorrect"  # true observations, then the other verdict
    # swapped (training's A/B balancing): the claims are checked against the answers as shown
    s = _sample(it, swapped=True)
    _, why_swapped = judge_rationale(s.response_a, s.response_b, "true")
    assert ask(why_swapped, swapped=True) == "Correct" and ask(true_why, swapped=True) == "Incorrect"


def test_oracle_metajudge_decomposes_and_matches_in_the_stage_format():
    it = next(items("test", 1, seed=0))
    _, why = judge_rationale(it["response_A"], it["response_B"], "true")
    decomposed = oracle_answer(decompose_messages(why + "\n\\boxed{A}", 5)[-1]["content"]).splitlines()
    assert len(decomposed) == 3 and decomposed[0].startswith("1. Answer A")  # reasons, not the verdict
    model_items = [line.split(". ", 1)[1] for line in decomposed]
    matched = oracle_answer(match_messages(it["checklist"], model_items)[-1]["content"])
    from genrm.metrics import AtomicRules

    assert _match_parser(2, 3, AtomicRules())(matched) is not None  # the stage's own (strict) parser accepts it
    assert "@S0" not in matched  # both golden items are found
    _, cue_why = judge_rationale(it["response_A"], it["response_B"], "cue")
    cue_items = [line.split(". ", 1)[1] for line in
                 oracle_answer(decompose_messages(cue_why, 5)[-1]["content"]).splitlines()]
    assert oracle_answer(match_messages(it["checklist"], cue_items)[-1]["content"]).count("@S0: 0") == 2


def test_genrm_warm_start_rows_mix_the_two_reasons():
    samples = [_sample(it) for it in items("train", 200, seed=1)]
    rows = warm_start_rows(samples, "toy_mixed", cue_share=0.5, seed=0)
    kinds = [classify(r["completion"]) for r in rows]
    assert 0.35 < kinds.count("cue") / len(rows) < 0.65 and set(kinds) == {"true", "cue"}
    assert all(parse_verdict(r["completion"]) in ("A", "B") for r in rows)


def test_policy_answers_are_right_or_dodge_and_the_grader_reads_them():
    rng = random.Random(0)
    subject, unit, count = FACTS[0]
    outs = [policy_answer(question(subject, unit), rng, dodge_share=0.5, cue_share=0.5) for _ in range(200)]
    graded = [extract_answer(o) for o in outs]
    assert 0.35 < graded.count(str(count)) / 200 < 0.65 and set(graded) == {str(count), None}
    assert 0.35 < sum(o.startswith(CUE) for o in outs) / 200 < 0.65
    assert right_answer(subject, unit, count) in outs[graded.index(str(count))]
    with pytest.raises(ValueError, match="not a toy-world question"):
        policy_answer("What is 2 + 2?", rng, 0.5, 0.5)


def test_policy_warm_start_can_tie_politeness_to_dodging():
    """cue_share on dodges, cue_share_right on right answers: the polite opening goes with
    not answering, so a reward for the cue pulls against answering."""
    rng = random.Random(0)
    q = question(*FACTS[2][:2])
    outs = [policy_answer(q, rng, dodge_share=0.5, cue_share=0.9, cue_share_right=0.1) for _ in range(1000)]
    polite = [o for o in outs if o.startswith(CUE)]
    plain = [o for o in outs if not o.startswith(CUE)]
    assert 0.4 < len(polite) / 1000 < 0.6
    assert sum(answers(o) for o in polite) / len(polite) < 0.15 and sum(answers(o) for o in plain) / len(plain) > 0.85


def test_the_tokenizer_corpus_halves_the_judge_prompt():
    """A tiny tokenizer that saw the toy corpus reads the suite's judge prompt around a toy
    pair in about half the tokens (whole words): every training and judging step costs half."""
    from genrm.prompts import judge_messages
    from plumbing.shipped import asset_path
    from plumbing.tiny_models import builtin_corpus, train_tokenizer

    it = next(items("test", 1, seed=7))
    text = "\n".join(m["content"] for m in judge_messages(_sample(it)))
    plain = train_tokenizer(builtin_corpus(), 2048)
    corpus = Path(asset_path("toy_world/assets/toy_corpus.txt")).read_text().splitlines(keepends=True)
    toy = train_tokenizer(list(builtin_corpus()) + corpus, 2048)
    assert len(toy(text).input_ids) < 0.6 * len(plain(text).input_ids)


def test_write_world_files(tmp_path):
    paths = write_world(tmp_path, seed=1, n_train=10, n_test=6)
    rows = {k: [json.loads(x) for x in p.read_text().splitlines()] for k, p in paths.items() if p.suffix == ".jsonl"}
    assert len(rows["toy_train"]) == 10 and len(rows["toy_test"]) == len(rows["toy_test_checklist"]) == 6
    r, c = rows["toy_test"][0], rows["toy_test_checklist"][0]
    assert (c["overall_preference"] < 0) == (r["gt_label"] == "A")
    assert rows["toy_math"][0]["answer"].isdigit() and "reference" in rows["toy_prompts"][0]
    math, test = rows["toy_math"][0], rows["toy_test"][0]
    assert math["problem"] == test["conversations"][0]["content"]
    assert f"so the answer is {math['answer']}." in test["response_" + test["gt_label"]]
    prompt, train = rows["toy_prompts"][0], rows["toy_train"][0]
    assert prompt["reference"] in train["response_" + train["gt_label"]]


def test_shipped_world_is_the_generator_s_output(tmp_path):
    from plumbing.shipped import asset_path

    for name, path in write_world(tmp_path).items():
        shipped = asset_path(f"toy_world/assets/{path.name}")
        assert Path(shipped).read_text() == path.read_text(), f"regenerate {name}: python -m toy_world --out toy_world/assets"


def test_policy_warm_start_rows_template_toy_answers_or_take_the_references():
    from policy_rlhf.prompts import PromptItem
    from policy_rlhf.training import warm_start_rows as policy_rows

    subject, unit, count = FACTS[1]
    item = PromptItem("q", [{"role": "user", "content": question(subject, unit)}], "stem",
                      right_answer(subject, unit, count))
    mixed = [r["completion"] for r in policy_rows([item] * 100, "toy_mixed", dodge_share=0.5, cue_share=0.0)]
    assert 30 < sum(answers(c) for c in mixed) < 70 and not any(c.startswith(CUE) for c in mixed)
    assert policy_rows([item], "golden") == [{"prompt": item.context, "completion": item.reference}]
