"""HumanEval+ / MBPP+ graded the way evalplus defines it (differential testing against the
canonical solution on the base and the extra inputs), with the program in the sandbox.

evalplus's own runner executes the candidate and the comparison in one process, where an
object with an always-true ``__eq__`` passes; here the canonical solution and the candidate
are each served from a sandbox (``Sandbox.serve``) and their return values arrive in the
grader as plain builtin data, where evalplus's comparison rules apply: exact equality, a
float tolerance (``atol``, at least 1e-6 for float outputs, with matching types and
lengths, ``numpy.allclose``), and its special oracles (``find_zero``: |poly(x)| <= atol;
MBPP's set-equal and not-None tasks and per-task oracles, from evalplus's own module). Its
time limit per input: max(``min_time_limit_s``, ``time_limit_factor`` x the canonical
solution's time). MBPP+ inputs are deserialized by evalplus's own function.

Params (:class:`EvalPlusParams`): ``dataset`` (humaneval | mbpp), ``base_only`` (score on
the base tests only), ``timeout_s`` (for one sample's inputs), ``memory_mb``,
``min_time_limit_s``, ``time_limit_factor``. Records are evalplus's own: ``task_id``, ``prompt``,
``entry_point``, ``canonical_solution``, ``base_input``, ``plus_input``, ``atol``.
A sample is correct when it passes the base and (unless base_only) the extra inputs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

from downstream_eval.code import SandboxParams, extract_code
from downstream_eval.sandbox import Stopped
from downstream_eval.tasks import Doc, Grade, ParallelTask
from plumbing.config.schema import Problems, check_choice, check_positive
from plumbing.data import FieldError
from plumbing.errors import SuiteError

INSTRUCTION = ("Complete the following Python function. Answer with the whole function (with any imports it needs) "
               "in one ```python code block.\n\n```python\n{prompt}```")
FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol")


def outputs_match(dataset: str, entry_point: str, inp: Sequence[Any], out: Any, exp: Any, atol: float) -> bool:
    """evalplus's rule for one input: ``out`` (the candidate's value) against ``exp`` (the
    canonical solution's)."""
    import numpy as np
    from evalplus.eval import _special_oracle as oracle
    from evalplus.eval import is_floats

    try:
        if dataset == "humaneval" and entry_point == "find_zero":
            return abs(oracle._poly(*inp, out)) <= atol
        exact = out == exp
        if dataset == "mbpp":
            if entry_point == "are_equivalent":
                exact = True
            elif entry_point == "sum_div":
                exact = exact or out == 0
            elif entry_point == "surface_Area":
                exact = exact or abs(out - oracle._surface_Area(*inp)) <= atol
            elif entry_point == "digit_distance_nums":
                exact = exact or out == oracle._digit_distance_nums(*inp)
            elif entry_point in oracle.MBPP_OUTPUT_SET_EQ_TASKS:
                exact = set(out) == set(exp)
            elif entry_point in oracle.MBPP_OUTPUT_NOT_NONE_TASKS:
                exact = out == exp if isinstance(out, bool) else exp == (out is not None)
        if atol == 0 and is_floats(exp):
            atol = 1e-6
        if not exact and atol != 0:
            if type(out) is not type(exp):
                return False
            if isinstance(exp, (list, tuple)) and len(out) != len(exp):
                return False
            return bool(np.allclose(out, exp, rtol=1e-07, atol=atol))
        return bool(exact)
    except Exception:
        return False


@dataclass
class EvalPlusParams(SandboxParams):
    dataset: str = "humaneval"  # humaneval | mbpp: evalplus's rules and input format for that set
    base_only: bool = False  # score on the base inputs only
    timeout_s: float = 60.0  # for one sample's inputs
    memory_mb: int = 4096
    min_time_limit_s: float = 1.0  # per input: max(this, time_limit_factor x the canonical solution's time)
    time_limit_factor: float = 4.0

    def check(self) -> Problems:
        p = super().check()
        check_choice(p, "dataset", self.dataset, ("humaneval", "mbpp"))
        check_positive(p, "min_time_limit_s", self.min_time_limit_s)
        check_positive(p, "time_limit_factor", self.time_limit_factor)
        return p


class EvalPlusTask(ParallelTask):
    Params = EvalPlusParams
    needs_sandbox = True
    grade_chunk = 64

    def __init__(self, cfg, ctx=None):
        super().__init__(cfg, ctx)
        self._expected: Dict[Tuple[str, str], Tuple[List[Any], List[float]]] = {}
        self._lock = threading.Lock()

    def default_records(self) -> List[Dict[str, Any]]:
        raise SuiteError(f"task {self.cfg.name}: evalplus ships no data and the sandbox has no network; give "
                         f"tasks.{self.cfg.name}.path (a HumanEval+/MBPP+ .jsonl release file)")

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        for name in FIELDS:
            if name not in rec:
                raise FieldError(name, "missing (an evalplus HumanEval+/MBPP+ record)")
        for name in ("base_input", "plus_input"):
            if not isinstance(rec[name], list) or not all(isinstance(x, list) for x in rec[name]):
                raise FieldError(name, "expected a list of argument lists")
        rec = dict(rec)
        if self.params.dataset == "mbpp":
            from evalplus.data.mbpp import mbpp_deserialize_inputs

            rec["base_input"] = mbpp_deserialize_inputs(rec["task_id"], rec["base_input"])
            rec["plus_input"] = mbpp_deserialize_inputs(rec["task_id"], rec["plus_input"])
        return Doc(rec["task_id"], self.prompt(INSTRUCTION.format(prompt=rec["prompt"])), None,
                   {"record": rec, "entry_point": rec["entry_point"], "prompt": rec["prompt"]})

    # -- grading
    def expected(self, doc: Doc, which: str) -> Tuple[List[Any], List[float]]:
        """The canonical solution's values and seconds per input (served from a sandbox too:
        the same data path as the candidate's), computed once per task."""
        key = (doc.id, which)
        with self._lock:
            if key in self._expected:
                return self._expected[key]
        rec = doc.meta["record"]
        out_none = self.params.dataset == "mbpp" and self._not_none(doc)
        values, seconds = [], []
        try:
            canonical = rec["prompt"] + rec["canonical_solution"]
            with self.ctx["sandbox"].serve(canonical, self.params.limits(600)) as served:
                for inp in rec[which]:
                    start = time.monotonic()
                    value = served.call(rec["entry_point"], inp)
                    seconds.append(time.monotonic() - start)
                    values.append(value is not None if out_none else value)
        except (Stopped, Exception) as e:
            raise SuiteError(f"task {self.cfg.name}: the canonical solution of {doc.id} failed on its {which} "
                             f"({type(e).__name__}: {e})") from None
        with self._lock:
            self._expected[key] = (values, seconds)
        return values, seconds

    @staticmethod
    def _not_none(doc: Doc) -> bool:
        from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS

        return doc.meta["entry_point"] in MBPP_OUTPUT_NOT_NONE_TASKS

    def check(self, doc: Doc, code: str, which: str) -> str:
        """pass | fail | timeout for one input set, in a sandbox of its own."""
        o = self.params
        rec = doc.meta["record"]
        expected, seconds = self.expected(doc, which)
        dataset, floor, factor = o.dataset, o.min_time_limit_s, o.time_limit_factor
        try:
            with self.ctx["sandbox"].serve(code, o.limits()) as served:
                for inp, exp, t in zip(rec[which], expected, seconds):
                    out = served.call(rec["entry_point"], inp, timeout_s=max(floor, factor * t))
                    if not outputs_match(dataset, rec["entry_point"], inp, out, exp, float(rec["atol"] or 0)):
                        return "fail"
            return "pass"
        except Stopped as e:
            return "timeout" if e.status == "timeout" else "fail"
        except Exception:  # the candidate raised
            return "fail"

    def grade_one(self, doc: Doc, out: str) -> Grade:
        base_only = self.params.base_only
        code = extract_code(out, doc.meta["entry_point"])
        if f"def {doc.meta['entry_point']}" not in code:
            code = doc.meta["prompt"] + code  # a completion of the prompt
        base = self.check(doc, code, "base_input")
        plus = None if base_only else self.check(doc, code, "plus_input")
        ok = base == "pass" and (base_only or plus == "pass")
        return Grade(1.0 if ok else 0.0, code, "passed" if ok else "failed", {"base": base, "plus": plus})

    def grader_version(self) -> str:
        return "2"  # evalplus's rules in the grader, the program served from the sandbox
