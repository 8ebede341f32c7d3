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

_TAG = re.compile(r"#[a-z0-9_]+")


def _section(text: str, name: str) -> str:
    m = re.search(rf"\[{re.escape(name)}\]\n(.*?)\n\[End of {re.escape(name)}\]", text, re.S | re.I)
    return m.group(1) if m else ""


def rule_responder(body: Dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if "[Reference judgment]" in text:
        reference, evaluation = _section(text, "reference judgment"), _section(text, "AI judge's evaluation")
        if "<<garbage>>" in reference:
            return "I cannot tell."
        shared = set(_TAG.findall(reference)) & set(_TAG.findall(evaluation))
        return f"Shared reasons: {sorted(shared)}.\nVerdict: {'Correct' if shared else 'Incorrect'}"
    if "[Reference reasons]" in text:
        ref = re.findall(r"^R(\d+)\. (.*)$", text, re.M)
        mod = re.findall(r"^S(\d+)\. (.*)$", text, re.M)
        lines = []
        for i, r in ref:
            tags = set(_TAG.findall(r))
            j = next((j for j, s in mod if tags & set(_TAG.findall(s))), "0")
            lines.append(f"- R{i}@S{j}: {1 if j != '0' else 0}")
        return "<RESULT_START>\n" + "\n".join(lines) + "\n<RESULT_END>"
    if "[Evaluation]" in text:
        tags = _TAG.findall(_section(text, "Evaluation"))
        return "\n".join(f"{k}. The better answer shows {t}." for k, t in enumerate(tags, start=1))
    if "[Answer A]" in text:
        a, b = _section(text, "Answer A"), _section(text, "Answer B")
        if "<<garbage>>" in a + b:
            return "Both answers have merits and flaws."
        pick, chosen = ("B", b) if "<<good>>" in b and "<<good>>" not in a else ("A", a)
        reasons = " ".join(_TAG.findall(chosen)) or "no particular reason"
        return f"Answer {pick} is better because of {reasons}.\n\\boxed{{{pick}}}"
    return "I do not understand the request."
