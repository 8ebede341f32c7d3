"""Short-answer math (AIME-style integers, MATH-style expressions), graded with math-verify.

Records: ``problem`` and ``answer`` (params ``question_field``, ``answer_field``,
``id_field`` rename them). The model is asked for its final answer in ``\\boxed{}`` (param
``instruction`` replaces that request; ``""`` asks nothing, for models tuned to a fixed answer
form); the last boxed answer (after thinking) is read, or failing that the last
"answer: ..." / "the answer is ..." line. Equivalence is math-verify's, each check in a worker
process with a hard time limit (param ``timeout_s``; :mod:`downstream_eval.math_verifier`): an
answer whose check overruns is wrong, with the verdict ``timeout`` (counted as ``grade_timeout``).

Sampled tasks (``n_samples`` = k > 1) score avg@k, the mean over problems of the fraction of
their k samples that are right (pass@1 estimated from k samples), reported also as ``avg@<k>``;
``pass_k`` adds pass@k by the unbiased estimator (Chen et al., 2021), both with bootstrap
intervals over problems.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from downstream_eval.tasks import Doc, Grade, ParallelTask
from genrm.parsing import boxed
from plumbing.config.schema import Problems, check_positive
from plumbing.data import FieldError

INSTRUCTION = "\n\nReason step by step, then give your final answer within \\boxed{}."
_ANSWER_LINE = re.compile(r"(?:final answer|answer)\s*(?:is|:)\s*\$?([^\n$]+?)\$?\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)


def extract_answer(text: str) -> Optional[str]:
    boxes = [b.strip() for b in boxed(text or "")]
    if boxes:
        return boxes[-1]
    lines = _ANSWER_LINE.findall(text or "")
    return lines[-1].strip() if lines else None


@dataclass
class MathParams:
    question_field: str = "problem"
    answer_field: str = "answer"
    id_field: str = "id"  # missing in a record: <task>-<line>
    instruction: str = INSTRUCTION  # appended to the question; "" asks nothing
    timeout_s: float = 10.0  # wall-clock limit of one answer's math-verify check; past it: wrong (timeout)

    def check(self) -> Problems:
        p: Problems = []
        check_positive(p, "timeout_s", self.timeout_s)
        return p


class MathTask(ParallelTask):
    """Answers checked several at once (``ctx['workers']`` threads, as many verifier processes)."""

    Params = MathParams

    def grader_version(self) -> str:
        return "2"  # math-verify in a killed-on-timeout worker, its own timeouts off

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        o = self.params
        q_field, a_field = o.question_field, o.answer_field
        if not isinstance(rec.get(q_field), str) or not rec[q_field].strip():
            raise FieldError(q_field, "missing or empty")
        if rec.get(a_field) is None or str(rec[a_field]).strip() == "":
            raise FieldError(a_field, "missing")
        rid = rec.get(o.id_field, f"{self.cfg.name}-{index}")
        return Doc(str(rid), self.prompt(rec[q_field].strip() + o.instruction), str(rec[a_field]).strip())

    def grade_one(self, doc: Doc, output: str) -> Grade:
        from downstream_eval import math_verifier

        answer = extract_answer(output)
        if answer is None:
            return Grade(0.0, None, "no_answer")
        workers = self.ctx.get("workers") or max(2, os.cpu_count() or 2)
        verdict, error = math_verifier.check(str(doc.target), answer, self.params.timeout_s, workers)
        return Grade(1.0 if verdict == "correct" else 0.0, answer, verdict, {"error": error} if error else {})

    def cacheable(self, grade: Grade) -> bool:
        """A timeout (it depends on the machine's load) or a dead worker is no verdict on the
        answer: a rerun checks it again."""
        return grade.verdict not in ("timeout", "grader_error") and super().cacheable(grade)

    def summarize(self, grades: Sequence[Sequence[Grade]]) -> Dict[str, Any]:
        out = super().summarize(grades)
        out["grade_timeout"] = sum(g.verdict == "timeout" for gs in grades for g in gs)
        if self.cfg.n_samples > 1:
            out[f"avg@{self.cfg.n_samples}"] = out["score"]
        return out
