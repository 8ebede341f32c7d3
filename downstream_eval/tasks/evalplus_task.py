"""HumanEval+ / MBPP+ through evalplus: its own differential testing against the canonical
solutions on the base and extra inputs, run as a whole inside the sandbox (no network; its
data from a local file through HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH).

Options: ``dataset`` (humaneval | mbpp), ``base_only`` (score on the base tests only),
``timeout_s`` (for the whole evaluation), ``parallel``. Records are evalplus's own:
``task_id``, ``prompt``, ``entry_point``, ``canonical_solution``, ``base_input``,
``plus_input``, ``atol``, ``contract``. A sample is correct when it passes the base and
(unless base_only) the extra tests. Note: evalplus waits at least ~20 s per evaluation.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Sequence

from downstream_eval.code import extract_code
from downstream_eval.sandbox import Limits
from downstream_eval.tasks import Doc, Grade, Task
from plumbing.data import FieldError
from plumbing.errors import SuiteError

INSTRUCTION = ("Complete the following Python function. Answer with the whole function (with any imports it needs) "
               "in one ```python code block.\n\n```python\n{prompt}```")
FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol", "contract")


class EvalPlusTask(Task):
    kind = "evalplus"
    needs_sandbox = True
    grade_chunk = 0  # evalplus pays ~20 s per call: one call for the whole task

    def default_records(self) -> List[Dict[str, Any]]:
        raise SuiteError(f"task {self.cfg.name}: evalplus ships no data and the sandbox has no network; give "
                         f"tasks.{self.cfg.name}.path (a HumanEval+/MBPP+ .jsonl release file)")

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        for name in FIELDS:
            if name not in rec:
                raise FieldError(name, "missing (an evalplus HumanEval+/MBPP+ record)")
        return Doc(rec["task_id"], self.prompt(INSTRUCTION.format(prompt=rec["prompt"])), None,
                   {"record": rec, "entry_point": rec["entry_point"], "prompt": rec["prompt"]})

    def grade(self, items: Sequence[tuple]) -> List[List[Grade]]:
        dataset = self.cfg.options.get("dataset", "humaneval")
        base_only = bool(self.cfg.options.get("base_only", False))
        samples, codes = [], []
        for doc, outs in items:
            for out in outs:
                code = extract_code(out, doc.meta["entry_point"])
                if f"def {doc.meta['entry_point']}" not in code:
                    code = doc.meta["prompt"] + code  # a completion of the prompt
                codes.append(code)
                samples.append(json.dumps({"task_id": doc.id, "solution": code}))
        data = "".join(json.dumps(doc.meta["record"]) + "\n" for doc, _ in items)
        argv = [self.ctx["sandbox"].python, "-m", "evalplus.evaluate", "--dataset", dataset, "--samples",
                "samples.jsonl", "--parallel", str(self.cfg.options.get("parallel", max(1, (os.cpu_count() or 2)))),
                "--i_just_wanna_run"] + (["--base_only"] if base_only else [])
        env = {"HUMANEVAL_OVERRIDE_PATH" if dataset == "humaneval" else "MBPP_OVERRIDE_PATH": "dataset.jsonl",
               "TOKENIZERS_PARALLELISM": "false"}
        limits = Limits(timeout_s=float(self.cfg.options.get("timeout_s", 900)), memory_mb=8192, max_processes=256)
        sandbox = self.ctx["sandbox"]
        result = sandbox.run(argv, files={"samples.jsonl": "\n".join(samples) + "\n", "dataset.jsonl": data},
                             limits=limits, env=env, keep=True)
        work = Path(result.workdir or "")
        try:
            report = json.loads((work / "samples_eval_results.json").read_text())
        except (OSError, ValueError):
            shutil.rmtree(work, ignore_errors=True)
            raise SuiteError(f"evalplus failed ({result.status}, exit {result.returncode}): {result.stderr[-1500:]}")
        shutil.rmtree(work, ignore_errors=True)
        out: List[List[Grade]] = []
        k = 0
        for doc, outs in items:
            rows = report["eval"].get(doc.id, [])
            grades = []
            for j, _ in enumerate(outs):
                r = rows[j] if j < len(rows) else {"base_status": "missing", "plus_status": "missing"}
                ok = r["base_status"] == "pass" and (base_only or r["plus_status"] == "pass")
                grades.append(Grade(1.0 if ok else 0.0, codes[k], "passed" if ok else "failed",
                                    {"base": r["base_status"], "plus": r.get("plus_status")}))
                k += 1
            out.append(grades)
        return out
