"""Instruction following (IFEval; IFBench-style records whose instructions have a checker),
graded with lm-eval's IFEval instruction checkers: prompt- and instruction-level, strict
and loose.

Records: ``key``, ``prompt``, ``instruction_id_list``, ``kwargs`` (a list, one dict per
instruction), as in google/IFEval. Each instruction is checked on its own: one whose id has
no checker (e.g. an IFBench-only instruction) or whose checker fails is reported as
unchecked instead of failing the prompt. NLTK's sentence model comes from a local file
(downstream_eval/nltk_offline.py). The task score is prompt-level strict accuracy.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

from downstream_eval.tasks import Doc, Grade, Task
from plumbing.data import FieldError


def checkers() -> Any:
    from downstream_eval.nltk_offline import ensure_punkt

    ensure_punkt()  # before lm-eval imports nltk and looks for punkt_tab
    from lm_eval.tasks.ifeval import instructions_registry, utils

    return instructions_registry.INSTRUCTION_DICT, utils


def check(doc: Doc, response: str) -> Dict[str, List[Any]]:
    """Per instruction: strict and loose verdicts, or the reason it could not be checked."""
    registry, utils = checkers()
    strict, loose, unchecked = [], [], []
    for iid, kwargs in zip(doc.target["instruction_id_list"], doc.target["kwargs"]):
        if iid not in registry:
            unchecked.append(f"{iid}: no checker")
            continue
        example = utils.InputExample(key=0, instruction_id_list=[iid], prompt=doc.meta["prompt"], kwargs=[kwargs or {}])
        try:
            s = utils.test_instruction_following_strict(example, response).follow_all_instructions
            lo = utils.test_instruction_following_loose(example, response).follow_all_instructions
        except Exception as e:  # a checker that cannot run here (missing data, bad kwargs)
            unchecked.append(f"{iid}: {type(e).__name__}: {str(e)[:120]}")
            continue
        strict.append(bool(s))
        loose.append(bool(lo))
    return {"strict": strict, "loose": loose, "unchecked": unchecked}


class IFEvalTask(Task):
    """No params: the records carry each prompt's instructions and their arguments."""

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        if not isinstance(rec.get("prompt"), str) or not rec["prompt"].strip():
            raise FieldError("prompt", "missing or empty")
        ids, kwargs = rec.get("instruction_id_list"), rec.get("kwargs")
        if not isinstance(ids, list) or not ids:
            raise FieldError("instruction_id_list", "expected a non-empty list")
        if not isinstance(kwargs, list) or len(kwargs) != len(ids):
            raise FieldError("kwargs", "expected one dict per instruction")
        clean = [{k: v for k, v in (kw or {}).items() if v is not None} for kw in kwargs]
        return Doc(str(rec.get("key", index)), self.prompt(rec["prompt"]),
                   {"instruction_id_list": ids, "kwargs": clean}, {"prompt": rec["prompt"]})

    def grade_one(self, doc: Doc, output: str) -> Grade:
        v = check(doc, output)
        if not v["strict"]:
            return Grade(0.0, None, "unchecked", v)
        ok = all(v["strict"])
        return Grade(1.0 if ok else 0.0, None, "followed" if ok else "not_followed", v)

    def summarize(self, grades: Sequence[Sequence[Grade]]) -> Dict[str, Any]:
        checked = [[g for g in gs if g.verdict != "unchecked"] for gs in grades]
        out = super().summarize([gs for gs in checked if gs])
        flat = [g for gs in checked for g in gs]
        # an output that never came (call_fail, missing) fails its prompt; it has no per-instruction results
        inst_strict = [x for g in flat for x in g.detail.get("strict", [])]
        inst_loose = [x for g in flat for x in g.detail.get("loose", [])]
        out.update(
            prompt_level_strict=out["score"],
            prompt_level_loose=sum(all(g.detail.get("loose", [False])) for g in flat) / len(flat) if flat else None,
            inst_level_strict=sum(inst_strict) / len(inst_strict) if inst_strict else None,
            inst_level_loose=sum(inst_loose) / len(inst_loose) if inst_loose else None,
            unchecked_instructions=sum(len(g.detail.get("unchecked", [])) for gs in grades for g in gs),
            unchecked_prompts=sum(1 for gs in checked if not gs),
        )
        return out
