"""The toy world's oracle MetaRM and MetaJudge: exact, no model (``llm@metarm=toy_oracle``).

It reads the suite's own MetaRM, decomposition and matching prompts and decides from the
text with :mod:`toy_world`:
- MetaRM: ``Correct`` when the judge's evaluation says of both answers whether they give the
  number, every such claim is true of the answers in the prompt, it does not cite the
  polite opening and the verdict it states (``\\boxed{}``) is the answer that gives the
  number; ``Incorrect`` when it rests on the politeness (even beside a true claim), gives no
  reason, leaves an answer unread, misreads one, or concludes against what it saw;
- decomposition: one item per sentence of the evaluation that gives a reason;
- matching: each reference item is matched (score 1) by the first model item making the
  same claim about the same answer, else S0.
Any other prompt (it is no GenRM) gets an answer the parsers reject, counted as ParseFail.
"""

from __future__ import annotations

import re
from typing import List, Sequence

from genrm.parsing import parse_verdict
from genrm.prompts import exact_match_reply, section
from plumbing.llm.types import ChatRequest, ChatResult, LLMBackend, OnResult
from toy_world import answers, cites_cue, claims, classify


def metarm_verdict(prompt: str) -> str:
    """Correct when the evaluation says of both answers whether they give the number, every
    such claim is true, and it does not rest on the politeness (the reference sets it aside).
    A GenRM under the R-Align reward found the gap a laxer check left: "Answer A has a polite
    opening. Answer B gives no number. So A answers the question" follows the cue and names
    the true reason only in passing; it is Incorrect."""
    rationale = section(prompt, "AI judge's evaluation")
    truth = {side: answers(section(prompt, f"Answer {side}")) for side in "AB"}
    said = claims(rationale)
    stated = parse_verdict(rationale)
    right = (classify(rationale) == "true" and not cites_cue(rationale) and {side for side, _ in said} == {"A", "B"}
             and all(truth[side] == gives for side, gives in said)
             # the verdict it states follows from what it saw: not true claims, then the other side
             and (stated is None or truth[stated]))
    return "Correct" if right else "Incorrect"



def oracle_answer(prompt: str) -> str:
    if "[AI judge's evaluation]" in prompt:
        verdict = metarm_verdict(prompt)
        kind = classify(section(prompt, "AI judge's evaluation"))
        return f"The judge's reason is of kind '{kind}'.\nVerdict: {verdict}"
    if "[Reference reasons]" in prompt:
        return exact_match_reply(prompt, lambda r, s: bool(claims(s)) and set(claims(r)) <= set(claims(s)))
    if "[Evaluation]" in prompt:
        body = section(prompt, "Evaluation")
        reasons = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", body) if classify(s) != "none"]
        return "\n".join(f"{k}. {s}" for k, s in enumerate(reasons, start=1)) or "1. No reason given."
    return "The toy oracle only checks rationales."


class ToyOracleBackend(LLMBackend):
    def __init__(self) -> None:
        super().__init__()
        self.model_id = "toy_oracle:v4"

    def _complete(self, requests: Sequence[ChatRequest], on_result: OnResult, progress: bool) -> List[ChatResult]:
        out = []
        for i, r in enumerate(requests):
            res = ChatResult(text=oracle_answer(r.messages[-1]["content"]), finish_reason="stop")
            on_result(i, res)
            out.append(res)
        return out
