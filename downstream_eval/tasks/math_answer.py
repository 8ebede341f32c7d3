"""Short-answer math (AIME-style integers, MATH-style expressions), graded with math-verify.

Records: ``problem`` and ``answer`` (params ``question_field``, ``answer_field``,
``id_field`` rename them). The model is asked for its final answer in ``\\boxed{}`` (param
``instruction`` replaces that request; ``""`` asks nothing, for models tuned to a fixed answer
form); the last boxed answer (after thinking) is read, or failing that the last
"answer: ..." / "the answer is ..." line.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any, Dict, Optional

from downstream_eval.tasks import Doc, Grade, Task
from genrm.parsing import boxed
from plumbing.data import FieldError

INSTRUCTION = "\n\nReason step by step, then give your final answer within \\boxed{}."
_ANSWER_LINE = re.compile(r"(?:final answer|answer)\s*(?:is|:)\s*\$?([^\n$]+?)\$?\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)


def extract_answer(text: str) -> Optional[str]:
    boxes = [b.strip() for b in boxed(text or "")]
    if boxes:
        return boxes[-1]
    lines = _ANSWER_LINE.findall(text or "")
    return lines[-1].strip() if lines else None


def equivalent(gold: str, answer: str) -> bool:
    """math-verify: numeric, symbolic and set equality (1/2 == 0.5, x^2+2x == x(x+2))."""
    from math_verify import parse, verify

    # math-verify's timeouts use signal.alarm, which only the main thread may set; grading
    # runs in a worker thread, where the calls go without them.
    limit = 5 if threading.current_thread() is threading.main_thread() else None
    wrap = lambda s: s if "$" in s or "\\boxed" in s else f"${s}$"  # noqa: E731
    gold_p, ans_p = parse(wrap(str(gold)), parsing_timeout=limit), parse(wrap(answer), parsing_timeout=limit)
    if not gold_p or not ans_p:
        return str(gold).strip() == answer.strip()
    return bool(verify(gold_p, ans_p, timeout_seconds=limit))


@dataclass
class MathParams:
    question_field: str = "problem"
    answer_field: str = "answer"
    id_field: str = "id"  # missing in a record: <task>-<line>
    instruction: str = INSTRUCTION  # appended to the question; "" asks nothing


class MathTask(Task):
    Params = MathParams

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
        answer = extract_answer(output)
        if answer is None:
            return Grade(0.0, None, "no_answer")
        try:
            ok = equivalent(doc.target, answer)
        except Exception as e:  # math-verify has timeouts and parser edge cases: a wrong answer, not a crash
            return Grade(0.0, answer, "error", {"error": f"{type(e).__name__}: {e}"})
        return Grade(1.0 if ok else 0.0, answer, "correct" if ok else "wrong")
