"""An experiment as a graph of stage steps under one MLflow parent run (`ralign run`).

A step names a registered stage and the Hydra overrides that configure it, and the steps
it comes after. Each step runs as the stage's own entry point would: composed and
validated from ``conf/<stage>.yaml``, in ``<output_dir>/<step>``, as a child MLflow run
(tag ``mlflow.parentRunId``) in the pipeline's tracking store.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from plumbing.config.hydra_app import STAGES, compose, execute, finalize, stage_main
from plumbing.config.schema import Problems, StageConfig
from plumbing.errors import SuiteError
from plumbing.report import table
from plumbing.tracking import StageRun

log = logging.getLogger(__name__)

# The pipeline's own run is the parent; its steps open theirs while it stays open.
FLUENT_RUN = False


@dataclass
class PipelineStep:
    stage: str = MISSING
    overrides: List[str] = field(default_factory=list)
    after: List[str] = field(default_factory=list)
    enabled: bool = True


@dataclass
class PipelineConfig(StageConfig):
    stage: str = "pipeline"
    steps: Dict[str, PipelineStep] = field(default_factory=dict)

    def check(self) -> Problems:
        p = super().check()
        if not self.steps:
            p.append(("steps", "an experiment needs at least one step (pick a preset: experiment=smoke)"))
        if self.cluster.kind != "local":
            p.append(("cluster.kind", "this version runs pipeline steps in this process only (cluster=local); "
                                      "to use Slurm, run `ralign run` inside an sbatch job"))
        for name, step in self.steps.items():
            if step.stage not in STAGES or step.stage == "pipeline":
                known = sorted(s for s in STAGES if s != "pipeline")
                p.append((f"steps.{name}.stage", f"unknown stage {step.stage!r}; known: {known}"))
            for dep in step.after:
                if dep not in self.steps:
                    p.append((f"steps.{name}.after", f"no step named {dep!r}"))
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
        ready = [n for n in pending if all(d in done for d in steps[n].after)]
        if not ready:
            raise ValueError(f"the steps {pending} depend on each other in a cycle")
        done.append(ready[0])
        pending.remove(ready[0])
    return done


def step_overrides(cfg: PipelineConfig, name: str, parent: Optional[StageRun]) -> List[str]:
    """What the pipeline fixes for every step: where it writes and how it is tracked."""
    out = [
        f"output_dir={Path(cfg.output_dir) / name}",
        f"name={cfg.name}",
        f"seed={cfg.seed}",
        f"tracking.experiment={cfg.tracking.experiment}",
        f"tracking.run_name={name}",
        f"tracking.enabled={str(cfg.tracking.enabled).lower()}",
        f"++tracking.tags.step={name}",
    ]
    if parent is not None and parent.run_id:
        out += [f"tracking.uri={parent.uri}", f"tracking.parent_run_id={parent.run_id}"]
    if cfg.tracking.sweep_id:
        out.append(f"tracking.sweep_id={cfg.tracking.sweep_id}")
    return out


def dry_run(cfg: PipelineConfig, plan: List[str]) -> Dict[str, Any]:
    """Compose and validate every step's config and print the command each step would run."""
    shown: Dict[str, Any] = {}
    for name in plan:
        step = cfg.steps[name]
        overrides = list(step.overrides) + step_overrides(cfg, name, None)
        compose(step.stage, overrides)  # a step whose config is wrong fails the dry run here
        print(f"\n=== {name} ({step.stage}), after: {', '.join(step.after) or '-'} ===\n"
              f"  python -m {STAGES[step.stage].module} " + " ".join(overrides))
        shown[name] = {"stage": step.stage, "after": list(step.after), "overrides": overrides}
    return {"dry_run": True, "steps": shown}


def run(cfg: PipelineConfig, tracker: StageRun) -> Dict[str, Any]:
    plan = [n for n in order(cfg.steps) if cfg.steps[n].enabled]
    if cfg.dry_run:
        return dry_run(cfg, plan)
    results: Dict[str, Dict[str, Any]] = {}
    failed: str | None = None
    for i, name in enumerate(plan, start=1):
        step = cfg.steps[name]
        blocked = [d for d in step.after if d in cfg.steps and cfg.steps[d].enabled and results.get(d, {}).get("status") != "ok"]
        if failed or blocked:
            results[name] = {"status": "not run"}
            continue
        print(f"\n=== [{i}/{len(plan)}] {name} ({step.stage}) ===", flush=True)
        overrides = list(step.overrides) + step_overrides(cfg, name, tracker)
        t0 = time.monotonic()
        try:
            obj, scfg = compose(step.stage, overrides)
            obj, scfg = finalize(obj, scfg)
            summary = execute(step.stage, obj, scfg, overrides)
            results[name] = {"status": "ok", "stage": step.stage, "summary": summary}
        except Exception as e:
            failed = name
            if not isinstance(e, SuiteError):
                traceback.print_exc()
            results[name] = {"status": "failed", "stage": step.stage, "error": f"{type(e).__name__}: {e}"}
        results[name]["seconds"] = round(time.monotonic() - t0, 1)
        tracker.log_metrics({f"pipeline/{name}/seconds": results[name]["seconds"]})

    out = Path(cfg.output_dir)
    (out / "pipeline.json").write_text(json.dumps(results, indent=2, default=str))
    tracker.log_artifact(out / "pipeline.json")
    print("\n" + table(["step", "stage", "status", "seconds", "mlflow run"],
                       [[n, cfg.steps[n].stage, r["status"], r.get("seconds"),
                         (r.get("summary") or {}).get("mlflow_run_id")] for n, r in results.items()]))
    if tracker.run_id:
        print(f"\nBrowse the runs: mlflow ui --backend-store-uri {tracker.uri}")
    if failed:
        raise SuiteError(f"pipeline step {failed!r} failed: {results[failed]['error']}")
    return {"steps": {n: r["status"] for n, r in results.items()}}


main = stage_main("pipeline")

if __name__ == "__main__":
    main()
