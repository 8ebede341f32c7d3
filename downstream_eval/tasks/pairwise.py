"""General chat (Arena-Hard / WildBench style): a judge model compares the
policy's answer with a baseline answer, in both orders; the task score is the win rate
(win 1, loss 0, split 0.5; a judge failure or no verdict counts ``neutral``) with a
bootstrap interval, and optionally a length-controlled win rate. (MultiChallenge asks rubric
questions about the answer instead: ``tasks/rubric.py``.)

Records: ``question`` (or a ``conversation`` [{role, content}] ending with the user's turn),
``baseline`` (the baseline model's answer), ``id``. Params (:class:`PairwiseParams`) rename
them (``question_field``, ``baseline_field``, ``id_field``; a dotted name reaches into a nested
field, e.g. WildBench's ``references.gpt-4``); ``neutral``; ``length_control``. Baseline
answers kept in a file of their own (Arena-Hard's ``model_answer/<model>.jsonl``) are joined
by id: ``baseline_path``, ``baseline_id_field`` (default: ``id_field``), and
``baseline_field`` read in that file (``messages.-1.content.answer``). The judge
is the stage's ``llm@judge``, asked with the GenRM judge prompt for ``\\boxed{A}``/``\\boxed{B}``;
a judge call that fails or gives no verdict counts ``neutral`` and is reported
(``judge_call_fail``, ``judge_parse_fail``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from downstream_eval.tasks import Doc, Grade, Task, flatten, regroup
from genrm.records import conversation
from plumbing.data import FieldError


def length_controlled(wins: Sequence[float], length_diff: Sequence[float]) -> float:
    """Win rate at equal length: logistic regression of the win on the normalised length
    difference (policy minus baseline), read at difference 0 (ties as half wins)."""
    y = np.asarray(wins, float)
    x = np.asarray(length_diff, float)
    x = (x - 0.0) / (np.std(x) or 1.0)
    X = np.stack([np.ones_like(x), x], axis=1)
    w = np.zeros(2)
    for _ in range(50):  # Newton steps, lightly regularised so separable data stays finite
        p = 1 / (1 + np.exp(-X @ w))
        grad = X.T @ (y - p) - 1e-3 * w
        hess = -(X.T * (p * (1 - p))) @ X - 1e-3 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(1 / (1 + np.exp(-w[0])))


def field_at(rec: Any, name: str) -> Any:
    """``rec[name]``, or a nested value for a dotted name: ``references.gpt-4``,
    ``messages.-1.content.answer`` (integers index lists)."""
    if isinstance(rec, dict) and name in rec:
        return rec[name]
    value: Any = rec
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


BASELINE_RECORD = "__baseline_record__"


@dataclass
class PairwiseParams:
    question_field: Optional[str] = None  # null: ``conversation``, else ``question``
    baseline_field: str = "baseline"  # in the record, or in the baseline_path file's records
    id_field: str = "id"  # missing in a record: <task>-<line>
    baseline_path: Optional[str] = None  # baseline answers in a file of their own, joined by id
    baseline_id_field: Optional[str] = None  # the id in that file; null: id_field
    neutral: float = field(default=0.5, metadata={"range": (0.0, 1.0)})  # a split or failed order
    length_control: bool = False  # also report the length-controlled win rate


class PairwiseTask(Task):
    Params = PairwiseParams
    needs_judge = True
    made_of_grades = Task.made_of_grades + ("win_rate", "by_category")

    def raw_records(self) -> List[Tuple[int, Dict[str, Any]]]:
        rows = super().raw_records()
        o = self.params
        if not o.baseline_path:
            return rows
        from plumbing.data import InputError, iter_raw

        path, id_field = o.baseline_path, o.id_field
        join = o.baseline_id_field or id_field
        answers: Dict[str, Any] = {}
        for line, rec, err in iter_raw(path):
            if err is not None:
                raise err
            key = field_at(rec, join)
            if key is None:
                raise InputError(path, line, join, "missing (the id that joins a baseline answer to its question)")
            answers[str(key)] = rec
        return [(line, {**rec, BASELINE_RECORD: answers.get(str(field_at(rec, id_field)))}) for line, rec in rows]

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        o = self.params
        q_field = o.question_field or ("conversation" if "conversation" in rec else "question")
        b_field = o.baseline_field
        question = field_at(rec, q_field)
        if BASELINE_RECORD in rec:
            if rec[BASELINE_RECORD] is None:
                raise FieldError(o.id_field, f"no baseline answer with this id in {o.baseline_path}")
            baseline = field_at(rec[BASELINE_RECORD], b_field)
        else:
            baseline = field_at(rec, b_field)
        if question is None:
            raise FieldError(q_field, "missing")
        context = conversation(question, q_field)
        if not isinstance(baseline, str) or not baseline.strip():
            raise FieldError(b_field, "missing or empty (the baseline answer)")
        rid = str(field_at(rec, o.id_field) or f"{self.cfg.name}-{index}")
        system = [{"role": "system", "content": self.cfg.system_prompt}] if self.cfg.system_prompt else []
        return Doc(rid, system + context, baseline, {"context": context})

    prompt_name = "genrm-pairwise"

    def judge_prompt(self) -> str:
        """The GenRM judge prompt (``genrm.prompts``) on placeholders."""
        import json

        from genrm.prompts import judge_messages
        from genrm.records import PairwiseSample

        probe = PairwiseSample("probe", [{"role": "user", "content": "{turn}"}], "{answer A}", "{answer B}")
        return json.dumps(judge_messages(probe), sort_keys=True)

    def grade(self, items: Sequence[tuple]) -> List[List[Grade]]:
        from genrm.judging import judge
        from genrm.parsing import strip_thinking
        from genrm.records import PairwiseSample
        from plumbing.llm.types import SamplingParams

        backend = self.ctx["judge"]
        neutral = self.params.neutral
        jobs = flatten(items)
        samples = [PairwiseSample(f"{doc.id}:{k}", doc.meta["context"], out, strip_thinking(doc.target))
                   for k, (doc, out) in enumerate(jobs)]
        judgments = judge(backend, samples, SamplingParams.from_config(self.ctx["judge_sampling"]), swap=True)
        grades = []
        for (doc, out), j in zip(jobs, judgments):
            wins = [neutral if p is None else float(p == "A") for p in (j.pred, j.pred_swapped)]
            score = sum(wins) / 2
            verdict = ("no_verdict" if j.pred is None and j.pred_swapped is None
                       else "win" if score == 1 else "loss" if score == 0 else "split")
            status = ["call_fail" if err else "parse_fail" if p is None else "ok"
                      for p, err in ((j.pred, j.error), (j.pred_swapped, j.error_swapped))]
            grades.append(Grade(score, f"{j.pred or '-'}|{j.pred_swapped or '-'}", verdict,
                                {"orders": [j.pred, j.pred_swapped], "judge_status": status,
                                 "length_diff": len(out) - len(doc.target), "judge_raw": [j.raw, j.raw_swapped]}))
        return regroup(items, grades)

    def cacheable(self, grade: Grade) -> bool:
        return "call_fail" not in grade.detail.get("judge_status", [])

    def summarize(self, grades: Sequence[Sequence[Grade]]) -> Dict[str, Any]:
        out = super().summarize(grades)
        out["win_rate"], out["win_rate_ci"] = out["score"], out.get("score_ci")
        status = [st for gs in grades for g in gs for st in g.detail.get("judge_status", [])]
        out["judge_call_fail"], out["judge_parse_fail"] = status.count("call_fail"), status.count("parse_fail")
        out["judge_verdicts"] = len(status)
        if self.params.length_control:
            flat = [g for gs in grades for g in gs]
            out["win_rate_length_controlled"] = length_controlled([g.score for g in flat],
                                                                  [g.detail["length_diff"] for g in flat])
        return out
