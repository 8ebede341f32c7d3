"""Rubric questions about a response (MultiChallenge style): the judge model reads the
conversation, the policy's final answer and one yes/no question about it; the sample passes
when the judge's answer is the expected one.

Records (MultiChallenge's field names by default): ``CONVERSATION`` (turns ending with the
user's), ``TARGET_QUESTION`` (the yes/no question), ``PASS_CRITERIA`` (YES or NO),
``QUESTION_ID``, ``AXIS`` (reported per value). Params rename them (``conversation_field``,
``question_field``, ``expected_field``, ``id_field``, ``category_field``) and set
``parse_retries``. A judge that fails or never answers yes/no fails the sample and is
counted (``judge_call_fail``, ``judge_parse_fail``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from downstream_eval.tasks import Doc, Grade, Task, flatten, regroup
from genrm.records import conversation
from plumbing.data import FieldError

RUBRIC_SYSTEM = ("You grade one answer of an AI assistant. You see the conversation it answered, its final "
                 "answer, and one yes/no question about that answer. Reason briefly about the question only, "
                 "then give your answer as \\boxed{YES} or \\boxed{NO}.")
_YES_NO = re.compile(r"\\?boxed\s*\{\s*(?:\\text\s*\{)?\s*(YES|NO)\b", re.IGNORECASE)
_LAST_WORD = re.compile(r"\b(YES|NO)\b")


def parse_yes_no(text: str) -> Optional[str]:
    """YES/NO from the judge's last boxed answer, else from a final upper-case YES/NO."""
    from genrm.parsing import strip_thinking

    answer = strip_thinking(text or "")
    boxed = _YES_NO.findall(answer)
    if boxed:
        return boxed[-1].upper()
    words = _LAST_WORD.findall(answer[-200:])
    return words[-1] if words else None


def render(context: List[Dict[str, str]], answer: str, question: str) -> str:
    turns = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in context)
    return (f"<conversation>\n{turns}\n</conversation>\n\n<final_answer>\n{answer}\n</final_answer>\n\n"
            f"Question about the final answer: {question}")


@dataclass
class RubricParams:
    conversation_field: str = "CONVERSATION"  # turns ending with the user's
    question_field: str = "TARGET_QUESTION"  # the yes/no question about the answer
    expected_field: str = "PASS_CRITERIA"  # YES or NO
    id_field: str = "QUESTION_ID"  # missing in a record: <task>-<line>
    category_field: str = "AXIS"  # scores reported per value (by_category)
    parse_retries: int = 2  # re-asks of a judge whose answer has no YES/NO


class RubricTask(Task):
    Params = RubricParams
    needs_judge = True
    made_of_grades = Task.made_of_grades + ("by_category",)

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        o = self.params
        c_field, q_field, e_field = o.conversation_field, o.question_field, o.expected_field
        if c_field not in rec:
            raise FieldError(c_field, "missing")
        context = conversation(rec[c_field], c_field)
        if not isinstance(rec.get(q_field), str) or not rec[q_field].strip():
            raise FieldError(q_field, "missing or empty (the yes/no question about the answer)")
        expected = str(rec.get(e_field, "")).strip().upper()
        if expected not in ("YES", "NO"):
            raise FieldError(e_field, f"expected YES or NO, got {rec.get(e_field)!r}")
        rid = str(rec.get(o.id_field, f"{self.cfg.name}-{index}"))
        category = rec.get(o.category_field)
        system = [{"role": "system", "content": self.cfg.system_prompt}] if self.cfg.system_prompt else []
        return Doc(rid, system + context, expected,
                   {"context": context, "question": rec[q_field].strip(), "category": category})

    prompt_name = "rubric"

    def judge_messages(self, doc: Doc, answer: str) -> List[Dict[str, str]]:
        """What the judge is asked about one answer."""
        return [{"role": "system", "content": RUBRIC_SYSTEM},
                {"role": "user", "content": render(doc.meta["context"], answer, doc.meta["question"])}]

    @staticmethod
    def parse_verdict(text: str) -> Optional[str]:
        return parse_yes_no(text)

    def judge_prompt(self) -> str:
        import json

        probe = Doc("probe", [], "YES", {"context": [{"role": "user", "content": "{turn}"}], "question": "{question}"})
        return json.dumps(self.judge_messages(probe, "{answer}"), sort_keys=True)

    def grade(self, items: Sequence[tuple]) -> List[List[Grade]]:
        from plumbing.llm.parsed import complete_parsed
        from plumbing.llm.types import ChatRequest, SamplingParams

        backend = self.ctx["judge"]
        sampling = SamplingParams.from_config(self.ctx["judge_sampling"])
        jobs = flatten(items)
        requests = [ChatRequest.of(self.judge_messages(doc, out), sampling) for doc, out in jobs]
        answers = complete_parsed(backend, requests, self.parse_verdict, self.params.parse_retries)
        grades = []
        for (doc, _), a in zip(jobs, answers):
            detail = {"judge_raw": a.raw, "judge_status": a.status, "category": doc.meta["category"]}
            if not a.ok:
                grades.append(Grade(0.0, None, f"judge_{a.status}", detail))
                continue
            ok = a.value == doc.target
            grades.append(Grade(1.0 if ok else 0.0, a.value, "pass" if ok else "fail", detail))
        return regroup(items, grades)

    def summarize(self, grades: Sequence[Sequence[Grade]]) -> Dict[str, Any]:
        out = super().summarize(grades)
        flat = [g for gs in grades for g in gs]
        out["judge_call_fail"] = sum(g.verdict == "judge_call_fail" for g in flat)
        out["judge_parse_fail"] = sum(g.verdict == "judge_parse_fail" for g in flat)
        out["judge_verdicts"] = sum("judge_status" in g.detail for g in flat)
        by: Dict[str, List[float]] = {}
        for gs in grades:
            if gs and gs[0].detail.get("category") is not None:
                by.setdefault(str(gs[0].detail["category"]), []).append(sum(g.score for g in gs) / len(gs))
        if by:
            out["by_category"] = {k: sum(v) / len(v) for k, v in sorted(by.items())}
        return out
