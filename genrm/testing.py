"""A rule-following stand-in for GenRM, MetaRM and MetaJudge models, for tests and
benchmarks that need exact, known answers (serve it with
:class:`plumbing.testing.loopback.LoopbackServer`).

It reads the suite's own prompts:
- judge prompt: picks the answer that contains ``<<good>>`` (A when neither does) and
  gives as its reason every ``#tag`` of the picked answer; ``<<garbage>>`` in an answer
  makes it write no verdict at all.
- MetaRM prompt: ``Correct`` when the judge's evaluation shares a ``#tag`` with the
  reference judgment, else ``Incorrect``; ``<<garbage>>`` in the reference: no verdict.
- decomposition prompt: one item per ``#tag`` in the evaluation.
- matching prompt: each reference item matches the first model item with the same
  ``#tag`` (score 1), else S0.
"""

from __future__ import annotations

import re
from typing import Any, Dict

from genrm.prompts import exact_match_reply, section

_TAG = re.compile(r"#[a-z0-9_]+")


def rule_responder(body: Dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if "[Reference judgment]" in text:
        reference, evaluation = section(text, "reference judgment"), section(text, "AI judge's evaluation")
        if "<<garbage>>" in reference:
            return "I cannot tell."
        shared = set(_TAG.findall(reference)) & set(_TAG.findall(evaluation))
        return f"Shared reasons: {sorted(shared)}.\nVerdict: {'Correct' if shared else 'Incorrect'}"
    if "[Reference reasons]" in text:
        return exact_match_reply(text, lambda r, s: bool(set(_TAG.findall(r)) & set(_TAG.findall(s))))
    if "[Evaluation]" in text:
        tags = _TAG.findall(section(text, "Evaluation"))
        return "\n".join(f"{k}. The better answer shows {t}." for k, t in enumerate(tags, start=1))
    if "[Answer A]" in text:
        a, b = section(text, "Answer A"), section(text, "Answer B")
        if "<<garbage>>" in a + b:
            return "Both answers have merits and flaws."
        pick, chosen = ("B", b) if "<<good>>" in b and "<<good>>" not in a else ("A", a)
        reasons = " ".join(_TAG.findall(chosen)) or "no particular reason"
        return f"Answer {pick} is better because of {reasons}.\n\\boxed{{{pick}}}"
    return "I do not understand the request."
