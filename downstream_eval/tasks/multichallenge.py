"""MultiChallenge (Sirdeshmukh et al., 2025, arXiv 2501.17399) scored by its published protocol,
as its evaluation code (github.com/ekwinox117/multi-challenge: ``src/evaluator.py``,
``src/result_parser.py``) defines it:

- the judge sees the policy's final response and the conversation's instance-level rubric
  question (``TARGET_QUESTION``) only, not the conversation, and is told to judge strictly;
  it reasons, then gives a YES/NO verdict (the benchmark's judge: GPT-4o-2024-08-06 at
  temperature 0, structured output; here the stage's ``llm@judge``);
- an attempt passes when the verdict equals the conversation's ``PASS_CRITERIA``; a judge
  that fails or never says YES/NO fails the attempt (the benchmark records such an attempt
  as verdict NO, passed false), counted as ``judge_call_fail`` / ``judge_parse_fail``;
- a conversation passes when any of its attempts (``n_samples``, the benchmark's
  ``--attempts``, default 1) passes;
- the score of an axis (``AXIS``: inference memory, instruction retention, self-coherence,
  reliable version editing) is the fraction of its conversations that pass, and the reported
  score is the mean of the axis scores (a macro average; ``pass_rate_micro`` is the fraction
  of all conversations). Its interval is a bootstrap that resamples conversations within
  each axis.

The generic yes/no rubric kind (``tasks/rubric.py``: the judge sees the conversation too,
scores averaged over samples and conversations) stays as it was, for ``smoke_rubric``.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from downstream_eval.tasks import Doc, Grade, Task
from downstream_eval.tasks.rubric import RubricTask, parse_yes_no

PROMPT = ("You check one response written by an AI assistant against one criterion. The criterion is a "
          "question about the response that is answered YES or NO. Judge strictly: anything the criterion "
          "asks for that the response does not clearly do means it is not met.\n\n"
          "<response>\n{response}\n</response>\n\n"
          "<criterion>\n{criterion}\n</criterion>\n\n"
          "First explain your reasoning. Then end with one line that is exactly \"VERDICT: YES\" or "
          "\"VERDICT: NO\".")
_VERDICT = re.compile(r"verdict\W{0,4}(YES|NO)\b", re.IGNORECASE)


def parse_verdict(text: str) -> Optional[str]:
    """YES/NO from the judge's last ``VERDICT: ...`` (also ``"verdict": "YES"`` of a JSON reply),
    else the generic rubric reading (a boxed or final upper-case YES/NO)."""
    from genrm.parsing import strip_thinking

    found = _VERDICT.findall(strip_thinking(text or ""))
    return found[-1].upper() if found else parse_yes_no(text)


def _by_axis(passed: Sequence[float], axes: Sequence[str]) -> Dict[str, List[float]]:
    by: Dict[str, List[float]] = {}
    for p, a in zip(passed, axes):
        by.setdefault(a, []).append(p)
    return dict(sorted(by.items()))


def macro_by_axis(passed: Sequence[float], axes: Sequence[str]) -> Dict[str, float]:
    """Fraction of conversations passed per axis."""
    return {a: float(np.mean(v)) for a, v in _by_axis(passed, axes).items()}


def stratified_interval(passed: Sequence[float], axes: Sequence[str], rounds: int, seed: int,
                        alpha: float) -> Optional[List[float]]:
    """Percentile bootstrap of the mean of axis scores: each round resamples every axis's
    conversations (with replacement, keeping its size) and averages the axis means."""
    groups = [np.asarray(v, float) for v in _by_axis(passed, axes).values()]
    if not groups or not rounds:
        return None
    rng = np.random.default_rng(seed)
    draws = np.mean([rng.choice(g, size=(rounds, len(g))).mean(axis=1) for g in groups], axis=0)
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return [float(lo), float(hi)]


class MultiChallengeTask(RubricTask):
    made_of_grades = Task.made_of_grades + ("by_axis", "pass_rate_micro")
    prompt_name = "multichallenge"

    def judge_messages(self, doc: Doc, answer: str) -> List[Dict[str, str]]:
        return [{"role": "user", "content": PROMPT.format(response=answer, criterion=doc.meta["question"])}]

    @staticmethod
    def parse_verdict(text: str) -> Optional[str]:
        return parse_verdict(text)

    def no_output_grade(self, doc: Doc, verdict: str) -> Grade:
        """Failed in its own axis, as the benchmark records a conversation without a response
        (verdict NO, passed false): not an axis of its own."""
        return Grade(0.0, None, verdict, {"category": doc.meta["category"]})

    def summarize(self, grades: Sequence[Sequence[Grade]]) -> Dict[str, Any]:
        from genrm.settings import BootstrapSettings

        out = Task.summarize(self, grades)
        flat = [g for gs in grades for g in gs]
        out["judge_call_fail"] = sum(g.verdict == "judge_call_fail" for g in flat)
        out["judge_parse_fail"] = sum(g.verdict == "judge_parse_fail" for g in flat)
        out["judge_verdicts"] = sum("judge_status" in g.detail for g in flat)
        graded = [gs for gs in grades if gs]
        passed = [float(any(g.score >= 1 for g in gs)) for gs in graded]  # any attempt passes
        axes = [str(gs[0].detail.get("category") or "all") for gs in graded]
        if not passed:
            return out
        by_axis = macro_by_axis(passed, axes)
        b = self.ctx.get("bootstrap") or BootstrapSettings()
        out["by_axis"] = by_axis
        out["score"] = float(np.mean(list(by_axis.values())))
        out["score_ci"] = stratified_interval(passed, axes, b.samples, b.seed, b.alpha)
        out["pass_rate_micro"] = float(np.mean(passed))
        out["conversations_passed"] = int(sum(passed))
        return out
