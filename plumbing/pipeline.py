"""An experiment as a graph of stage steps under one MLflow parent run (`ralign run`).

A step names a registered stage, the Hydra overrides that configure it and the steps it
comes after. An override may name another step's result: ``@run:STEP`` becomes
``runs:/<that step's MLflow run id>`` (a stage resolves it to the run's checkpoint) and
``@dir:STEP`` that step's output folder; the step then comes after STEP.

Each step runs as the stage's own entry point would: composed and validated from
``conf/<stage>.yaml``, in ``<output_dir>/<step>``, as a child MLflow run (tag
``mlflow.parentRunId``) in the pipeline's tracking store, tagged with its ``config_hash``:
the hash of its resolved config and of the hashes of the steps it uses. A step whose hash
already has a FINISHED run in the store is skipped (its run is used), so a pipeline run again
after a failure resumes where it stopped; ``force=true`` runs everything again.

- ``cluster=local``: the steps run here, one after another.
- ``cluster=slurm``: each step is an sbatch job (``slurm/job.sbatch.j2``, resources from
  ``cluster.slurm`` and the step's ``slurm:``), with ``--dependency=afterok:`` on the jobs of
  the steps it comes after; a last job (``afterany``) ends the pipeline's run FINISHED or
  FAILED from its steps' runs. The command returns the job ids; ``dry_run=true`` writes the
  scripts (and each step's own dry run: its OpenRLHF/vLLM command lines) without submitting.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
import sys
import time
import traceback
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from plumbing.components import fill_params
from plumbing.config.hydra_app import STAGES, compose, execute, finalize, plain, stage_main, stage_module
from plumbing.config.schema import Problems, SlurmConfig, StageConfig
from plumbing.errors import SuiteError
from plumbing.report import markdown, table
from plumbing.secrets import override_secrets, redact_override_text
from plumbing.steps import REF, Matrix, PipelineStep, clashes, expand
from plumbing.tracking import StageRun

log = logging.getLogger(__name__)

# The pipeline's own run is the parent; its steps open theirs while it stays open.
FLUENT_RUN = False
REUSE_RUN = True  # a rerun in the same folder continues the parent run: its steps done before are there
# Keys that say where and how a step runs, not what it computes: left out of its hash.
UNHASHED = ("output_dir", "tracking", "cluster", "dry_run")


@dataclass
class PipelineConfig(StageConfig):
    stage: str = "pipeline"
    steps: Dict[str, PipelineStep] = field(default_factory=dict)
    # GenRM variants x step templates, written out as steps (plumbing.steps)
    matrix: Matrix = field(default_factory=Matrix)
    force: bool = False  # run every step, also those with a finished run of the same config
    # Overrides for every step of a stage, after the step's own, e.g. a local copy of a data set:
    #   '+stage_overrides.genrm_train=[data.ralign_rl.path=/data/rl.jsonl]'
    stage_overrides: Dict[str, List[str]] = field(default_factory=dict)
    # Metrics to print per GenRM variant when the steps are done (genrm_eval / downstream_eval
    # columns, e.g. toy_test/s_corr, downstream/avg), read back from the tracking store.
    summary: List[str] = field(default_factory=list)
    # The function that joins the steps' runs into that table (package.module.function, called
    # as in results_table below): the analysis stage's, named in conf/pipeline.yaml, so the
    # shared pipeline imports no stage package.
    results_table: Optional[str] = None

    def graph(self) -> "PipelineConfig":
        """This experiment with its matrix written out as steps (what runs)."""
        if not self.matrix.variants and not self.matrix.steps:
            return self
        return replace(self, steps=expand(self.steps, self.matrix), matrix=Matrix())

    def own_overrides(self, name: str) -> List[str]:
        """A step's overrides as the experiment gives them (references not yet resolved)."""
        step = self.steps[name]
        return list(step.overrides) + list(self.stage_overrides.get(step.stage, []))

    def check(self) -> Problems:
        p = super().check() + clashes(self.steps, self.matrix)  # the matrix's own check: by the validator
        return p + self.graph().check_steps()

    def check_steps(self) -> Problems:
        p: Problems = []
        if not self.steps:
            p.append(("steps", "an experiment needs at least one step (pick a preset: experiment=smoke)"))
        slurm_keys = {f.name for f in fields(SlurmConfig)}
        for stage in self.stage_overrides:
            if stage not in STAGES:
                p.append((f"stage_overrides.{stage}", f"unknown stage; known: {sorted(STAGES)}"))
        for name, step in self.steps.items():
            if step.stage not in STAGES or step.stage == "pipeline":
                known = sorted(s for s in STAGES if s != "pipeline")
                p.append((step.key(name, "stage"), f"unknown stage {step.stage!r}; known: {known}"))
            for dep in step.needs():
                if dep not in self.steps:
                    p.append((step.key(name, "after" if dep in step.after else "overrides"), f"no step named {dep!r}"))
                elif not self.steps[dep].enabled and step.enabled and dep not in step.after:
                    p.append((step.key(name, "overrides"), f"uses the result of {dep!r}, which is disabled"))
            if self.cluster.kind == "slurm":  # a step's overrides are written into its job script
                for i, o in enumerate(self.own_overrides(name)):
                    if override_secrets(o):
                        key = o.split("=", 1)[0].lstrip("+~")
                        where = step.key(name, "overrides", i) if i < len(step.overrides) else \
                            f"stage_overrides.{step.stage} (step {name})"
                        p.append((where, f"{key}: a key value would be written into the step's "
                                  f"job script; give {key}_env=NAME, a variable set on the cluster's nodes"))
            for key in step.slurm:
                if key not in slurm_keys:
                    p.append((step.key(name, f"slurm.{key}"), f"not a cluster.slurm setting ({sorted(slurm_keys)})"))
        if self.summary and not self.results_table:
            p.append(("results_table", "summary needs the function that joins the steps' runs "
                                       "(package.module.function, e.g. analysis.collect.results_table)"))
        elif self.results_table:
            from plumbing.components import locate

            try:
                if not callable(locate(self.results_table)):
                    p.append(("results_table", f"{self.results_table!r} is not a function"))
            except (ImportError, AttributeError) as e:
                p.append(("results_table", str(e)))
        if not p:
            try:
                order(self.steps)
            except ValueError as e:
                p.append(("steps", str(e)))
        return p


SCHEMA = PipelineConfig


def order(steps: Dict[str, PipelineStep]) -> List[str]:
    """Steps in dependency order; among ready steps, the order they are declared in."""
    done: List[str] = []
    pending = [n for n in steps]
    while pending:
        ready = [n for n in pending if all(d in done for d in steps[n].needs())]
        if not ready:
            raise ValueError(f"the steps {pending} depend on each other in a cycle")
        done.append(ready[0])
        pending.remove(ready[0])
    return done


def substitute(overrides: List[str], value: Callable[[str, str], str]) -> List[str]:
    """Overrides with each ``@run:STEP`` / ``@dir:STEP`` replaced by ``value(kind, step)``."""
    return [REF.sub(lambda m: value(m.group(1), m.group(2)), o) for o in overrides]


def config_hash(cfg: "PipelineConfig", name: str, hashes: Dict[str, str]) -> str:
    """What a step computes: its stage, resolved config (where it runs and how it is tracked
    left out) and the hashes of the steps whose results it uses."""
    step = cfg.steps[name]
    overrides = substitute(cfg.own_overrides(name), lambda kind, dep: f"{kind}-of-{hashes[dep]}")
    seed = cfg.seed if step.seed is None else step.seed
    obj, scfg = compose(step.stage, overrides + [f"seed={seed}", f"name={cfg.name}", "output_dir=/hash"])
    data = {k: v for k, v in fill_params(obj, plain(scfg)).items() if k not in UNHASHED}  # params with defaults
    for key, how in unhashed_keys(obj):  # settings marked field(metadata={"unhashed": ...}), e.g. retention
        *parents, last = key.split(".")
        node = data
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and last in node:
            if how == "whether":  # how many is not what a run computes, whether at all is
                node[last] = bool(node[last])
            else:
                node.pop(last)
    used = sorted((d, hashes[d]) for d in step.needs() if d in hashes)  # a disabled step: order only
    blob = json.dumps([step.stage, data, used], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def unhashed_keys(obj: Any) -> List[Tuple[str, Any]]:
    """Dotted keys of the fields marked ``metadata={"unhashed": True}`` (left out of a step's
    hash) or ``{"unhashed": "whether"}`` (only whether it is set is hashed) in a typed config,
    each with its mark."""
    from plumbing.config.validate import walk

    return [(f"{path}.{f.name}" if path else f.name, f.metadata["unhashed"]) for path, node in walk(obj, "")
            for f in fields(node) if f.metadata.get("unhashed")]


def finished_run(uri: str, experiment: str, name: str, digest: str) -> Optional[str]:
    """The id of a FINISHED run of this step with this config hash in the store, if any."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], f"tags.config_hash = '{digest}' and tags.step = '{name}' "
                                                   "and attributes.status = 'FINISHED'")
    return max(runs, key=lambda r: r.info.end_time or 0).info.run_id if runs else None


def step_overrides(cfg: PipelineConfig, name: str, parent: Optional[StageRun], digest: str = "") -> List[str]:
    """What the pipeline fixes for every step: where it writes and how it is tracked."""
    step = cfg.steps[name]
    variant = step.variant
    out = [
        f"output_dir={Path(cfg.output_dir) / name}",
        f"name={cfg.name}",
        f"seed={cfg.seed if step.seed is None else step.seed}",
        f"tracking.experiment={cfg.tracking.experiment}",
        f"tracking.run_name={name}",
        f"tracking.enabled={str(cfg.tracking.enabled).lower()}",
        f"++tracking.tags.step={name}",
    ]
    if variant:
        out.append(f"++tracking.tags.variant={variant}")
    out += [f"++tracking.tags.{k}={v}" for k, v in step.tags.items()]
    if digest:
        out.append(f"++tracking.tags.config_hash={digest}")
    if parent is not None and parent.run_id:
        out += [f"tracking.uri={parent.uri}", f"tracking.parent_run_id={parent.run_id}"]
    if cfg.tracking.sweep_id:
        out.append(f"tracking.sweep_id={cfg.tracking.sweep_id}")
    return out


class Plan:
    """The enabled steps in order, their config hashes, and what each one's results are."""

    def __init__(self, cfg: PipelineConfig, tracker: StageRun):
        cfg = cfg.graph()  # the matrix written out
        self.cfg, self.tracker = cfg, tracker
        self.names = [n for n in order(cfg.steps) if cfg.steps[n].enabled]
        self.hashes: Dict[str, str] = {}
        for n in self.names:
            self.hashes[n] = config_hash(cfg, n, self.hashes)
        self.run_ids: Dict[str, str] = {}

    def done_before(self, name: str) -> Optional[str]:
        if self.cfg.force or not self.tracker.run_id:
            return None
        return finished_run(self.tracker.uri, self.cfg.tracking.experiment, name, self.hashes[name])

    def overrides(self, name: str) -> List[str]:
        def value(kind: str, dep: str) -> str:
            if kind == "dir":
                return str(Path(self.cfg.output_dir) / dep)
            if dep in self.run_ids:
                return f"runs:/{self.run_ids[dep]}"
            # a dry run: where the step's engine leaves its checkpoint, so the steps' own dry
            # runs can render their command lines
            return str(Path(self.cfg.output_dir) / dep / "checkpoint")

        return substitute(self.cfg.own_overrides(name), value) + step_overrides(self.cfg, name, self.tracker,
                                                                               self.hashes[name])


def dry_run(cfg: PipelineConfig, plan: Plan) -> Dict[str, Any]:
    """Validate every step's config and show what each step would run; with cluster=slurm,
    write the job scripts and each step's own dry run (its engine command lines) too."""
    shown: Dict[str, Any] = {}
    for name in plan.names:
        step = cfg.steps[name]
        overrides = plan.overrides(name)
        compose(step.stage, overrides)  # a step whose config is wrong fails the dry run here
        print(f"\n=== {name} ({step.stage}), after: {', '.join(step.needs()) or '-'}, config {plan.hashes[name]} ===\n"
              f"  python -m {STAGES[step.stage].module} "
              + " ".join(shlex.quote(redact_override_text(o)) for o in overrides))
        shown[name] = {"stage": step.stage, "after": step.needs(), "overrides": [redact_override_text(o) for o in overrides],
                       "config_hash": plan.hashes[name]}
    if cfg.cluster.kind == "slurm":
        from plumbing.launch.slurm import write

        check_allocations(cfg, plan)
        for name, spec in slurm_jobs(cfg, plan, {n: f"<job id of {n}>" for n in plan.names}).items():
            shown.setdefault(name, {})["script"] = str(write(spec, job_script(cfg, name)))
            print(f"[pipeline] wrote {shown[name]['script']}")
        failed = []
        for name in plan.names:  # each training step's own dry run writes its engine's scripts (OpenRLHF, vLLM)
            step = cfg.steps[name]
            if not getattr(stage_module(step.stage), "RENDERS_JOBS", False):
                continue
            try:  # exactly what its job will run, less the submission
                obj, scfg = finalize(*compose(step.stage, job_overrides(plan, name) + ["dry_run=true"]))
                execute(step.stage, obj, scfg)
            except SuiteError as e:  # e.g. its data are on a hub this machine cannot reach
                failed.append(name)
                print(f"[pipeline] step {name}: its own dry run failed: {e}", file=sys.stderr)
        if failed:
            raise SuiteError(f"the job scripts are written, but the dry runs of steps {failed} failed (above); "
                             "give them what they miss, e.g. '+stage_overrides.<stage>=[data.<name>.path=FILE]'")
    print("\n" + plan_table(cfg, plan))
    return {"dry_run": True, "steps": shown}


def _few(names: Sequence[str], shown: int = 3) -> str:
    return (", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")) or "-"


def plan_table(cfg: PipelineConfig, plan: Plan) -> str:
    """The experiment at a glance: each step's stage, GenRM variant, seed, the steps it waits
    for and, on a cluster, its job's resources."""
    rows = []
    for name in plan.names:
        step = cfg.steps[name]
        res = job_resources(cfg, name) if cfg.cluster.kind == "slurm" else None
        rows.append([name, step.stage, step.variant or "-", cfg.seed if step.seed is None else step.seed,
                     _few(step.needs()),
                     f"{res.nodes} node(s) x {res.gpus_per_node} GPU, {res.time}" if res else "here"])
    variants = sorted({cfg.steps[n].variant for n in plan.names if cfg.steps[n].variant})
    return (f"{len(plan.names)} steps, {len(variants)} GenRM variant(s): {', '.join(variants) or '-'}\n"
            + table(["step", "stage", "variant", "seed", "after", "job"], rows))


# ---------------------------------------------------------------------------- cluster=local
def time_left(todo: Sequence[str], stages: Mapping[str, str], took: Mapping[str, float],
              before: Mapping[str, float]) -> Optional[float]:
    """Seconds the steps in ``todo`` will take: each as long as it took the last time this
    pipeline ran it (``before``), else as long as this run's steps of its stage took on
    average, else as this run's steps on average; None before anything is known."""
    if not todo:
        return 0.0
    if not took and not all(n in before for n in todo):
        return None
    overall = sum(took.values()) / len(took) if took else 0.0
    total = 0.0
    for n in todo:
        same = [t for m, t in took.items() if stages[m] == stages[n]]
        total += before[n] if n in before else (sum(same) / len(same) if same else overall)
    return total


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


def say(out: Path, text: str) -> None:
    """Print ``text`` and keep it in the pipeline's log (``pipeline.log``) beside Hydra's lines."""
    print(text, flush=True)
    with open(out / "pipeline.log", "a") as f:
        f.write(text.rstrip("\n") + "\n")


def run_local(cfg: PipelineConfig, plan: Plan, tracker: StageRun) -> Dict[str, Dict[str, Any]]:
    results: Dict[str, Dict[str, Any]] = {}
    failed: Optional[str] = None
    out, started = Path(cfg.output_dir), time.monotonic()
    stages = {n: cfg.steps[n].stage for n in plan.names}
    before = {n: v for n in plan.names if (v := tracker.metrics().get(f"pipeline/{n}/seconds")) is not None}
    took: Dict[str, float] = {}
    done = {n for n in plan.names if plan.done_before(n)}  # for the estimate only: checked again at its turn
    for i, name in enumerate(plan.names, start=1):
        step = cfg.steps[name]
        blocked = [d for d in step.needs() if results.get(d, {}).get("status") not in ("ok", "skipped")]
        if failed or blocked:
            results[name] = {"status": "not run", "stage": step.stage}
            continue
        prior = plan.done_before(name)
        if prior:
            plan.run_ids[name] = prior
            results[name] = {"status": "skipped", "stage": step.stage, "mlflow_run_id": prior,
                             "note": f"finished run {prior} has config {plan.hashes[name]}"}
            say(out, f"\n=== [{i}/{len(plan.names)}] {name} ({step.stage}): done before (run {prior}), skipped ===")
            continue
        todo = [n for n in plan.names[i - 1:] if n not in done]
        left = time_left(todo, stages, took, before)
        when = f"{_clock(time.monotonic() - started)} elapsed" + (f", about {_clock(left)} left" if left else "")
        say(out, f"\n=== [{i}/{len(plan.names)}] {name} ({step.stage}) · {when} ===")
        overrides = plan.overrides(name)
        t0 = time.monotonic()
        try:
            obj, scfg = finalize(*compose(step.stage, overrides))
            summary = execute(step.stage, obj, scfg, overrides)
            plan.run_ids[name] = summary.get("mlflow_run_id") or ""
            results[name] = {"status": "ok", "stage": step.stage, "mlflow_run_id": summary.get("mlflow_run_id"),
                             "summary": summary}
        except Exception as e:
            failed = name
            if not isinstance(e, SuiteError):
                print(tracker.scrub(traceback.format_exc()), file=sys.stderr, end="")
            results[name] = {"status": "failed", "stage": step.stage, "error": tracker.scrub(f"{type(e).__name__}: {e}"),
                             "exit_code": getattr(e, "exit_code", 1)}
        results[name]["seconds"] = round(time.monotonic() - t0, 1)
        if results[name]["status"] == "ok":  # a step that failed early says nothing of how long it takes
            took[name] = results[name]["seconds"]
            tracker.log_metrics({f"pipeline/{name}/seconds": results[name]["seconds"]})
    return results


# ---------------------------------------------------------------------------- cluster=slurm
def job_script(cfg: PipelineConfig, name: str) -> Path:
    return Path(cfg.output_dir) / "slurm" / f"{name}.sbatch"


def job_resources(cfg: PipelineConfig, name: str) -> SlurmConfig:
    """A step's sbatch resources: ``cluster.slurm`` with the step's ``slurm:`` over it."""
    return replace(cfg.cluster.slurm, **cfg.steps[name].slurm)


def job_overrides(plan: "Plan", name: str) -> List[str]:
    """The overrides a step's job runs its stage with, the same in a dry run: a job the step
    renders (OpenRLHF) runs inside the step's allocation, laid out as its config says."""
    out = [*plan.overrides(name), "cluster.submit=false"]
    if name in plan.run_ids:
        out.append(f"tracking.run_id={plan.run_ids[name]}")
    return out


def allocation_problems(cfg: PipelineConfig, plan: "Plan") -> Problems:
    """Steps whose job is smaller than the layout of the job they run inside it (an OpenRLHF
    plan: its nodes and GPUs per node), naming the ``steps.<name>.slurm`` key to change."""
    p: Problems = []
    for name in plan.names:
        stage = cfg.steps[name].stage
        if not getattr(stage_module(stage), "RENDERS_JOBS", False):
            continue
        obj, _ = compose(stage, job_overrides(plan, name), validate_config=False)
        if not obj.engine.adapter().lays_out_cluster or obj.cluster.kind != "slurm":
            continue
        layout, have = obj.plan(), job_resources(cfg, name)
        if have.nodes < layout.job_nodes:
            p.append((cfg.steps[name].key(name, "slurm.nodes"), f"{have.nodes}, but its OpenRLHF job is laid out over "
                                                   f"{layout.job_nodes} node(s) (training + the judge's)"))
        if have.gpus_per_node < layout.gpus_per_node:
            p.append((cfg.steps[name].key(name, "slurm.gpus_per_node"), f"{have.gpus_per_node}, but its OpenRLHF job uses "
                                                           f"{layout.gpus_per_node} GPUs per node"))
        if have.cpus_per_task < layout.ray_cpus_per_node:
            p.append((cfg.steps[name].key(name, "slurm.cpus_per_task"), f"{have.cpus_per_task}, but its Ray nodes are started "
                      f"with {layout.ray_cpus_per_node} CPUs (the step's cluster.slurm.cpus_per_task, at least 2 "
                      "per GPU + 4): give the step as many, or lower the stage's"))
    return p


def slurm_jobs(cfg: PipelineConfig, plan: Plan, job_ids: Dict[str, str]) -> Dict[str, Any]:
    """The job of every step still to run (``job_ids`` has the ids of those submitted before
    it, for its ``afterok`` dependency) and the pipeline's finishing job."""
    from plumbing.launch.slurm import JobSpec, shell_join

    specs: Dict[str, Any] = {}
    for name in plan.names:
        if name not in job_ids:
            continue  # done before: no job
        step = cfg.steps[name]
        slurm = job_resources(cfg, name)
        argv = [sys.executable, "-m", STAGES[step.stage].module, *job_overrides(plan, name)]
        deps = [job_ids[d] for d in step.needs() if d in job_ids]
        specs[name] = JobSpec.from_cluster(
            slurm, name=f"{cfg.name}-{name}", description=f"pipeline {cfg.name}: step {name} ({step.stage}), "
            f"config {plan.hashes[name]}", command=shell_join(argv), job_dir=str(Path(cfg.output_dir) / name),
            dependency=f"afterok:{':'.join(deps)}" if deps else None)
    if plan.tracker.run_id and job_ids:
        argv = [sys.executable, "-m", "plumbing.launch.finish", "--tracking-uri", plan.tracker.uri, "--run-id",
                plan.tracker.run_id, "--pipeline-steps", ",".join(plan.names)]
        small = replace(cfg.cluster.slurm, nodes=1, gpus_per_node=0, cpus_per_task=1, mem_gb=0, time="00:10:00",
                        requeue=False)
        specs["_finish"] = JobSpec.from_cluster(
            small, name=f"{cfg.name}-finish", description=f"pipeline {cfg.name}: end its MLflow run",
            command=shell_join(argv), job_dir=str(Path(cfg.output_dir)),
            dependency="afterany:" + ":".join(job_ids[n] for n in plan.names if n in job_ids))
    return specs


def check_allocations(cfg: PipelineConfig, plan: "Plan") -> None:
    from plumbing.config.validate import ConfigError

    p = allocation_problems(cfg, plan)
    if p:
        raise ConfigError(p, "pipeline")


def run_slurm(cfg: PipelineConfig, plan: Plan, tracker: StageRun) -> Dict[str, Dict[str, Any]]:
    """Submit a job per step to run, in order, each with afterok on the jobs it needs."""
    from mlflow.tracking import MlflowClient

    from plumbing.launch.slurm import submit, write

    check_allocations(cfg, plan)
    client = MlflowClient(tracking_uri=tracker.uri) if tracker.run_id else None
    results: Dict[str, Dict[str, Any]] = {}
    job_ids: Dict[str, str] = {}
    for name in plan.names:
        step = cfg.steps[name]
        prior = plan.done_before(name)
        if prior:
            plan.run_ids[name] = prior
            results[name] = {"status": "skipped", "stage": step.stage, "mlflow_run_id": prior}
            continue
        if client is not None:  # its run exists before its job starts, so later steps can name it
            plan.run_ids[name] = client.create_run(
                tracker.experiment_id, run_name=name,
                tags={"mlflow.parentRunId": tracker.run_id, "stage": step.stage, "step": name,
                      "config_hash": plan.hashes[name], "ralign.state": "submitted"}).info.run_id
        job_ids[name] = "pending"
        spec = slurm_jobs(cfg, plan, job_ids)[name]
        job_ids[name] = submit(write(spec, job_script(cfg, name)))
        if client is not None:
            client.set_tag(plan.run_ids[name], "slurm_job_id", job_ids[name])
        results[name] = {"status": "submitted", "stage": step.stage, "job_id": job_ids[name],
                         "mlflow_run_id": plan.run_ids.get(name)}
    finish = slurm_jobs(cfg, plan, job_ids).get("_finish")
    if finish is not None:
        fid = submit(write(finish, Path(cfg.output_dir) / "slurm" / "_finish.sbatch"))
        results["_finish"] = {"status": "submitted", "stage": "pipeline", "job_id": fid}
        tracker.set_tags({"slurm_jobs": ",".join(job_ids.values()), "slurm_finish_job": fid})
        tracker.detach()  # the finishing job ends the pipeline's run
    return results


def results_table(cfg: PipelineConfig, tracker: StageRun, run_ids: List[str]) -> str:
    """The ``summary`` metrics of the steps' runs (those of this run, and those it skipped
    as done before), one row per GenRM variant, each with its interval; printed, returned as
    markdown, and the whole joined table (every metric, interval and count) in ``results.csv``,
    logged to the pipeline's run. ``cfg.results_table`` joins them:
    ``(tracking_uri, experiment, run_ids, metrics, csv_path) -> (header, rows)`` or None when
    no run has a metric, writing the whole table to ``csv_path``."""
    from plumbing.components import locate

    out = Path(cfg.output_dir)
    joined = locate(cfg.results_table)(tracker.uri, cfg.tracking.experiment, run_ids, cfg.summary,
                                       out / "results.csv")
    if joined is None:
        return ""
    header, rows = joined
    tracker.log_artifact(out / "results.csv")
    say(out, f"\nResults per GenRM variant, 95% intervals (also in {out / 'results.md'})\n" + table(header, rows))
    return markdown(header, rows)


def run(cfg: PipelineConfig, tracker: StageRun) -> Dict[str, Any]:
    plan = Plan(cfg, tracker)
    cfg = plan.cfg
    if cfg.dry_run:
        return dry_run(cfg, plan)
    results = (run_slurm if cfg.cluster.kind == "slurm" else run_local)(cfg, plan, tracker)
    out = Path(cfg.output_dir)
    (out / "pipeline.json").write_text(json.dumps(results, indent=2, default=str))
    tracker.log_artifact(out / "pipeline.json")
    say(out, "\n" + table(["step", "stage", "status", "seconds", "slurm job", "mlflow run"],
                          [[n, r.get("stage"), r["status"], r.get("seconds", "-"), r.get("job_id", "-"),
                            r.get("mlflow_run_id") or "-"] for n, r in results.items()]))
    if cfg.summary and tracker.run_id and cfg.cluster.kind != "slurm":
        ids = [r["mlflow_run_id"] for r in results.values() if r.get("mlflow_run_id")]
        (out / "results.md").write_text(results_table(cfg, tracker, ids))
        tracker.log_artifact(out / "results.md")
    failed = [n for n, r in results.items() if r["status"] == "failed"]
    if failed:
        error = SuiteError(f"pipeline step {failed[0]!r} failed: {results[failed[0]]['error']}")
        error.exit_code = results[failed[0]].get("exit_code", 2)  # a step's own exit code (1: RunFailed)
        raise error
    jobs = {n: r["job_id"] for n, r in results.items() if "job_id" in r}
    return {"steps": {n: r["status"] for n, r in results.items()}, **({"jobs": jobs} if jobs else {})}


main = stage_main("pipeline")

if __name__ == "__main__":
    main()
