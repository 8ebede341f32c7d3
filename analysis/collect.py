"""Collect runs from MLflow into one row per GenRM variant (or per variant and seed).

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
``downstream/avg`` from downstream_eval.

Reruns are not seeds. A run's seed is its seed along the link chain (``lineage_seeds``: the
trained model's seed, then its own where it differs), so evaluations of GenRMs trained with
different seeds are seeds whatever their own seed tag. Within one (variant, seed) each metric is the newest
finished run's that logged it: a rerun with a changed config replaces the older run, and
runs that measured other things (another benchmark) still count. ``<stage>_config_hash``
names the config hash of each run taken, ``superseded_run_ids`` the runs left out. A row
whose metrics then come from two configurations of one stage (the newer run did not log
everything the older one did) raises a :class:`MixedConfigWarning`. Only then are the seeds
of a variant averaged (``n_runs`` = how many seeds); the pipeline's config hash includes the
seed, so seeds are compared on their logged settings instead (the seed, output folders, run
links and tracking left out) and a variant whose seeds differ in anything else warns too.
``by=["seed"]`` keeps a row per seed.

Experiments and sweeps join by variant name: the runs of several experiments (or of a filter
over sweep ids) are one pool, so a variant whose seeds were split over experiments is one row
with every seed, and a seed run again in another experiment is a rerun (the newest wins), not
a second seed. Columns ``experiments`` and ``sweeps`` name where a row's runs came from.
A variant's family (the pipeline's ``family_<key>`` tags: size, reward, source ...) becomes
the columns ``family_<key>``, named as the tag is (the name an ``mlflow.filter`` uses; no '/'
so it never reads as a metric, no ':' which marks interval columns); a run without the tag
takes its linked run's; runs without any leave it empty. Runs of one variant that disagree
(the same name for different GenRMs in two experiments) raise a :class:`FamilyWarning` and
the cell holds every value (``14b|8b``). Rows are sorted by family, coarsest key first (the
one with the fewest values), then by variant.

Each metric with an interval gets the columns ``<metric>:lo``, ``:hi``, ``:n`` and
``:interval`` (how it was computed; ':' is never in an MLflow metric name):
- a proportion whose counts the stage logs (L-Acc = label_correct / n, S-Corr = incorrect /
  (correct + incorrect), F-Score = correct / (wrong + correct + incorrect), a downstream task
  score over ``downstream/<task>/n`` documents when it is a whole number of them), one seed:
  a Wilson score interval;
- any other metric of one seed: the interval its stage logged (``_ci_lo`` / ``/ci_lo``), with
  the sample count where the stage logs one (``valid`` for checklist precision/recall/F1/AP,
  ``downstream/<task>/n``);
- any metric averaged over seeds: a Student-t interval over the seeds, but for a proportion
  never narrower than the Wilson interval of the samples pooled (one evaluation's own noise)
  and clipped to [0, 1]. Counts logged beside a metric (``/n``, ``/valid``, failures) get none.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import pandas as pd

from plumbing.tags import FAMILY, GENRM_RUN, LINKS

GENRM_EVAL, DOWNSTREAM, POLICY, GENRM_TRAIN = "genrm_eval", "downstream_eval", "policy_train", "genrm_train"
LO, HI, N, HOW = ":lo", ":hi", ":n", ":interval"  # interval columns beside a metric column
_STAGE_CI = (("_ci_lo", "_ci_hi"), ("/ci_lo", "/ci_hi"))  # how stages log the interval of a metric
_MEANS_OVER_VALID = ("precision", "recall", "f1", "ap")  # checklist metrics: means over `valid` samples
COUNTS = ("/n", "/valid", "/skipped", "/label_correct", "/correct", "/incorrect", "/call_fail", "/parse_fail",
          "/unjudged", "/missing", "/truncated", "/judge_call_fail", "/judge_parse_fail", "/judge_verdicts",
          "/tasks_scored", "/tasks_invalid")
_DOWNSTREAM_TASK = re.compile(r"^downstream/(?!domain/)(?!avg$)[^/:]+$")  # a task's score (logs /n beside it)


class MixedConfigWarning(UserWarning):
    """A collected row mixes runs of different configurations (see the module docstring)."""


class FamilyWarning(UserWarning):
    """The runs of one variant disagree on a family tag (see the module docstring)."""


@dataclass
class MlflowSource:
    """Where analysis reads runs from. (``mlflow.experiment``, since a top-level
    ``experiment=`` is Hydra's experiment-preset group.)"""

    experiment: List[str] = field(default_factory=list)  # MLflow experiment name(s): their runs are one pool
    uri: Optional[str] = None  # tracking URI; default: the stage's tracking.uri
    filter: str = ""  # an MLflow filter, e.g. "tags.sweep_id = 'abc'"
    sweep: List[str] = field(default_factory=list)  # only these sweeps (tag sweep_id), their union: a filter has no OR


@dataclass
class RunInfo:
    run_id: str
    stage: str
    tags: Dict[str, str]
    params: Dict[str, str]
    metrics: Dict[str, float]
    status: str
    name: str
    start_time: int = 0  # ms since the epoch: "newest" is by start, then end
    end_time: int = 0
    experiment: str = ""  # the MLflow experiment's name


def search(tracking_uri: str, experiments: Sequence[str], filter_string: str = "",
           finished_only: bool = True, sweeps: Sequence[str] = ()) -> List[RunInfo]:
    """All runs of the named experiments (paged), as plain records; with ``sweeps``, those of
    each sweep, joined (a sweep without a run is a LookupError: a mistyped id would otherwise
    drop its runs unseen)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    ids, names = [], {}
    for name in experiments:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            known = [e.name for e in client.search_experiments()]
            raise LookupError(f"no MLflow experiment named {name!r} at {tracking_uri} (known: {known})")
        ids.append(exp.experiment_id)
        names[exp.experiment_id] = name
    clauses = [c for c in (filter_string, "attributes.status = 'FINISHED'" if finished_only else "") if c]
    runs: Dict[str, RunInfo] = {}
    for sweep in sweeps or [None]:
        if sweep is not None and ("'" in sweep or "\\" in sweep):
            raise LookupError(f"mlflow.sweep: {sweep!r} is no sweep id (quotes and backslashes are not allowed)")
        where = " and ".join(clauses + ([f"tags.sweep_id = '{sweep}'"] if sweep is not None else []))
        found, token = 0, None
        while True:
            try:
                page = client.search_runs(ids, where, max_results=1000, page_token=token)
            except MlflowException as e:
                raise LookupError(f"mlflow.filter: MLflow cannot search with {where!r}: {e.message}") from None
            for r in page:
                found += 1
                runs[r.info.run_id] = RunInfo(
                    r.info.run_id, r.data.tags.get("stage", ""), dict(r.data.tags), dict(r.data.params),
                    dict(r.data.metrics), r.info.status, r.info.run_name or "", r.info.start_time or 0,
                    r.info.end_time or 0, names.get(r.info.experiment_id, ""))
            token = page.token
            if not token:
                break
        if sweep is not None and not found:
            raise LookupError(f"mlflow.sweep: no {'finished ' if finished_only else ''}run of sweep {sweep!r} in "
                              f"{list(experiments)}" + (f" with filter {filter_string!r}" if filter_string else ""))
    return list(runs.values())


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
            for link in LINKS:
                if r.tags.get(link):
                    v = variant(r.tags[link], depth + 1) or (f"run:{r.tags[link]}" if link == GENRM_RUN else None)
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


def run_families(runs: Iterable[RunInfo]) -> Dict[str, Dict[str, str]]:
    """run id -> its ``family_<key>`` tags, a key it lacks taken from the run it links to (a
    downstream evaluation tagged before families existed still gets its GenRM's)."""
    by_id = {r.run_id: r for r in runs}
    memo: Dict[str, Dict[str, str]] = {}

    def families(run_id: str, depth: int = 0) -> Dict[str, str]:
        if run_id in memo:
            return memo[run_id]
        r = by_id.get(run_id)
        if r is None or depth > 5:
            return {}
        link = next((r.tags[k] for k in LINKS if r.tags.get(k)), None)
        out = {**(families(link, depth + 1) if link else {}),
               **{k: v for k, v in r.tags.items() if k.startswith(FAMILY) and len(k) > len(FAMILY) and v}}
        memo[run_id] = out
        return out

    return {rid: families(rid) for rid in by_id}


def family_columns(table: pd.DataFrame) -> List[str]:
    """The table's family columns, in the order rows are grouped by (see the module docstring)."""
    cols = [str(c) for c in table.columns if str(c).startswith(FAMILY)]
    return sorted(cols, key=lambda c: (table[c].nunique(dropna=True), c))


def natural(value: Any) -> tuple:
    """Sort key: numbers inside names by value (8b before 14b), empty cells last."""
    if value is None or value == "" or (not isinstance(value, str) and bool(pd.isna(value))):
        return (1,)
    return (0, *[(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", str(value)) if p])


def sort_by_family(table: pd.DataFrame, keys: Sequence[str] = ("variant",)) -> pd.DataFrame:
    """Rows grouped by family (coarsest key first), then by ``keys``; a table without family
    columns keeps its order."""
    families = family_columns(table)
    cols = families + [k for k in keys if k in table.columns]
    if table.empty or not families:
        return table
    order = sorted(range(len(table)), key=lambda i: tuple(natural(table.iloc[i][c]) for c in cols))
    out = table.iloc[order].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def lineage_seeds(runs: Iterable[RunInfo]) -> Dict[str, str]:
    """run id -> its seed along the link chain: the trained model's seed, then its own where it
    differs (``"2"``, or ``"2/0"`` for a seed-0 evaluation of a seed-2 GenRM). Evaluations of
    independently trained seeds are then seeds, not reruns, whatever their own seed tag; a
    linked run outside the search stands for itself (``run 1a2b3c4d``)."""
    by_id = {r.run_id: r for r in runs}
    memo: Dict[str, str] = {}

    def chain(run_id: str, depth: int = 0) -> str:
        if run_id in memo:
            return memo[run_id]
        r = by_id[run_id]
        own = r.tags.get("seed", "")
        link = next((r.tags[k] for k in LINKS if r.tags.get(k)), None)
        if link is None or depth > 5:
            out = own
        else:
            up = chain(link, depth + 1) if link in by_id else f"run {link[:8]}"
            out = up if own in ("", up.rpartition("/")[2]) else f"{up}/{own}"
        memo[run_id] = out
        return out

    return {rid: chain(rid) for rid in by_id}


# ---------------------------------------------------------------------------- intervals of one run
def is_interval_bound(name: str) -> bool:
    return name.endswith(tuple(s for pair in _STAGE_CI for s in pair))


def proportion_counts(metric: str, metrics: Mapping[str, float]) -> Optional[Tuple[int, int]]:
    """(successes, trials) of a proportion from the counts logged beside it, or None (not a
    proportion, counts not logged, or counts that do not give the logged value)."""
    task = _DOWNSTREAM_TASK.match(metric)
    if task:  # a mean over n documents of scores in [0, 1]: whole successes when each scored 0 or 1
        n, value = metrics.get(f"{metric}/n"), metrics.get(metric)
        if not n or value is None or not 0 <= value <= 1 or abs(value * n - round(value * n)) > 1e-6:
            return None
        return int(round(value * n)), int(round(n))
    bench, _, kind = metric.rpartition("/")
    c = {k: metrics.get(f"{bench}/{k}") for k in ("n", "label_correct", "correct", "incorrect")}
    if kind == "l_acc" and None not in (c["label_correct"], c["n"]):
        k, n = c["label_correct"], c["n"]
    elif kind == "s_corr" and None not in (c["correct"], c["incorrect"]):
        k, n = c["incorrect"], c["correct"] + c["incorrect"]
    elif kind == "f_score" and None not in c.values():
        # F-Score's denominator n - CallFail - ParseFail - Unjudged = wrong + correct + incorrect
        k, n = c["correct"], c["n"] - c["label_correct"] + c["correct"] + c["incorrect"]
    else:
        return None
    value = metrics.get(metric)
    if n <= 0 or value is None or abs(k / n - value) > 1e-6:
        return None
    return int(round(k)), int(round(n))


@dataclass
class Cell:
    """One metric of one (variant, seed): its value and what its interval is made from."""

    value: float
    run: RunInfo
    counts: Optional[Tuple[int, int]] = None  # a proportion's (successes, trials)
    stage_ci: Optional[Tuple[float, float]] = None  # the interval the stage logged
    samples: Optional[int] = None  # the sample count of a mean, where the stage logs it


def cell(metric: str, run: RunInfo) -> Cell:
    m = run.metrics
    ci = next(((m[metric + lo], m[metric + hi]) for lo, hi in _STAGE_CI
               if metric + lo in m and metric + hi in m), None)
    bench, _, kind = metric.rpartition("/")
    samples = m.get(f"{bench}/valid") if kind in _MEANS_OVER_VALID else m.get(f"{metric}/n")
    return Cell(m[metric], run, proportion_counts(metric, m), ci, None if samples is None else int(samples))


def interval(cells: Sequence[Cell], alpha: float = 0.05) -> Tuple[Optional[List[float]], Optional[int], Optional[str]]:
    """(interval, n, how) of a metric over the seeds' cells (see the module docstring)."""
    from analysis.stats import mean_interval
    from genrm.metrics import wilson_interval

    if len(cells) == 1:
        c = cells[0]
        if c.counts:
            return wilson_interval(*c.counts, alpha), c.counts[1], "Wilson"
        return (list(c.stage_ci) if c.stage_ci else None), c.samples, ("bootstrap (stage)" if c.stage_ci else None)
    if len(cells) > 1:
        # seeds: the spread between them (t), never narrower than one evaluation's own noise
        # (Wilson over the samples pooled: the same documents scored again are not new ones)
        spread = mean_interval([c.value for c in cells], alpha)["ci"]
        how = f"t over {len(cells)} seeds"
        if spread is not None and all(c.counts for c in cells):
            pooled = wilson_interval(sum(c.counts[0] for c in cells), sum(c.counts[1] for c in cells), alpha)
            if pooled is not None and pooled[1] - pooled[0] > spread[1] - spread[0]:
                spread, how = pooled, f"Wilson, {len(cells)} seeds pooled (wider than their spread)"
        if spread is not None and all(c.counts for c in cells):
            spread = [max(0.0, spread[0]), min(1.0, spread[1])]  # a proportion stays in [0, 1]
        return spread, len(cells), how
    return None, None, None


# ---------------------------------------------------------------------------- newest run per (variant, seed)
def _newest_first(runs: Iterable[RunInfo]) -> List[RunInfo]:
    return sorted(runs, key=lambda r: (r.start_time, r.end_time, r.run_id), reverse=True)


def _hash(run: RunInfo) -> str:
    return run.tags.get("config_hash") or "-"


def _step(run: RunInfo) -> str:
    return run.tags.get("step", "")


@dataclass
class SeedRow:
    """The metrics of one (variant, seed[, by]) and the runs they were taken from."""

    cells: Dict[str, Cell] = field(default_factory=dict)
    used: List[RunInfo] = field(default_factory=list)  # newest first
    superseded: List[RunInfo] = field(default_factory=list)


def seed_rows(runs: Sequence[RunInfo], variants: Mapping[str, str], stages: Sequence[str],
              by: Sequence[str] = ()) -> Tuple[Dict[tuple, SeedRow], List[str]]:
    """Per (variant, seed, *by tags): each metric from the newest run that logged it; and the
    warnings of rows that mix two configurations of one stage."""
    keys = [k for k in by if k != "seed"]
    seeds = lineage_seeds(runs)
    rows: Dict[tuple, SeedRow] = {}
    for r in _newest_first(r for r in runs if r.stage in stages and r.run_id in variants):
        row = rows.setdefault((variants[r.run_id], seeds[r.run_id], *(r.tags.get(k) for k in keys)), SeedRow())
        fresh = {m: cell(m, r) for m in r.metrics if not is_interval_bound(m) and m not in row.cells}
        row.cells.update(fresh)
        (row.used if fresh else row.superseded).append(r)
    problems = []
    for key, row in rows.items():
        for old in row.used:
            newer = [r for r in row.used if r.stage == old.stage and _step(r) == _step(old)
                     and (r.start_time, r.end_time, r.run_id) > (old.start_time, old.end_time, old.run_id)
                     and _hash(r) != _hash(old)]
            if newer:
                kept = sorted(m for m, c in row.cells.items() if c.run is old)
                problems.append(
                    f"variant {key[0]!r} seed {key[1]}: {old.stage} metrics {kept[:5]}{' ...' if len(kept) > 5 else ''} "
                    f"come from run {old.run_id} (config {_hash(old)}), the others from the newer run "
                    f"{newer[-1].run_id} (config {_hash(newer[-1])}) which did not log them")
    return rows, problems


_NOT_SETTINGS = ("output_dir", "tracking", "cluster", "dry_run")  # differ between seeds by design
_RUN_LINK = re.compile(r"runs:/[0-9a-f]{32}")


def settings(run: RunInfo) -> Dict[str, str]:
    """The run's logged config less what differs between seeds of one experiment: the seeds,
    where it writes (its output folder's parent becomes ``<root>``), links to other runs."""
    out_dir = run.params.get("output_dir")
    root = str(PurePath(out_dir).parent) if out_dir else ""
    out = {}
    for k, v in run.params.items():
        if k.split(".")[0] in _NOT_SETTINGS or k == "seed" or k.endswith(".seed"):
            continue
        v = _RUN_LINK.sub("runs:/<run>", v)
        out[k] = v.replace(root, "<root>") if len(root) > 1 else v
    return out


def seed_differences(variant: str, rows: Sequence[Tuple[Any, SeedRow]]) -> List[str]:
    """Warnings for the seeds of one variant whose runs of a stage differ in their settings."""
    problems = []
    by_step: Dict[Tuple[str, str], List[Tuple[Any, RunInfo]]] = {}
    for seed, row in rows:
        for r in row.used:
            if r.params:
                by_step.setdefault((r.stage, _step(r)), []).append((seed, r))
    for (stage, _), seen in sorted(by_step.items()):
        first_seed, first = seen[0]
        base = settings(first)
        for seed, r in seen[1:]:
            other = settings(r)
            diff = sorted(k for k in base.keys() | other.keys() if base.get(k) != other.get(k))
            if diff:
                shown = ", ".join(f"{k}: {base.get(k)!r} vs {other.get(k)!r}" for k in diff[:5])
                problems.append(f"variant {variant!r}: the {stage} runs of seed {first_seed} ({first.run_id}) and seed "
                                f"{seed} ({r.run_id}) differ in more than the seed ({shown}{' ...' if len(diff) > 5 else ''}): "
                                "their mean mixes configurations (by=[seed] keeps them apart)")
    return problems


def latest_runs(runs: Sequence[RunInfo], variants: Mapping[str, str], stages: Sequence[str]) -> List[RunInfo]:
    """The newest run of each (variant, seed, stage, step): the training runs whose curves a
    report shows (an earlier run of the same step is a rerun, not another curve)."""
    seen, out = set(), []
    seeds = lineage_seeds(runs)
    for r in _newest_first(r for r in runs if r.stage in stages and r.run_id in variants):
        key = (variants[r.run_id], seeds[r.run_id], r.stage, _step(r))
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _seed_order(seed: Any) -> tuple:
    text = "" if seed is None else str(seed)
    return (0, int(text), "") if text.lstrip("-").isdigit() else (1, 0, text)


def runs_table(runs: Sequence[RunInfo], stages: Sequence[str] = (GENRM_EVAL, DOWNSTREAM),
               by: Sequence[str] = (), alpha: float = 0.05) -> pd.DataFrame:
    """One row per variant (and per value of each run tag in ``by``, e.g. ``seed``): each
    metric from the newest run per (variant, seed), averaged over the seeds, with its
    interval columns. ``table.attrs["warnings"]`` holds the mixed-configuration warnings
    (also raised as :class:`MixedConfigWarning`), ``attrs["superseded"]`` the runs left out."""
    variants = resolve_variants(runs)
    rows, problems = seed_rows(runs, variants, stages, by)
    keep_seed = "seed" in by
    extra = [k for k in by if k != "seed"]
    groups: Dict[tuple, List[Tuple[Any, SeedRow]]] = {}
    fams = run_families(runs)
    for (variant, seed, *rest), row in rows.items():
        out_key = (variant, *[seed if k == "seed" else rest[extra.index(k)] for k in by])
        groups.setdefault(out_key, []).append((seed, row))
    for members in groups.values():
        members.sort(key=lambda m: _seed_order(m[0]))
    if not keep_seed:
        for key, members in groups.items():
            if len(members) > 1:
                problems += seed_differences(key[0], members)
    for p in problems:
        warnings.warn(p, MixedConfigWarning, stacklevel=2)
    records: List[Dict[str, Any]] = []
    family_problems: List[str] = []
    for key, members in groups.items():
        rec: Dict[str, Any] = dict(zip(["variant", *by], key))
        used_runs = [r for _, row in members for r in row.used]
        seen: Dict[str, Dict[str, List[str]]] = {}  # family column -> value -> runs
        for r in used_runs:
            for k, v in fams.get(r.run_id, {}).items():
                if k not in by:
                    seen.setdefault(k, {}).setdefault(v, []).append(r.run_id)
        for k, values in seen.items():
            rec[k] = "|".join(sorted(values, key=natural))
            if len(values) > 1:
                family_problems.append(
                    f"variant {key[0]!r}: its runs disagree on {k} ("
                    + "; ".join(f"{v}: {', '.join(ids[:3])}{' ...' if len(ids) > 3 else ''}" for v, ids in
                                sorted(values.items())) + "): the name stands for different GenRMs in the runs read; "
                    f"rename one or narrow with mlflow.filter=\"tags.{k} = '...'\"")
        metrics = sorted({m for _, row in members for m in row.cells})
        for m in metrics:
            cells = [row.cells[m] for _, row in members if m in row.cells]
            rec[m] = sum(c.value for c in cells) / len(cells)
            if m.endswith(COUNTS):
                continue  # a count beside a metric (its n, its failures): no interval of its own
            ci, n, how = interval(cells, alpha)
            if how:
                rec.update({m + LO: ci[0] if ci else None, m + HI: ci[1] if ci else None, m + N: n, m + HOW: how})
        rec["n_runs"] = len(members)
        for stage in stages:
            used = [r for _, row in members for r in row.used if r.stage == stage]
            rec[f"{stage}_runs"] = len(used)
            rec[f"{stage}_run_ids"] = ",".join(r.run_id for r in used) or None
            rec[f"{stage}_config_hash"] = ",".join(_hash(r) for r in used) or None
        rec["experiments"] = ",".join(sorted({r.experiment for r in used_runs if r.experiment})) or None
        rec["sweeps"] = ",".join(sorted({r.tags["sweep_id"] for r in used_runs if r.tags.get("sweep_id")})) or None
        rec["superseded_run_ids"] = ",".join(r.run_id for _, row in members for r in row.superseded) or None
        records.append(rec)
    covered = {rec.get("downstream/tasks_scored") for rec in records} - {None}
    if len(covered) > 1:  # a task invalid for one variant (its judge failed) and scored for another
        problems.append(f"downstream/avg and the domain means cover different numbers of tasks across the rows "
                        f"({sorted(covered)}): a task's score was invalid for some; compare task by task")
        warnings.warn(problems[-1], MixedConfigWarning, stacklevel=2)
    for p in family_problems:
        warnings.warn(p, FamilyWarning, stacklevel=2)
    records.sort(key=lambda rec: tuple(str(rec[k]) for k in ["variant", *by]))
    keys = ["variant", *by]
    if not records:
        table = pd.DataFrame(columns=[*keys, "n_runs"])
    else:
        table = pd.DataFrame.from_records(records)
        families = [c for c in table.columns if c.startswith(FAMILY) and c not in keys]
        values = [c for c in table.columns if c not in keys and ":" not in c and c != "n_runs"
                  and not c.startswith(tuple(f"{s}_" for s in stages)) and c not in families
                  and c not in ("experiments", "sweeps", "superseded_run_ids")]
        bounds = [c for c in table.columns if ":" in c]
        table = table[[*keys, *families, *sorted(values), *bounds,
                       *[c for c in table.columns if c not in keys and c not in families and c not in values
                         and c not in bounds]]]
        table = sort_by_family(table, keys)
        table = table[[*keys, *family_columns(table), *[c for c in table.columns if c not in keys
                                                        and c not in families]]]
    table.attrs["warnings"] = problems + family_problems
    table.attrs["superseded"] = [{"run_id": r.run_id, "stage": r.stage, "config_hash": _hash(r)}
                                 for row in rows.values() for r in row.superseded]
    return table


def results_table(tracking_uri: str, experiment: str, run_ids: Sequence[str], metrics: Sequence[str],
                  csv_path: Path) -> Optional[Tuple[List[str], List[List[str]]]]:
    """A pipeline's joined results (``results_table`` in conf/pipeline.yaml): the runs
    ``run_ids`` of ``experiment``, one row per GenRM variant. The whole table (every metric,
    interval and count) goes to ``csv_path``; returned, the header and rows of ``metrics`` as
    ``value [lo, hi]`` to print. None when none of the runs is in the store."""
    wanted = set(run_ids)
    frame = runs_table([r for r in search(tracking_uri, [experiment]) if r.run_id in wanted])
    if frame.empty:
        return None
    frame.to_csv(csv_path, index=False)

    def cell(i: Any, c: str) -> str:
        v = frame.loc[i, c]
        if not isinstance(v, (int, float)) or v != v:
            return "-"
        lo, hi = frame.loc[i, c + LO] if c + LO in frame else None, frame.loc[i, c + HI] if c + HI in frame else None
        bounds = f" [{lo:.3f}, {hi:.3f}]" if isinstance(lo, float) and isinstance(hi, float) and lo == lo else ""
        return f"{v:.4f}{bounds}"

    cols = [c for c in metrics if c in frame.columns]
    return ["variant", *cols], [[v, *[cell(i, c) for c in cols]] for i, v in frame["variant"].items()]


def load_table(source: str, input_path: Optional[str], mlflow: MlflowSource, default_uri: str,
               by: Sequence[str] = ()) -> pd.DataFrame:
    """The table an analysis stage works on: collected from MLflow (``source=mlflow``; the
    store ``mlflow.uri`` or else ``default_uri``) or read from a CSV/parquet file."""
    from analysis.stats import TableError

    if source == "mlflow":
        try:
            return collect(mlflow.uri or default_uri, mlflow.experiment, mlflow.filter, by=by, sweeps=mlflow.sweep)
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
            finished_only: bool = True, by: Sequence[str] = (), sweeps: Sequence[str] = ()) -> pd.DataFrame:
    """The analysis table of experiments (or of their ``sweeps``): GenRM metrics and downstream
    results per variant (and per seed, with ``by=["seed"]``), the union of their variants."""
    return runs_table(search(tracking_uri, experiments, filter_string, finished_only, sweeps), by=by)
