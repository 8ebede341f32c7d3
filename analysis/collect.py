"""Collect runs from MLflow into one row per GenRM variant.

How the stages link their runs (every stage follows this; the tests build runs this way):
- a run's GenRM variant is its tag ``variant`` (set by the pipeline for every step);
- without one, it is found through the links: ``genrm_run_id`` (genrm_eval and
  policy_train runs name the genrm_train run they used), ``policy_run_id`` (downstream_eval
  runs name the policy_train run they evaluated); a genrm_train run's variant defaults to
  its reward (tag ``reward``) or its run name;
- a genrm_eval run with no link at all is its own variant: the GenRM model it evaluated
  (param ``genrm.model``).
Metrics keep their MLflow names as columns: ``<benchmark>/l_acc``, ``<benchmark>/f_score``,
... from genrm_eval, ``downstream/<task>``, ``downstream/domain/<domain>``,
``downstream/avg`` from downstream_eval. Several runs of one variant (seeds) are averaged;
``n_runs`` says how many; ``by=["seed"]`` keeps a row per seed instead (tag ``seed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

import pandas as pd

GENRM_EVAL, DOWNSTREAM, POLICY, GENRM_TRAIN = "genrm_eval", "downstream_eval", "policy_train", "genrm_train"
# what is kept of each stage's metrics (interval bounds and counts are left out of the table)
_SKIP_SUFFIXES = ("_ci_lo", "_ci_hi")


@dataclass
class MlflowSource:
    """Where analysis reads runs from. (``mlflow.experiment``, since a top-level
    ``experiment=`` is Hydra's experiment-preset group.)"""

    experiment: List[str] = field(default_factory=list)  # MLflow experiment name(s)
    uri: Optional[str] = None  # tracking URI; default: the stage's tracking.uri
    filter: str = ""  # an MLflow filter, e.g. "tags.sweep_id = 'abc'"


@dataclass
class RunInfo:
    run_id: str
    stage: str
    tags: Dict[str, str]
    params: Dict[str, str]
    metrics: Dict[str, float]
    status: str
    name: str


def search(tracking_uri: str, experiments: Sequence[str], filter_string: str = "",
           finished_only: bool = True) -> List[RunInfo]:
    """All runs of the named experiments (paged), as plain records."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    ids = []
    for name in experiments:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            known = [e.name for e in client.search_experiments()]
            raise LookupError(f"no MLflow experiment named {name!r} at {tracking_uri} (known: {known})")
        ids.append(exp.experiment_id)
    clauses = [c for c in (filter_string, "attributes.status = 'FINISHED'" if finished_only else "") if c]
    runs: List[RunInfo] = []
    token = None
    while True:
        page = client.search_runs(ids, " and ".join(clauses), max_results=1000, page_token=token)
        for r in page:
            runs.append(RunInfo(r.info.run_id, r.data.tags.get("stage", ""), dict(r.data.tags), dict(r.data.params),
                                dict(r.data.metrics), r.info.status, r.info.run_name or ""))
        token = page.token
        if not token:
            return runs


def resolve_variants(runs: Iterable[RunInfo]) -> Dict[str, str]:
    """run id -> GenRM variant, following ``genrm_run_id`` / ``policy_run_id`` links."""
    by_id = {r.run_id: r for r in runs}
    memo: Dict[str, str] = {}

    def variant(run_id: str, depth: int = 0) -> Optional[str]:
        if run_id in memo:
            return memo[run_id]
        r = by_id.get(run_id)
        if r is None or depth > 5:
            return None
        v = r.tags.get("variant")
        if not v:
            for link in ("genrm_run_id", "policy_run_id"):
                if r.tags.get(link):
                    v = variant(r.tags[link], depth + 1) or (f"run:{r.tags[link]}" if link == "genrm_run_id" else None)
                    if v:
                        break
        if not v and r.stage == GENRM_TRAIN:
            v = r.tags.get("reward") or r.name or r.run_id
        if not v and r.stage == GENRM_EVAL:
            v = r.params.get("genrm.model") or r.run_id
        if v:
            memo[run_id] = v
        return v

    return {rid: v for rid in by_id if (v := variant(rid))}


def runs_table(runs: Sequence[RunInfo], stages: Sequence[str] = (GENRM_EVAL, DOWNSTREAM),
               by: Sequence[str] = ()) -> pd.DataFrame:
    """One row per variant (and per value of each run tag in ``by``, e.g. ``seed``): the mean
    of each metric over the variant's runs of ``stages``."""
    variants = resolve_variants(runs)
    keys = ["variant", *by]
    records: List[Dict[str, Any]] = []
    for r in runs:
        if r.stage not in stages or r.run_id not in variants:
            continue
        row: Dict[str, Any] = {"variant": variants[r.run_id], **{k: r.tags.get(k) for k in by}, "stage": r.stage,
                               "run_id": r.run_id}
        row.update({k: v for k, v in r.metrics.items() if not k.endswith(_SKIP_SUFFIXES)})
        records.append(row)
    if not records:
        return pd.DataFrame(columns=[*keys, "n_runs"])
    frame = pd.DataFrame.from_records(records)
    metric_cols = [c for c in frame.columns if c not in (*keys, "stage", "run_id")]
    table = frame.groupby(keys, dropna=False)[metric_cols].mean(numeric_only=True)
    counts = frame.groupby([*keys, "stage"], dropna=False).size().unstack(fill_value=0)
    table["n_runs"] = counts.max(axis=1)
    for stage in stages:
        table[f"{stage}_runs"] = counts[stage] if stage in counts else 0
        ids = frame[frame["stage"] == stage].groupby(keys, dropna=False)["run_id"].apply(
            lambda s: ",".join(sorted(s)))
        table[f"{stage}_run_ids"] = ids
    return table.reset_index()


def load_table(source: str, input_path: Optional[str], mlflow: MlflowSource, default_uri: str,
               by: Sequence[str] = ()) -> pd.DataFrame:
    """The table an analysis stage works on: collected from MLflow (``source=mlflow``; the
    store ``mlflow.uri`` or else ``default_uri``) or read from a CSV/parquet file."""
    from analysis.stats import TableError

    if source == "mlflow":
        try:
            return collect(mlflow.uri or default_uri, mlflow.experiment, mlflow.filter, by=by)
        except LookupError as e:
            raise TableError(str(e)) from None
    path = Path(input_path or "")
    if not path.is_file():
        raise TableError(f"{path}: file not found")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as e:  # a file pandas cannot read is a user error
        raise TableError(f"{path}: cannot read the table ({type(e).__name__}: {e})") from None


def source_problems(source: str, input_path: Optional[str], mlflow: MlflowSource, input_hint: str) -> List[tuple]:
    """Config problems of where an analysis stage reads its table from."""
    from plumbing.config.schema import check_choice

    p: List[tuple] = []
    check_choice(p, "source", source, ("table", "mlflow"))
    if source == "table" and not input_path:
        p.append(("input", f"give input={input_hint} (or source=mlflow mlflow.experiment=NAME)"))
    if source == "mlflow" and not mlflow.experiment:
        p.append(("mlflow.experiment", "give the MLflow experiment(s) to collect: mlflow.experiment=NAME"))
    return p


def collect(tracking_uri: str, experiments: Sequence[str], filter_string: str = "",
            finished_only: bool = True, by: Sequence[str] = ()) -> pd.DataFrame:
    """The analysis table of an experiment: GenRM metrics and downstream results per variant
    (and per seed, with ``by=["seed"]``)."""
    return runs_table(search(tracking_uri, experiments, filter_string, finished_only), by=by)
