"""MLflow tracking for every stage: one run per stage execution.

Embedded default: sqlite in the output directory, no server. ``tracking.uri=http://...``
points at a server. Each run carries the resolved config (secrets masked) as an artifact, a
flat set of params, git commit, Slurm job id, tags ``stage``/``experiment``/``sweep_id``/
``seed`` and ``mlflow.parentRunId`` when part of a pipeline or sweep. A run whose body
raises is ended FAILED (KILLED on Ctrl-C), never FINISHED.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from plumbing import processes
from plumbing.secrets import Scrubber, collect_secret_values, redact_tree

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
_BATCH = 100  # MLflow's per-call limit for params
_BINARY = {".safetensors", ".bin", ".pt", ".pth", ".db", ".sqlite", ".png", ".jpg", ".parquet", ".gz", ".zip"}


def tracking_uri(uri: Optional[str], output_dir: str | os.PathLike) -> str:
    """``uri`` if given, else a sqlite database in ``output_dir`` (created on first use)."""
    if uri:
        return uri
    db = Path(output_dir).resolve() / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def seed_sqlite_store(uri: str) -> None:
    """A new sqlite store starts as a copy of an empty one already migrated for the installed
    MLflow (kept in the user's cache, made once), not by running MLflow's ~40 schema
    migrations in every fresh run folder (about a second each time)."""
    if not uri.startswith("sqlite:///"):
        return
    db = Path(uri[len("sqlite:///"):])
    if db.exists():
        return
    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ralign-suite"
    template = cache / f"mlflow-{mlflow.__version__}-empty-store.db"
    try:
        if not template.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                built = Path(tmp) / "store.db"
                from mlflow.tracking import MlflowClient

                MlflowClient(f"sqlite:///{built}").search_experiments()  # creates and migrates the tables
                os.replace(built, template)
        db.parent.mkdir(parents=True, exist_ok=True)
        part = db.with_name(f".{db.name}.{os.getpid()}.part")
        shutil.copyfile(template, part)
        import sqlite3

        with contextlib.closing(sqlite3.connect(part)) as conn, conn:  # the Default experiment's artifacts beside it
            conn.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                         ((db.parent / "mlartifacts" / "0").as_uri(),))
        try:
            os.link(part, db)  # never over a store another process has just made
        except FileExistsError:
            pass
        finally:
            part.unlink(missing_ok=True)
    except Exception as e:  # a read-only or full cache: MLflow makes the store itself, only slower
        log.debug("no pre-migrated MLflow store (%s); MLflow creates %s", e, db)


def _artifact_root(uri: str) -> Optional[str]:
    """For a sqlite store keep artifacts beside the database, not in ./mlruns of the cwd."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()
    return None


KIND_TAG = "mlflow.experimentKind"
KIND = "custom_model_development"  # the UI opens on runs and metrics, not on an empty GenAI traces page


def ensure_experiment(client: Any, name: str, uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        if KIND_TAG not in exp.tags:  # a kind the user chose stays
            client.set_experiment_tag(exp.experiment_id, KIND_TAG, KIND)
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=_artifact_root(uri), tags={KIND_TAG: KIND})
    except Exception:  # created concurrently by a sibling job
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


_NOT_IN_A_NAME = re.compile(r"[^A-Za-z0-9_\-. /]")  # MLflow refuses other characters in a metric name


def numeric_metrics(tree: Mapping[str, Any], prefix: str) -> Dict[str, float]:
    """Every number in a stage's summary as an MLflow metric, whatever component produced it:
    nested dicts become path segments, a two-number ``<key>_ci`` list ``<key>_ci_lo`` /
    ``<key>_ci_hi``; strings, booleans, None and other lists are not metrics. A character
    MLflow refuses in a name becomes ``_`` (``@`` becomes ``_at_``: ``pass@4`` -> ``pass_at_4``)."""
    out: Dict[str, float] = {}
    for key, value in tree.items():
        name = f"{prefix}/{_NOT_IN_A_NAME.sub('_', str(key).replace('@', '_at_'))}"
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)):
            if value == value:  # NaN is no measurement
                out[name] = float(value)
        elif isinstance(value, Mapping):
            out.update(numeric_metrics(value, name))
        elif (str(key).endswith("_ci") and isinstance(value, (list, tuple)) and len(value) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            out[f"{name}_lo"], out[f"{name}_hi"] = float(value[0]), float(value[1])
    return out


def flatten(tree: Any, prefix: str = "") -> Dict[str, Any]:
    """Nested dicts → dotted keys; lists are kept as leaf values."""
    out: Dict[str, Any] = {}
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, Mapping) and v:
                out.update(flatten(v, key))
            else:
                out[key] = v
    else:
        out[prefix] = tree
    return out


def git_info(start: Optional[Path] = None) -> Dict[str, str]:
    """Commit of the checkout the suite runs from (empty when not a git checkout)."""
    here = start or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=10,
        )
        return {"git_commit": commit.stdout.strip(), "git_dirty": str(bool(dirty.stdout.strip())).lower()}
    except (OSError, subprocess.SubprocessError):
        return {}


def slurm_tags(environ: Mapping[str, str] | None = None) -> Dict[str, str]:
    env = os.environ if environ is None else environ
    names = {
        "SLURM_JOB_ID": "slurm_job_id",
        "SLURM_ARRAY_JOB_ID": "slurm_array_job_id",
        "SLURM_ARRAY_TASK_ID": "slurm_array_task_id",
        "SLURM_JOB_NAME": "slurm_job_name",
        "SLURM_JOB_NODELIST": "slurm_nodelist",
        "SLURM_RESTART_COUNT": "slurm_restart_count",
    }
    return {tag: env[var] for var, tag in names.items() if env.get(var)}


class StageRun:
    """Handle to the active MLflow run of a stage. Every logged value passes the scrubber."""

    def __init__(self, run_id: Optional[str], uri: str, experiment_id: Optional[str], scrub: Scrubber,
                 max_param_length: int = 500):
        self.run_id = run_id
        self.uri = uri
        self.experiment_id = experiment_id
        self._scrub = scrub
        self._max_len = max_param_length
        self.detached = False

    @property
    def enabled(self) -> bool:
        return self.run_id is not None

    def scrub(self, text: str) -> str:
        """``text`` with this run's secret values masked (for files the stage writes itself)."""
        from plumbing.secrets import redact_override_text

        return redact_override_text(self._scrub(text))

    def detach(self) -> None:
        """Leave the run RUNNING when the stage returns: a submitted job ends it
        (``python -m plumbing.launch.finish``); no rerun takes it for a dead one."""
        self.detached = True
        if self.run_id:
            self._client().set_tag(self.run_id, OWNER_TAG, "detached")

    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def log_params(self, params: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        from mlflow.entities import Param

        items = []
        for k, v in params.items():
            text = self._scrub(v if isinstance(v, str) else json.dumps(v, default=str))
            if len(text) > self._max_len:
                text = text[: self._max_len - 3] + "..."
            items.append(Param(str(k)[:250], text))
        client = self._client()
        had = client.get_run(self.run_id).data.params  # a continued run: MLflow refuses a changed param
        changed = sorted(p.key for p in items if p.key in had and had[p.key] != p.value)
        items = [p for p in items if p.key not in had]
        for i in range(0, len(items), _BATCH):
            client.log_batch(self.run_id, params=items[i : i + _BATCH])
        if changed:  # the run's params keep their first values; the config artifact is the newest
            client.set_tag(self.run_id, "ralign.params_changed", ",".join(changed)[:5000])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        client = self._client()
        for k, v in tags.items():
            if v is not None:
                client.set_tag(self.run_id, k, self._scrub(str(v))[:5000])

    def metrics(self) -> Dict[str, float]:
        """The run's latest metric values (a continued run's include what earlier attempts logged)."""
        return dict(self._client().get_run(self.run_id).data.metrics) if self.enabled else {}

    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None) -> None:
        if not self.enabled:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(str(k), float(v), now, step or 0)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        ]
        client = self._client()
        for i in range(0, len(items), 1000):
            client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def log_artifact(self, path: str | os.PathLike, artifact_path: Optional[str] = None) -> None:
        """Log a file or directory. Text files that contain a known secret are scrubbed first."""
        if not self.enabled:
            return
        path = Path(path)
        client = self._client()
        with tempfile.TemporaryDirectory() as tmp:
            src = self._scrubbed_copy(path, Path(tmp))
            if src.is_dir():
                client.log_artifacts(self.run_id, str(src), artifact_path)
            else:
                client.log_artifact(self.run_id, str(src), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        if not self.enabled:
            return
        self._client().log_text(self.run_id, self._scrub(text), artifact_file)

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        self.log_text(json.dumps(redact_tree(obj), indent=2, default=str), artifact_file)

    def _scrubbed_copy(self, path: Path, tmp: Path) -> Path:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        dirty = []
        for f in files:
            if f.suffix in _BINARY or f.stat().st_size > 64 * 2**20:
                continue
            try:
                text = f.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            if self._scrub(text) != text:
                dirty.append((f, text))
        if not dirty:
            return path
        dst = tmp / path.name
        if path.is_dir():
            shutil.copytree(path, dst)
        else:
            shutil.copy2(path, dst)
        for f, text in dirty:
            target = dst if path.is_file() else dst / f.relative_to(path)
            target.write_text(self._scrub(text))
        return dst


def run_tags(stage: str, experiment: str, seed: int, sweep_id: Optional[str],
             extra: Mapping[str, str] | None = None) -> Dict[str, str]:
    tags = {"stage": stage, "experiment": experiment, "seed": str(seed)}
    if sweep_id:
        tags["sweep_id"] = sweep_id
    info = git_info()
    tags.update(info)
    if "git_commit" in info:
        tags["mlflow.source.git.commit"] = info["git_commit"]
    tags.update(slurm_tags())
    tags.update({k: str(v) for k, v in (extra or {}).items()})
    return tags


SWEEP_TAG = "ralign.sweep_parent"
OWNER_TAG = "ralign.owner"  # the process running the run (host:pid:start), "detached" for a job's
WORKDIR_TAG = "ralign.output_dir"


def abandoned(run: Any) -> bool:
    """A RUNNING run whose process is gone (killed, crashed, the machine rebooted); not one of
    a submitted job (owner "detached") or of a process on another host."""
    return run.info.status == "RUNNING" and processes.gone(run.data.tags.get(OWNER_TAG, ""))


def supersede(client: Any, experiment_id: str, run_id: str, workdir: str) -> List[str]:
    """End KILLED the RUNNING runs of the same output folder whose process is gone (killed,
    crashed, the machine rebooted): this run takes over from them. Runs of a process on
    another host, or of a submitted job, are left as they are."""
    stale = []
    for r in client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        if r.info.run_id != run_id and r.data.tags.get(WORKDIR_TAG) == workdir and abandoned(r):
            client.set_tag(r.info.run_id, "ralign.superseded_by", run_id)
            client.set_terminated(r.info.run_id, "KILLED")
            stale.append(r.info.run_id)
    return stale


SAME_RUN = ("stage", "experiment", "seed")  # tags a continued run must share with the new one


def earlier_run(client: Any, experiment_id: str, workdir: str, tags: Mapping[str, str]) -> Optional[str]:
    """The newest run an earlier process made in ``workdir`` for the same stage, name and seed
    (``SAME_RUN``) that is not running now (a live one belongs to a process still at work, or
    to a submitted job). The folder is compared here, not in the filter: a path may hold quotes."""
    query = " and ".join(f"tags.{k} = '{tags[k]}'" for k in SAME_RUN if k in tags and "'" not in tags[k])
    for r in client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"], max_results=200):
        rt = r.data.tags
        if rt.get(WORKDIR_TAG) != workdir or any(rt.get(k) != tags.get(k) for k in SAME_RUN):
            continue
        if r.info.status != "RUNNING" or abandoned(r):
            return r.info.run_id
    return None


def sweep_parent(uri: str, experiment: str, sweep_id: str) -> str:
    """The run id of a sweep's parent run, made by the first job that asks. Jobs start at
    the same time on a cluster: each may make one, then all take the oldest and a job whose
    own is not the oldest deletes it."""
    from mlflow.tracking import MlflowClient

    seed_sqlite_store(uri)  # sibling jobs would each migrate the same new file
    client = MlflowClient(tracking_uri=uri)
    exp_id = ensure_experiment(client, experiment, uri)
    query = f"tags.`{SWEEP_TAG}` = '{sweep_id}'"

    def oldest() -> Any:
        runs = client.search_runs([exp_id], query)
        return min(runs, key=lambda r: (r.info.start_time, r.info.run_id)) if runs else None

    found = oldest()
    if found is not None:
        return found.info.run_id
    mine = client.create_run(exp_id, run_name=sweep_id, tags={SWEEP_TAG: sweep_id, "sweep_id": sweep_id,
                                                                "stage": "sweep"}).info.run_id
    client.set_terminated(mine, "FINISHED")  # a folder for the jobs' runs; it does no work itself
    chosen = oldest().info.run_id
    if chosen != mine:
        client.delete_run(mine)
    return chosen


@contextlib.contextmanager
def start_run(
    *,
    uri: str,
    experiment: str,
    run_name: Optional[str],
    tags: Mapping[str, str],
    parent_run_id: Optional[str] = None,
    config: Optional[Mapping[str, Any]] = None,
    overrides: Sequence[str] = (),
    enabled: bool = True,
    max_param_length: int = 500,
    fluent: bool = True,
    run_id: Optional[str] = None,
    workdir: Optional[str] = None,
    reuse: bool = False,
) -> Iterator[StageRun]:
    """Open an MLflow run, log config/params/tags, and end it FINISHED, FAILED or KILLED.

    ``run_id`` continues a run made beforehand (a pipeline creates its steps' runs when it
    submits their jobs; a requeued job comes back to its run) instead of opening a new one.
    ``fluent=True`` makes it the process's active run, so libraries that log through
    ``mlflow.*`` (transformers' MLflow callback in TRL) write into it. A parent run that
    stays open while its children run in the same process is opened with ``fluent=False``.
    ``workdir`` (the stage's output folder) lets a rerun end KILLED the runs a killed
    process left RUNNING there (``supersede``). ``reuse``: a rerun in the same folder continues
    the run an earlier one left there (a pipeline's parent run, whose steps done before are
    its children already) instead of opening an empty one beside it.
    """
    scrub = Scrubber(collect_secret_values(config or {}))
    if not enabled:
        yield StageRun(None, uri, None, scrub, max_param_length)
        return

    import mlflow

    seed_sqlite_store(uri)
    mlflow.set_tracking_uri(uri)
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    exp_id = ensure_experiment(client, experiment, uri)
    all_tags = dict(tags)
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    all_tags[OWNER_TAG] = processes.me()
    if workdir:
        all_tags[WORKDIR_TAG] = workdir
    all_tags = {k: scrub(str(v)) for k, v in all_tags.items()}
    if reuse and not run_id and workdir:
        try:
            run_id = earlier_run(client, exp_id, workdir, all_tags)
            if run_id and "error" in client.get_run(run_id).data.tags:
                client.delete_tag(run_id, "error")  # the earlier attempt's; this one sets its own
        except Exception as e:  # bookkeeping never fails the run: it opens a new one
            log.warning("could not look for an earlier run in %s: %s", workdir, e)
            run_id = None
    if run_id:
        if fluent:
            # the run's own experiment: the process's active one may be another's (an earlier
            # stage run in this process), which mlflow.start_run(run_id=...) refuses
            mlflow.set_experiment(experiment_id=client.get_run(run_id).info.experiment_id)
            mlflow.start_run(run_id=run_id)
        else:
            client.update_run(run_id, status="RUNNING")
        for k, v in all_tags.items():
            client.set_tag(run_id, k, v)
    elif fluent:
        run_id = mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=all_tags).info.run_id
    else:
        run_id = client.create_run(exp_id, run_name=run_name, tags=all_tags).info.run_id

    def _end(status: str) -> None:
        if fluent:
            mlflow.end_run(status)
        else:
            client.set_terminated(run_id, status)

    run = StageRun(run_id, uri, exp_id, scrub, max_param_length)
    try:
        if workdir:
            try:
                stale = supersede(client, exp_id, run_id, workdir)
            except Exception as e:  # bookkeeping of other runs never fails this one
                log.warning("could not check for runs left RUNNING in %s: %s", workdir, e)
                stale = []
            if stale:
                print(f"[tracking] runs {', '.join(stale)} of {workdir} were left RUNNING by a process that is gone: "
                      "ended KILLED, this run takes over", file=sys.stderr)
        if config is not None:
            safe = redact_tree(config)
            run.log_params(flatten(safe))
            import yaml

            run.log_text(yaml.safe_dump(safe, sort_keys=False), "config/resolved.yaml")
        if overrides:
            run.log_text("\n".join(scrub.override(o) for o in overrides) + "\n", "config/overrides.txt")
        yield run
    except KeyboardInterrupt:
        _end("KILLED")
        raise
    except BaseException as e:
        if isinstance(e, SystemExit) and e.code in (0, None):
            _end("FINISHED")
            raise
        try:
            client.set_tag(run_id, "error", scrub(f"{type(e).__name__}: {e}")[:4000])
        finally:
            _end("FAILED")
        raise
    else:
        _end("FINISHED")
        if run.detached:
            client.update_run(run_id, status="RUNNING")
