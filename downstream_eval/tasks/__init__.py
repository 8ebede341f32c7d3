"""Downstream tasks: components, one module and one YAML each.

A task kind is a :class:`Task` subclass with ``doc(record)`` (the prompt and what grading
needs), ``grade(items)`` (scores of the outputs) and ``summarize(grades)`` (the task's
numbers: every number it returns reaches summary.json and MLflow). A task is a YAML
``conf/task/<name>.yaml`` (``# @package tasks.<name>``) that names its kind's class as
``_target_``, its settings under ``params:`` (checked against the class's ``Params``) and
what every task has (domain, data, samples, sampling). A kind declares what grading needs
(``needs_sandbox``, ``needs_judge``), read by the stage. A suite (``conf/suite/<name>.yaml``)
is a list of tasks; each task has a domain (stem, code, if, general) for the per-domain means.
A kind from outside the suite is the same two files: a module on the path and a YAML on
Hydra's search path.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from omegaconf import MISSING

from plumbing.components import ComponentConfig, NoParams, build_params
from plumbing.config.schema import Problems, SamplingConfig, check_choice, check_positive

DOMAINS = ("stem", "code", "if", "general")


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
class TaskConfig(ComponentConfig):
    """A task: its kind (``_target_``, a :class:`Task` subclass), the kind's ``params`` and
    what every task has. Its ``name`` is its key under ``tasks`` (set by the stage)."""

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

    def declares(self, attr: str) -> bool:
        """What the kind declares (``needs_sandbox``, ``needs_judge``); false if it does not
        import (reported by ``check``)."""
        try:
            return bool(getattr(self.component(), attr, False))
        except (ImportError, AttributeError):
            return False

    def build(self, ctx: Optional[Dict[str, Any]] = None) -> "Task":
        return self.component()(self, ctx)

    def check(self) -> Problems:
        p = super().check()
        check_choice(p, "domain", self.domain, DOMAINS)
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
    """Base of the task kinds: a component of the ``tasks.<name>`` slot. ``cfg`` is the
    task's :class:`TaskConfig`, ``params`` its typed ``Params``; ``ctx`` gives what grading
    may need (sandbox, judge, dirs)."""

    Params: type = NoParams  # a kind's settings (``params:`` of its YAML)
    needs_sandbox = False  # grading runs model-written code
    needs_judge = False  # grading asks the stage's judge model
    # summary keys (prefixes) computed from the grades, besides the score: what goes with the
    # score when the grades are not the model's (a judge that failed too often)
    made_of_grades: tuple = ("score_ci", "pass@")
    grade_chunk = 32  # outputs graded (and their grades cached) per step; 0 = all at once

    def __init__(self, cfg: TaskConfig, ctx: Optional[Dict[str, Any]] = None):
        self.cfg = cfg
        self.ctx = ctx or {}
        params, problems = build_params(type(self), cfg.params)
        if problems:
            from plumbing.config.validate import ConfigError

            raise ConfigError([(f"tasks.{cfg.name}.{k}", m) for k, m in problems], f"task {cfg.name}")
        self.params: Any = params

    @property
    def kind(self) -> str:
        """The kind's class path (summary.json's ``kind``, part of the grading cache key)."""
        return f"{type(self).__module__}.{type(self).__qualname__}"

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
        grading cache key): the kind, its grader version and params (defaults included, so a
        changed default grades again too), and for judged kinds the judge's identity (model,
        weights fingerprint), sampling and prompt version (:meth:`judge_prompt_version`), so
        changing any of them grades again instead of reporting the old verdicts."""
        out: Dict[str, Any] = {"task": self.cfg.name, "kind": self.kind, "version": self.grader_version(),
                               "params": dataclasses.asdict(self.params)}
        if self.needs_judge:
            out["judge"] = self.ctx.get("judge_identity")
            out["judge_prompt"] = self.judge_prompt_version()
        return out

    # -- the judge's prompt (judged kinds)
    prompt_name = ""  # a judged kind's name for its prompt in judge_prompt_version (default: the class name)

    def judge_prompt(self) -> str:
        """The judge prompt the kind sends, rendered on placeholder inputs: what its version
        is made of. Default: the source of the kind's module, so a kind that does not render
        its prompt here still never reuses grades made with an older prompt (judge calls are
        cached by their text: an unchanged prompt re-grades from that cache, for free)."""
        import inspect
        import sys

        try:
            return inspect.getsource(sys.modules[type(self).__module__])
        except (OSError, TypeError, KeyError):
            return type(self).__qualname__

    def judge_prompt_version(self) -> str:
        """``<prompt name>@<12 hex digits of the prompt>``: in every judged grade's cache key
        and in the task's summary (``judge_prompt``), next to the judge model (``judge``)."""
        import hashlib

        digest = hashlib.sha256(self.judge_prompt().encode()).hexdigest()[:12]
        return f"{self.prompt_name or type(self).__name__}@{digest}"

    def no_output_grade(self, doc: Doc, verdict: str) -> Grade:
        """The grade of an answer that never came (``call_fail``, ``missing``): failed. A kind
        whose summary groups grades by something of the document adds it here."""
        return Grade(0.0, None, verdict)

    def cacheable(self, grade: Grade) -> bool:
        """Whether a grade may be reused by a rerun: not when it reflects a passing fault
        (the sandbox could not start, the judge did not answer)."""
        return grade.verdict not in ("sandbox_error", "judge_call_fail")

    # -- scores
    def summarize(self, grades: Sequence[Sequence[Grade]]) -> Dict[str, Any]:
        """The task score: mean over documents of the mean over their samples (avg@n; for
        0/1 scores this is pass@1), with pass@k when asked, a bootstrap interval and counts.
        A kind adds its own numbers: each one reaches summary.json and MLflow
        (``downstream/<task>/<key>``), no list of known metrics."""
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
        k = self.cfg.pass_k
        if k > 1 and per_doc:
            per_doc_pass = [pass_at_k(len(gs), sum(g.score >= 1 for g in gs), k) for gs in grades if gs]
            out[f"pass@{k}"] = sum(per_doc_pass) / len(per_doc_pass)
            # the same interval as the score's: problems resampled, each with its pass@k
            b = self.ctx.get("bootstrap")
            out[f"pass@{k}_ci"] = mean_ci(per_doc_pass, b.samples, b.seed, b.alpha) if b else mean_ci(per_doc_pass)
        return out


TaskConfig.base = Task  # what a task's _target_ must be (Task is defined after its config)


class ParallelTask(Task):
    """A kind whose outputs are graded one at a time by ``grade_one``, several at once
    (``ctx['workers']``): the code kinds, whose checks run in the sandbox."""

    def grade(self, items: Sequence[tuple]) -> List[List[Grade]]:
        from downstream_eval.code import parallel_map

        return regroup(items, parallel_map(lambda job: self.grade_one(*job), flatten(items), self.ctx.get("workers")))


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
