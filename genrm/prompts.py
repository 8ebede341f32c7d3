"""Prompts of the GenRM (pairwise judge), the MetaRM (holistic rationale check) and the
MetaJudge (atomic decomposition and matching). Each has an output format that the parser
in :mod:`genrm.parsing` checks."""

from __future__ import annotations

import re
from typing import Callable, Dict, List, Optional, Sequence

from genrm.parsing import RESULT_END, RESULT_START
from genrm.records import PairwiseSample

Messages = List[Dict[str, str]]

JUDGE_SYSTEM = "You are an impartial judge who compares answers written by AI assistants."

JUDGE_TEMPLATE = """\
Two AI assistants answered the latest user message of the conversation below. Decide which \
answer serves the user better. Weigh correctness first, then how well the answer follows the \
user's instructions, its helpfulness, clarity and safety. Do not let length, formatting or the \
order in which the answers appear sway you.

{comparison}

Explain the reasons for your decision, then state the better answer on a final line as \
\\boxed{{A}} or \\boxed{{B}}. You must pick one; a tie is not allowed."""


def render_conversation(context: Sequence[Dict[str, str]]) -> str:
    """Earlier turns as a transcript, then the message the answers reply to."""
    *history, last = context
    parts = []
    if history:
        lines = [f"{t['role'].capitalize()}: {t['content']}" for t in history]
        parts.append("[Conversation so far]\n" + "\n\n".join(lines) + "\n[End of conversation so far]\n\n")
    parts.append(f"[Latest user message]\n{last['content']}\n[End of latest user message]\n\n")
    return "".join(parts)


def render_comparison(sample: PairwiseSample) -> str:
    """The conversation and both answers, in the sample's order."""
    return (f"{render_conversation(sample.context)}[Answer A]\n{sample.response_a}\n[End of Answer A]\n\n"
            f"[Answer B]\n{sample.response_b}\n[End of Answer B]")


def judge_messages(sample: PairwiseSample, system: Optional[str] = JUDGE_SYSTEM) -> Messages:
    """The GenRM's chat prompt for one comparison (responses in the sample's order)."""
    user = JUDGE_TEMPLATE.format(comparison=render_comparison(sample))
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


METARM_SYSTEM = "You audit the reasoning of AI judges against expert reference judgments."

METARM_TEMPLATE = """\
An AI judge compared two answers to a conversation and explained its choice. An expert's \
reference judgment of the same comparison states the key points that decide it.

Decide whether the AI judge reached its verdict for the right reasons: its decisive \
reasons must agree with the reference's key points, and it must not rest its decision on a \
reason the reference contradicts or treats as beside the point. Choosing the same answer as \
the reference is not enough on its own.

{comparison}

[Reference judgment]
{reference}
[End of reference judgment]

[AI judge's evaluation]
{rationale}
[End of AI judge's evaluation]

Write a short analysis. Finish with exactly one line, either "Verdict: Correct" when the \
judge's reasons match the reference's key points or "Verdict: Incorrect" when they do not."""


SWAPPED_REFERENCE = ("(The reference judgment was written with the two answers in the other order: its Answer A "
                     "is Answer B above, and its Answer B is Answer A above.)")


def metarm_messages(sample: PairwiseSample, rationale: str, reference: str) -> Messages:
    """The MetaRM's prompt; the answers are in the order the judge saw them, and a sample
    shown swapped (training's A/B balancing) says so, since its golden judgment names the
    answers in the data set's order."""
    if sample.meta.get("swapped"):
        reference = f"{reference}\n{SWAPPED_REFERENCE}"
    user = METARM_TEMPLATE.format(comparison=render_comparison(sample), reference=reference, rationale=rationale)
    return [{"role": "system", "content": METARM_SYSTEM}, {"role": "user", "content": user}]


DECOMPOSE_TEMPLATE = """\
Below is an evaluation in which a judge compared two answers (A and B) to a user's request. \
Break the judge's reasoning into atomic reasons: each one a single, self-contained statement \
of one reason why one answer is better or worse than the other. Leave out the final verdict \
itself, restatements and filler. List at most {max_items} reasons, most important first, one \
per line, numbered "1.", "2.", ...

[Evaluation]
{rationale}
[End of evaluation]"""


def decompose_messages(rationale: str, max_items: int) -> Messages:
    return [{"role": "user", "content": DECOMPOSE_TEMPLATE.format(rationale=rationale, max_items=max_items)}]


MATCH_TEMPLATE = """\
Compare two lists of reasons given for preferring one answer over another. The reference \
reasons come from an expert; the model reasons come from an AI judge.

[Reference reasons]
{reference}

[Model reasons]
{model}

For every reference reason R<i>, find the model reason S<j> that makes the same point most \
fully, and score how completely it does: 1 (the same point), 0.75 (mostly), 0.5 (partly), \
0.25 (barely). If no model reason makes the point, write S0 with score 0. Answer with exactly \
one line per reference reason, in order, between the markers, like this:
{start}
- R1@S2: 0.75
- R2@S0: 0
{end}"""


def match_messages(reference: Sequence[str], model: Sequence[str]) -> Messages:
    ref = "\n".join(f"R{i}. {x}" for i, x in enumerate(reference, start=1))
    mod = "\n".join(f"S{j}. {x}" for j, x in enumerate(model, start=1))
    return [{"role": "user", "content": MATCH_TEMPLATE.format(reference=ref, model=mod, start=RESULT_START,
                                                              end=RESULT_END)}]


# ---------------------------------------------------------------------------- rule-based readers
# Exact judges (the toy world's oracle, the tests' rule responder) read these prompts back.
def section(text: str, name: str) -> str:
    """The body of a ``[name]`` ... ``[End of name]`` block of a prompt ("" if absent)."""
    m = re.search(rf"\[{re.escape(name)}\]\n(.*?)\n\[End of {re.escape(name)}\]", text, re.S | re.I)
    return m.group(1) if m else ""


def exact_match_reply(prompt: str, same: Callable[[str, str], bool]) -> str:
    """A rule-based MetaJudge's answer to a :func:`match_messages` prompt: each reference
    reason matched (score 1) by the first model reason ``same(reference, model)`` accepts,
    else S0, in the format the parser reads."""
    ref = re.findall(r"^R(\d+)\. (.*)$", prompt, re.M)
    mod = re.findall(r"^S(\d+)\. (.*)$", prompt, re.M)
    lines = []
    for i, r in ref:
        j = next((j for j, s in mod if same(r, s)), "0")
        lines.append(f"- R{i}@S{j}: {1 if j != '0' else 0}")
    return f"{RESULT_START}\n" + "\n".join(lines) + f"\n{RESULT_END}"
