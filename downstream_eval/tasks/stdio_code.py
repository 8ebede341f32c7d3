"""Programming problems graded on test cases in the sandbox (LiveCodeBench / Codeforces style);
a sample passes when every case passes.

Two kinds of test, as LiveCodeBench has them (``testtype``):
- ``stdin`` (the default): the program reads the input on stdin; its stdout must match the
  expected output line by line, trailing white space ignored;
- ``functional`` (LeetCode style): the answer defines ``class Solution`` with the method named
  by the record's ``metadata.func_name``; each input line is one JSON argument, the expected
  output is the JSON of the return value (floats compared to 1e-6).

Records: ``question`` (or ``question_content``), ``starter_code`` (optional, shown in the
prompt), tests as a list of {input, output[, testtype]} (or a JSON string of one, as
LiveCodeBench's ``public_test_cases``). LiveCodeBench's hidden tests (``private_test_cases``:
base64 of zlib of a pickle) are read with param ``pickled_tests_field`` and unpickled
inside the sandbox, never in this process. Params (:class:`StdioCodeParams`): the field
names, ``timeout_s`` (per case), ``memory_mb``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional

from downstream_eval.code import SandboxParams, extract_code, parallel_map
from downstream_eval.sandbox import Limits, Sandbox
from downstream_eval.tasks import Doc, Grade, ParallelTask
from plumbing.data import FieldError
from plumbing.errors import SuiteError

INSTRUCTION_STDIN = ("Solve the problem below with a Python 3 program that reads the input from standard input and "
                     "prints the answer to standard output. Answer with the program in one ```python code block.\n\n{q}")
INSTRUCTION_FUNCTIONAL = ("Solve the problem below in Python 3 by completing the starter code. Answer with the whole "
                          "class in one ```python code block.\n\n{q}\n\nStarter code:\n```python\n{starter}\n```")
# Appended to a functional answer: call the method on the JSON arguments, print the JSON result.
CALL = '''

import json as _json, sys as _sys
_args = [_json.loads(_line) for _line in _sys.stdin.read().split("\\n") if _line.strip()]
print(_json.dumps(Solution().{func}(*_args)))
'''
UNPICKLE = ("import base64, pickle, sys, zlib\n"
            "sys.stdout.write(pickle.loads(zlib.decompress(base64.b64decode(sys.stdin.read()))))\n")


def normalize(text: str) -> List[str]:
    return [line.rstrip() for line in (text or "").strip().splitlines()]


def same_value(a: Any, b: Any) -> bool:
    """JSON values equal, floats to 1e-6 (relative or absolute)."""
    if isinstance(a, bool) or isinstance(b, bool):  # true is not 1 in JSON
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def output_matches(case: Dict[str, str], stdout: str) -> bool:
    if case["testtype"] == "functional":
        try:
            return same_value(json.loads(stdout.strip().splitlines()[-1]), json.loads(case["output"]))
        except Exception:  # noqa: BLE001 - whatever the program printed (deep nesting too): not the value
            return False
    return normalize(stdout) == normalize(case["output"])


def parse_tests(value: Any, name: str) -> List[Dict[str, str]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise FieldError(name, f"not JSON: {e.msg}") from None
    if not isinstance(value, list):
        raise FieldError(name, "expected a list of {input, output} test cases")
    cases = []
    for k, t in enumerate(value):
        if not isinstance(t, dict) or "input" not in t or "output" not in t:
            raise FieldError(f"{name}[{k}]", "expected {input, output}")
        kind = t.get("testtype", "stdin")
        if kind not in ("stdin", "functional"):
            raise FieldError(f"{name}[{k}].testtype", f"expected stdin or functional, got {kind!r}")
        cases.append({"input": str(t["input"]), "output": str(t["output"]), "testtype": kind})
    return cases


@dataclass
class StdioCodeParams(SandboxParams):
    question_field: Optional[str] = None  # null: ``question``, else ``question_content``
    tests_field: Optional[str] = None  # null: ``tests``, else ``public_test_cases``
    pickled_tests_field: Optional[str] = None  # hidden tests, pickled (LiveCodeBench's private_test_cases)
    id_field: str = "id"  # missing in a record: its ``question_id``, else <task>-<line>
    timeout_s: float = 6.0  # per test case


class StdioCodeTask(ParallelTask):
    Params = StdioCodeParams
    needs_sandbox = True
    grade_chunk = 64

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        o = self.params
        q_field = o.question_field or ("question" if "question" in rec else "question_content")
        if not isinstance(rec.get(q_field), str) or not rec[q_field].strip():
            raise FieldError(q_field, "missing or empty")
        t_field = o.tests_field or ("tests" if "tests" in rec else "public_test_cases")
        cases = parse_tests(rec.get(t_field, []), t_field)
        pickled = rec.get(o.pickled_tests_field) if o.pickled_tests_field else None
        if not cases and not pickled:
            raise FieldError(t_field, "no test cases")
        meta = rec.get("metadata") or {}
        if isinstance(meta, str):
            try:
                meta = json.loads(meta) if meta.strip() else {}
            except json.JSONDecodeError:
                raise FieldError("metadata", "not JSON") from None
        func = meta.get("func_name") if isinstance(meta, dict) else None
        starter = rec.get("starter_code") or ""
        if func or starter.strip():
            text = INSTRUCTION_FUNCTIONAL.format(q=rec[q_field].strip(), starter=starter.rstrip())
        else:
            text = INSTRUCTION_STDIN.format(q=rec[q_field].strip())
        if any(c["testtype"] == "functional" for c in cases) and not func:
            raise FieldError("metadata", "functional tests need metadata.func_name (the method to call)")
        rid = str(rec.get(o.id_field, rec.get("question_id", f"{self.cfg.name}-{index}")))
        return Doc(rid, self.prompt(text), cases, {"func_name": func, "pickled": pickled})

    def load(self) -> List[Doc]:
        docs = super().load()
        todo = [d for d in docs if d.meta.get("pickled")]
        if todo:
            sandbox = self.ctx.get("sandbox") or Sandbox()
            limits = Limits(timeout_s=60.0, memory_mb=4096, max_output_bytes=1 << 30)

            def decode(doc: Doc) -> Optional[str]:
                r = sandbox.run_python(UNPICKLE, stdin=doc.meta["pickled"], limits=limits)
                return r.stdout if r.ok else None

            for doc, text in zip(todo, parallel_map(decode, todo, self.ctx.get("workers"))):
                if text is None:
                    raise SuiteError(f"task {self.cfg.name}: the hidden tests of {doc.id} could not be decoded")
                try:
                    doc.target = doc.target + parse_tests(text, self.params.pickled_tests_field)
                except FieldError as e:
                    raise SuiteError(f"task {self.cfg.name}: hidden tests of {doc.id}: {e}") from None
                doc.meta["pickled"] = None
        return docs

    def grade_one(self, doc: Doc, out: str) -> Grade:
        sandbox, limits = self.ctx["sandbox"], self.params.limits()
        code = extract_code(out)
        passed, verdict = 0, "passed"
        for case in doc.target:
            program = code + CALL.format(func=doc.meta["func_name"]) if case["testtype"] == "functional" else code
            room = max(limits.max_output_bytes, 2 * len(case["output"]) + (64 << 10))  # a right answer fits
            r = sandbox.run_python(program, stdin=case["input"], limits=replace(limits, max_output_bytes=room))
            if not r.ok:
                verdict = r.status
                break
            if not output_matches(case, r.stdout):
                verdict = "wrong_answer"
                break
            passed += 1
        ok = passed == len(doc.target)
        return Grade(1.0 if ok else 0.0, code, verdict, {"passed_tests": passed, "tests": len(doc.target)})

    def grader_version(self) -> str:
        return "2"  # the hardened sandbox: unprivileged, minimal root, bounded output
