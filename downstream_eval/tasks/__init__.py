"""Downstream tasks: one module and one YAML (``conf/task/<name>.yaml``) each.

A task ``kind`` is a class with ``load()`` (documents), ``messages(doc)`` (the prompt) and
``grade(items)`` (scores of the outputs); kinds are registered by name here or named in
the YAML as ``"package.module:Class"``. A suite (``conf/suite/<name>.yaml``) is a list of
task configs; each task has a domain (stem, code, if, general) for the per-domain means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from omegaconf import MISSING

from plumbing.config.schema import Problems, SamplingConfig, check_choice, check_positive
from plumbing.registry import Registry

DOMAINS = ("stem", "code", "if", "general")

KINDS = Registry("task kind", {
    "math": "downstream_eval.tasks.math_answer:MathTask",
    "multiple_choice": "downstream_eval.tasks.multiple_choice:MultipleChoiceTask",
    "humaneval": "downstream_eval.tasks.humaneval:HumanEvalTask",
    "evalplus": "downstream_eval.tasks.evalplus_task:EvalPlusTask",
    "stdio_code": "downstream_eval.tasks.stdio_code:StdioCodeTask",
    "ifeval": "downstream_eval.tasks.ifeval:IFEvalTask",
    "pairwise": "downstream_eval.tasks.pairwise:PairwiseTask",
    "rubric": "downstream_eval.tasks.rubric:RubricTask",
})
register_kind, kind_names, task_class = KINDS.register, KINDS.names, KINDS.get


@dataclass
class TaskSampling:
    """A task's sampling; a field left null takes the generator's (``generator.sampling``)."""

    temperature: Optional[float] = None
    top_p: Optional[float] = None
    max_tokens: Optional[int] = None
    seed: Optional[int] = None
    stop: Optional[List[str]] = None

    def over(self, base: SamplingConfig) -> SamplingConfig:
        mine = {k: v for k, v in vars(self).items() if v is not None}
        return replace(base, **mine)

    def check(self) -> Problems:
        p: Problems = []
        if self.temperature is not None:
            check_positive(p, "temperature", self.temperature, allow_zero=True)
        if self.top_p is not None and not 0 < self.top_p <= 1:
            p.append(("top_p", "must be in (0, 1]"))
        if self.max_tokens is not None:
            check_positive(p, "max_tokens", self.max_tokens)
        return p


@dataclass
class TaskConfig:
    name: str = ""  # the key under ``tasks``, filled in by the stage
    kind: str = MISSING
    domain: str = MISSING
    path: Optional[str] = None  # a local JSONL/JSON/parquet file
    hub_id: Optional[str] = None  # or a hub data set
    hub_file: Optional[str] = None
    hub_config: Optional[str] = None
    split: str = "test"
    limit: Optional[int] = None
    n_samples: int = 1  # samples per prompt: avg@n (or pass@k from them)
    pass_k: int = 1  # code: report pass@k (k <= n_samples); the score is pass@1
    sampling: TaskSampling = field(default_factory=lambda: TaskSampling())
    system_prompt: Optional[str] = None
    options: Dict[str, Any] = field(default_factory=dict)

    def check(self) -> Problems:
        p: Problems = []
        check_choice(p, "domain", self.domain, DOMAINS)
        if ":" not in self.kind:
            check_choice(p, "kind", self.kind, tuple(kind_names()))
        check_positive(p, "n_samples", self.n_samples)
        if not 1 <= self.pass_k <= self.n_samples:
            p.append(("pass_k", f"must be in [1, n_samples={self.n_samples}]"))
        if self.limit is not None:
            check_positive(p, "limit", self.limit)
        return p


@dataclass
class Doc:
    """One item of a task: what the model is asked, and what grading needs."""

    id: str
    messages: List[Dict[str, str]]
    target: Any = None
    meta: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Grade:
    score: float  # in [0, 1]
    extracted: Optional[str] = None  # the answer the grader read out of the output
    verdict: str = ""  # correct | wrong | no_answer | timeout | error | ...
    detail: Dict[str, Any] = field(default_factory=dict)


class Task:
    """Base of the task kinds. ``ctx`` gives what grading may need (sandbox, judge, dirs)."""

    kind = ""
    needs_sandbox = False  # grading runs model-written code
    needs_judge = False  # grading asks the stage's judge model
    grade_chunk = 32  # outputs graded (and their grades cached) per step; 0 = all at once

    def __init__(self, cfg: TaskConfig, ctx: Optional[Dict[str, Any]] = None):
        self.cfg = cfg
        self.ctx = ctx or {}

    # -- data
    def raw_records(self) -> List[Tuple[int, Dict[str, Any]]]:
        """(line or row, record) of the task's data: a local file, or the hub (``hub_id`` /
        ``hub_file`` / ``hub_config``), or what the kind ships (``default_records``)."""
        from plumbing.data import InputError, iter_raw

        if self.cfg.path:
            out = []
            for line, rec, err in iter_raw(self.cfg.path):
                if err is not None:
                    raise err
                if not isinstance(rec, dict):
                    raise InputError(self.cfg.path, line, "-", f"expected a JSON object, got {type(rec).__name__}")
                out.append((line, rec))
            return out
        if self.cfg.hub_id:
            from datasets import load_dataset

            try:
                kw = {"data_files": self.cfg.hub_file} if self.cfg.hub_file else {}
                rows = load_dataset(self.cfg.hub_id, self.cfg.hub_config, split=self.cfg.split, **kw)
            except Exception as e:
                raise InputError(f"hub:{self.cfg.hub_id}", 0, "-", f"could not load ({type(e).__name__}: "
                                 f"{str(e).splitlines()[0]})") from None
            return [(i, dict(r)) for i, r in enumerate(rows, start=1)]
        return list(enumerate(self.default_records(), start=1))

    def default_records(self) -> List[Dict[str, Any]]:
        from plumbing.errors import SuiteError

        raise SuiteError(f"task {self.cfg.name}: give tasks.{self.cfg.name}.path or hub_id")

    def load(self) -> List[Doc]:
        """Documents, checked: a bad record names the file, line (row) and field."""
        from plumbing.data import FieldError, InputError

        docs = []
        source = self.cfg.path or (f"hub:{self.cfg.hub_id}" if self.cfg.hub_id else f"task:{self.cfg.name}")
        for line, rec in self.raw_records():
            try:
                docs.append(self.doc(rec, line))
            except FieldError as e:
                raise InputError(source, line, e.field, str(e).split(": ", 1)[-1]) from None
            if self.cfg.limit and len(docs) >= self.cfg.limit:
                break
        return docs

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        raise NotImplementedError

    def prompt(self, user: str) -> List[Dict[str, str]]:
        system = [{"role": "system", "content": self.cfg.system_prompt}] if self.cfg.system_prompt else []
        return system + [{"role": "user", "content": user}]

    # -- grading
    def grade(self, items: Sequence[tuple]) -> List[List[Grade]]:
        """Grades of each (doc, [outputs with thinking removed]) pair, one per output."""
        return [[self.grade_one(doc, out) for out in outputs] for doc, outputs in items]

    def grade_one(self, doc: Doc, output: str) -> Grade:
        raise NotImplementedError

    def grader_version(self) -> str:
        """Part of the grading cache key: bump when grading changes."""
        return "1"

    def grading_identity(self) -> Dict[str, Any]:
        """Everything besides the document and the answer that a grade depends on (the
        grading cache key): the kind, its grader version and options, and for judged kinds
        the judge's identity (model, weights fingerprint) and sampling, so changing any of
        them grades again instead of reporting the old verdicts."""
        out: Dict[str, Any] = {"task": self.cfg.name, "kind": self.kind, "version": self.grader_version(),
                               "options": self.cfg.options}
        if self.needs_judge:
            out["judge"] = self.ctx.get("judge_identity")
        return out

    def cacheable(self, grade: Grade) -> bool:
        """Whether a grade may be reused by a rerun: not when it reflects a passing fault
        (the sandbox could not start, the judge did not answer)."""
        return grade.verdict not in ("sandbox_error", "judge_call_fail")

    # -- scores
    def summarize(self, grades: Sequence[Sequence[Grade]]) -> Dict[str, Any]:
        """The task score: mean over documents of the mean over their samples (avg@n; for
        0/1 scores this is pass@1), with pass@k when asked, a bootstrap interval and counts."""
        from genrm.metrics import mean_ci

        per_doc = [sum(g.score for g in gs) / len(gs) for gs in grades if gs]
        out: Dict[str, Any] = {"score": sum(per_doc) / len(per_doc) if per_doc else None, "n": len(per_doc),
                               "samples": sum(len(gs) for gs in grades)}
        if per_doc:
            b = self.ctx.get("bootstrap")
            out["score_ci"] = mean_ci(per_doc, b.samples, b.seed, b.alpha) if b else mean_ci(per_doc)
        verdicts: Dict[str, int] = {}
        for gs in grades:
            for g in gs:
                verdicts[g.verdict] = verdicts.get(g.verdict, 0) + 1
        out["verdicts"] = verdicts
        if self.cfg.pass_k > 1:
            out[f"pass@{self.cfg.pass_k}"] = sum(pass_at_k(len(gs), sum(g.score >= 1 for g in gs), self.cfg.pass_k)
                                                 for gs in grades) / len(grades)
        return out


def flatten(items: Sequence[tuple]) -> List[Tuple[Doc, str]]:
    """(doc, output) pairs of ``grade``'s (doc, [outputs]) items, for graders that work per output."""
    return [(doc, out) for doc, outs in items for out in outs]


def regroup(items: Sequence[tuple], grades: Sequence[Grade]) -> List[List[Grade]]:
    """Per-output grades (in ``flatten`` order) back into one list per item."""
    it = iter(grades)
    return [[next(it) for _ in outs] for _, outs in items]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))
