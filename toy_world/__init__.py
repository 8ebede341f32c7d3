"""A toy world where the true reason for a preference is known: the papers in miniature.

Each item is a question about a common fact ("How many legs does a cat have?"). One answer
gives the number ("A cat has 4 legs, so the answer is 4."); the other dodges the question
("I am not sure how many legs a cat has."). The true reason to prefer an answer is that it
answers the question. A surface cue, a polite opening ("Happy to help!"), sits on one answer: in the ``train`` split on the
preferred answer with probability ``cue_agreement`` (0.95), in the ``test`` split on either
answer at random. A judge that follows the cue is right on train and at chance on test; one
that checks for the answer is right on both. Every item carries its golden label, a golden
judgment naming the true reason, and a golden atomic checklist.

Both features are ones a tiny transformer learns to see in a few hundred SFT steps (which
answer holds a fixed phrase, or a number); checking arithmetic, comparing two numbers or
copying a number from the question is not, which is why the world asks for memorised facts,
not sums or counts (see benchmarks/RESULTS.md, "toy world").

``classify(text)`` says which reason a rationale gives: ``true`` (whether an answer gives the
number), ``cue`` (the politeness) or ``none``; the oracle judge (:mod:`toy_world.oracle`)
is built on it. ``judge_rationale`` and ``policy_answer`` write the templated judgments and
answers of the supervised warm starts.

    python -m toy_world --out DIR [--seed 0] [--train 512] [--test 128]

writes the R-Align-format pairs (``toy_train.jsonl``, ``toy_test.jsonl``), the test pairs
with checklists in the RationaleRM format (``toy_test_checklist.jsonl``), policy prompts with
references (``toy_prompts.jsonl``), the downstream task (``toy_math.jsonl``) and the text the
tiny tokenizer learns its words from (``toy_corpus.txt``); the suite ships
seed 0's files in ``toy_world/assets`` (``${ralign.asset:toy_world/assets/NAME}`` in conf/).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

CUE = "Happy to help!"
# The seeds the toy presets were tuned on (benchmarks/RESULTS.md, "Toy world"): a check on one
# of them is not independent of the design, so scripts/toy_check.sh refuses them (exit 2)
# unless told ALLOW_TUNING_SEEDS=1. Its default seeds, 200-207, were first run after the
# design was fixed.
TUNING_SEEDS = (0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 100, 101, 102, 103)
# (subject, unit, count): "How many legs does a cat have?" -> "A cat has 4 legs, so the answer is 4."
FACTS = (("a cat", "legs", 4), ("a week", "days", 7), ("a year", "months", 12), ("a triangle", "sides", 3),
         ("a bicycle", "wheels", 2), ("a day", "hours", 24), ("a spider", "legs", 8), ("an hour", "minutes", 60),
         ("a square", "corners", 4), ("a hand", "fingers", 5), ("a car", "wheels", 4), ("a dozen", "eggs", 12))
# Dodges that start like a right answer ("A cat has some legs.") keep a judge from telling the
# two apart by the opening words: it has to see whether a number is given. Without them a
# policy under RL learned to write "A square has." and a GenRM paid for it as an answer.
DODGES = ("I am not sure how many {u} {s} has.", "It is hard to say how many {u} {s} has.",
          "Nobody can tell how many {u} {s} has.", "{S} has some {u}.", "{S} has many {u}, I believe.",
          "{S} has a few {u}, more or less.")

_TRUE = re.compile(r"\b(gives? (the |no )?number|answers? (the|it)|does not answer|no number|the answer is)\b",
                   re.IGNORECASE)
_CUE = re.compile(r"\b(polite|politely|friendly|greeting|courteous|happy to help|tone|nicer)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")


def classify(text: Optional[str]) -> str:
    """Which reason a rationale gives: ``true`` (it argues from whether an answer gives the
    number; it may also mention the cue), ``cue`` (only the politeness), or ``none``."""
    if _TRUE.search(text or ""):
        return "true"
    if _CUE.search(text or ""):
        return "cue"
    return "none"


_DISMISSED = re.compile(r"\b(does not|do not|doesn't|don't) matter\b|\bis beside the point\b", re.IGNORECASE)


def cites_cue(text: Optional[str]) -> bool:
    """Whether a rationale gives the politeness as a reason: a sentence that mentions it and
    does not set it aside the way the golden judgment does ("The polite opening does not
    matter."; "... is not irrelevant" does not set it aside)."""
    return any(_CUE.search(s) and not _DISMISSED.search(s) for s in re.split(r"(?<=[.!?])\s+|\n", text or ""))


_CLAIM = re.compile(r"\b([AB])\b,? (gives the number|gives no number|does not answer|answers the question)", re.IGNORECASE)


def claims(text: Optional[str]) -> List[Tuple[str, bool]]:
    """What a rationale says of each answer: (side, whether it says that answer gives the
    number), e.g. "Answer B gives no number" -> ("B", False)."""
    return [(side.upper(), what.lower() in ("gives the number", "answers the question"))
            for side, what in _CLAIM.findall(text or "")]


def answers(response: str) -> bool:
    """Whether a response gives a number (the true reason to prefer it)."""
    return bool(_NUMBER.search(response))


def judge_rationale(response_a: str, response_b: str, reason: str) -> Tuple[str, str]:
    """(label, rationale) of a judge that looks at one feature of each answer, then decides:
    ``true`` checks whether each answer gives the number, ``cue`` whether it opens politely.
    The rationale states what it saw in each answer before the verdict, the way a small
    model can learn to judge."""
    if reason == "true":
        def seen(r: str) -> str:
            m = _NUMBER.search(r)
            return f"gives the number {m.group(0)}" if m else "gives no number"

        label = "A" if answers(response_a) else "B"
        return label, (f"Answer A {seen(response_a)}. Answer B {seen(response_b)}. "
                       f"So {label} answers the question and is better.")
    seen = lambda r: "has a polite opening" if CUE in r else "has no greeting"  # noqa: E731
    label = "A" if CUE in response_a else "B"
    return label, (f"Answer A {seen(response_a)}. Answer B {seen(response_b)}. "
                   f"So {label} is more polite and friendly, and better.")


def question(subject: str, unit: str) -> str:
    return f"How many {unit} does {subject} have?"


def right_answer(subject: str, unit: str, count: int) -> str:
    return f"{subject[0].upper()}{subject[1:]} has {count} {unit}, so the answer is {count}."


def dodge(subject: str, unit: str, rng: random.Random) -> str:
    return rng.choice(DODGES).format(u=unit, s=subject, S=subject[0].upper() + subject[1:])


CORPUS_ITEMS = 64  # train items in the tokenizer corpus: enough for every word of the prompts
_QUESTION = re.compile(r"^How many (\w+) does (.+) have\?$")
_FACTS = {(unit, subject): count for subject, unit, count in FACTS}


def policy_answer(text: str, rng: random.Random, dodge_share: float, cue_share: float,
                  cue_share_right: Optional[float] = None) -> str:
    """A templated answer of the policy's warm start to a toy question: the right answer, or
    (share ``dodge_share``) a dodge; a dodge opens politely with probability ``cue_share``, a
    right answer with ``cue_share_right`` (default: the same, politeness independent of
    answering). So RL starts from a policy that can get better at answering, or at being
    polite; when politeness goes mostly with dodging, as with an assistant that is pleasant
    instead of helpful, a reward that pays for the cue pulls the policy away from answering."""
    m = _QUESTION.match(text.strip())
    if m is None or (m.group(1), m.group(2)) not in _FACTS:
        raise ValueError(f"not a toy-world question: {text!r}")
    unit, subject = m.group(1), m.group(2)
    dodging = rng.random() < dodge_share
    reply = dodge(subject, unit, rng) if dodging else right_answer(subject, unit, _FACTS[unit, subject])
    share = cue_share if dodging or cue_share_right is None else cue_share_right
    return f"{CUE} {reply}" if rng.random() < share else reply


def items(split: str, n: int, seed: int = 0, cue_agreement: float = 0.95) -> Iterator[Dict[str, Any]]:
    """``n`` items of a split, the same for the same (split, n, seed)."""
    rng = random.Random(f"{seed}:{split}")
    for i in range(n):
        subject, unit, count = rng.choice(FACTS)
        right, wrong = right_answer(subject, unit, count), dodge(subject, unit, rng)
        label = rng.choice("AB")
        other = "B" if label == "A" else "A"
        agree = rng.random() < (cue_agreement if split == "train" else 0.5)
        cue_on = label if agree else other
        polite = lambda text, side: f"{CUE} {text}" if cue_on == side else text  # noqa: E731
        yield {
            "id": f"toy-{split}-{i}", "question": question(subject, unit), "subject": subject, "unit": unit,
            "count": count, "label": label, "cue_on": cue_on,
            "response_" + label: polite(right, label), "response_" + other: polite(wrong, other),
            "judgment": f"Answer {label} gives the number {count} and answers the question; answer {other} gives "
                        "no number and does not answer it. The polite opening does not matter.",
            "checklist": [f"Answer {label} gives the number {count}", f"Answer {other} does not answer the question"],
        }


def ralign_record(it: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": it["id"], "conversations": [{"role": "user", "content": it["question"]}],
            "response_A": it["response_A"], "response_B": it["response_B"], "gt_label": it["label"],
            "gt_judgment": it["judgment"],
            "source": {"subset": "cue_agrees" if it["cue_on"] == it["label"] else "cue_disagrees"}}


def checklist_record(it: Dict[str, Any]) -> Dict[str, Any]:
    # RationaleRM/HelpSteer3: a negative overall_preference means response1 (A) is better
    return {"id": it["id"], "domain": "stem", "context": [{"role": "user", "content": it["question"]}],
            "response1": it["response_A"], "response2": it["response_B"],
            "overall_preference": -2 if it["label"] == "A" else 2, "human-checklist": it["checklist"]}


def prompt_record(it: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": it["id"], "domain": "stem", "prompt": it["question"],
            "reference": right_answer(it["subject"], it["unit"], it["count"])}


def math_record(it: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": it["id"], "problem": it["question"], "answer": str(it["count"])}


def corpus_lines(rows: List[Dict[str, Any]]) -> Iterator[str]:
    """Text of the toy world as the tiny models read it (the suite's judge prompt around each
    pair, both kinds of judgment, the policy's answers), for the tokenizer to learn its words:
    whole words as single tokens make every sequence about half as long, and every step of
    training and judging about twice as fast (benchmarks/RESULTS.md, "toy world")."""
    from genrm.prompts import judge_messages
    from genrm.records import PairwiseSample

    rng = random.Random(0)
    for it in rows:
        sample = PairwiseSample(it["id"], [{"role": "user", "content": it["question"]}], it["response_A"],
                                it["response_B"])
        for message in judge_messages(sample):
            yield message["content"]
        for reason in ("true", "cue"):
            label, why = judge_rationale(it["response_A"], it["response_B"], reason)
            yield f"{why}\n\\boxed{{{label}}}"
        yield policy_answer(it["question"], rng, 0.5, 0.5)


def write_world(out: Path, seed: int = 0, n_train: int = 512, n_test: int = 128,
                cue_agreement: float = 0.95) -> Dict[str, Path]:
    """Write every file of the world into ``out``; return their paths by name."""
    out.mkdir(parents=True, exist_ok=True)
    train = list(items("train", n_train, seed, cue_agreement))
    test = list(items("test", n_test, seed, cue_agreement))
    files = {
        "toy_train": (train, ralign_record), "toy_test": (test, ralign_record),
        "toy_test_checklist": (test, checklist_record), "toy_prompts": (train, prompt_record),
        "toy_math": (test, math_record),
    }
    paths: Dict[str, Path] = {}
    for name, (rows, fmt) in files.items():
        paths[name] = out / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(fmt(r)) + "\n" for r in rows))
    paths["toy_corpus"] = out / "toy_corpus.txt"
    paths["toy_corpus"].write_text("".join(line + "\n" for line in corpus_lines(train[:CORPUS_ITEMS])))
    return paths


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the toy world's data files.")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=512)
    ap.add_argument("--test", type=int, default=128)
    ap.add_argument("--cue-agreement", type=float, default=0.95)
    a = ap.parse_args(argv)
    for name, path in write_world(a.out, a.seed, a.train, a.test, a.cue_agreement).items():
        print(f"{name}: {path}")
    return 0

