"""IFBench (allenai/IFBench_test: 300 prompts, 58 instruction types), scored as its authors
do (``evaluation_lib.py`` of allenai/IFBench): every instruction checked, strict on the
response as given (an empty one fails), loose passing if any of eight variants passes (the
response, without its first line, last line or both, each with and without ``*``);
prompt level: all of a prompt's instructions followed; instruction level: over all
instructions. The paper reports prompt-level loose accuracy, the default score here.

Checks: IFBench's own in :mod:`downstream_eval.ifbench_checks`; an IFEval id (IFBench's
registry holds those too) goes to lm-eval's IFEval checker. An id with neither, missing
kwargs or a check that raises is *unchecked*: it counts as not followed (the denominators
stay the authors') and is counted and named in the summary (``unchecked_instructions``,
``unchecked_ids``), never passed. ``words:start_verb`` without NLTK's tagger model is
graded by a stand-in and counted under ``approximate_instructions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from downstream_eval.tasks import Doc, Grade, Task
from plumbing.config.schema import Problems, check_choice
from plumbing.data import FieldError

LEVELS = ("prompt_level_loose", "prompt_level_strict")


def loose_variants(response: str) -> List[str]:
    """The authors' eight readings of a response, the response itself first."""
    lines = response.split("\n")
    cut = ["\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return [response, response.replace("*", ""), *cut, *(c.replace("*", "") for c in cut)]


def _ifeval_check(iid: str, kwargs: Dict[str, Any], prompt: str) -> Optional[Any]:
    """A check function for an IFEval id from lm-eval's registry, or None."""
    from downstream_eval.tasks.ifeval import checkers

    registry, _ = checkers()
    if iid not in registry:
        return None
    inst = registry[iid](iid)
    inst.build_description(**kwargs)
    args = inst.get_instruction_args()
    if args and "prompt" in args:
        inst.build_description(prompt=prompt)
    return lambda text, _a: bool(inst.check_following(text))


def check(ids: Sequence[str], kwargs: Sequence[Dict[str, Any]], prompt: str, response: str) -> Dict[str, Any]:
    """Per instruction: strict and loose verdict (None: unchecked), and why unchecked."""
    from downstream_eval import ifbench_checks as ib

    variants = [v for v in loose_variants(response) if v.strip()]
    strict: List[Optional[bool]] = []
    loose: List[Optional[bool]] = []
    unchecked, approximate = [], []
    for iid, kw in zip(ids, kwargs):
        try:
            if iid in ib.CHECKS:
                missing = [k for k in ib.REQUIRED[iid] if kw.get(k) is None]
                if missing:
                    raise ValueError(f"missing kwargs {missing}")
                fn = ib.CHECKS[iid]
            else:
                fn = _ifeval_check(iid, kw, prompt)
                if fn is None:
                    raise LookupError("no checker for this id")
            s = bool(response.strip()) and fn(response, kw)
            lo = s or any(fn(v, kw) for v in variants[1:])
        except Exception as e:  # bad kwargs or a check that cannot run: reported, never passed
            unchecked.append({"id": iid, "why": f"{type(e).__name__}: {str(e)[:120]}"})
            strict.append(None)
            loose.append(None)
            continue
        strict.append(bool(s))
        loose.append(bool(lo))
        if iid == "words:start_verb" and not ib.start_verb_exact():
            approximate.append(iid)
    return {"ids": list(ids), "strict": strict, "loose": loose, "unchecked": unchecked, "approximate": approximate}


@dataclass
class IFBenchParams:
    score: str = "prompt_level_loose"  # the task score: the paper's (loose) or prompt_level_strict

    def check(self) -> Problems:
        p: Problems = []
        check_choice(p, "score", self.score, LEVELS)
        return p


class IFBenchTask(Task):
    """Records as allenai/IFBench_test: ``key``, ``prompt``, ``instruction_id_list``,
    ``kwargs`` (one dict per instruction; nulls are dropped as the authors do)."""

    Params = IFBenchParams

    def grader_version(self) -> str:
        return "1"

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        if not isinstance(rec.get("prompt"), str) or not rec["prompt"].strip():
            raise FieldError("prompt", "missing or empty")
        ids, kwargs = rec.get("instruction_id_list"), rec.get("kwargs")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise FieldError("instruction_id_list", "expected a non-empty list of ids")
        if not isinstance(kwargs, list) or len(kwargs) != len(ids):
            raise FieldError("kwargs", "expected one dict (or null) per instruction")
        clean = [{k: v for k, v in (kw or {}).items() if v is not None} for kw in kwargs]
        return Doc(str(rec.get("key", index)), self.prompt(rec["prompt"]),
                   {"instruction_id_list": ids, "kwargs": clean}, {"prompt": rec["prompt"]})

    def grade_one(self, doc: Doc, output: str) -> Grade:
        v = check(doc.target["instruction_id_list"], doc.target["kwargs"], doc.meta["prompt"], output)
        level = "loose" if self.params.score == "prompt_level_loose" else "strict"
        ok = all(x is True for x in v[level])
        verdict = "unchecked" if v["unchecked"] else "followed" if ok else "not_followed"
        return Grade(1.0 if ok else 0.0, None, verdict, v)

    def summarize(self, grades: Sequence[Sequence[Grade]]) -> Dict[str, Any]:
        """The task score (avg@n of the chosen level) and the authors' four accuracies over
        all outputs. An output that never came (call_fail, missing) fails its prompt at both
        levels; its instructions are unknown here, so it is left out of the instruction
        level (counted under ``no_output``)."""
        out = super().summarize(grades)
        flat = [g for gs in grades for g in gs]
        checked = [g for g in flat if "strict" in g.detail]
        inst = {lv: [x is True for g in checked for x in g.detail[lv]] for lv in ("strict", "loose")}
        unchecked = [u for g in checked for u in g.detail["unchecked"]]
        n = len(flat)
        out.update(
            prompt_level_strict=sum(all(x is True for x in g.detail["strict"]) for g in checked) / n if n else None,
            prompt_level_loose=sum(all(x is True for x in g.detail["loose"]) for g in checked) / n if n else None,
            inst_level_strict=sum(inst["strict"]) / len(inst["strict"]) if inst["strict"] else None,
            inst_level_loose=sum(inst["loose"]) / len(inst["loose"]) if inst["loose"] else None,
            instructions=len(inst["strict"]),
            unchecked_instructions=len(unchecked),
            unchecked_ids=sorted({u["id"] for u in unchecked}),
            approximate_instructions=sum(len(g.detail.get("approximate", [])) for g in checked),
            no_output=n - len(checked),
        )
        return out
