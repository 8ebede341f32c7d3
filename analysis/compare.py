"""compare: a side-by-side report of GenRM variants (python -m analysis.compare).

    python -m analysis.compare mlflow.experiment=ralign_paper_8b mlflow.uri=sqlite:///runs/mlflow.db output_dir=DIR

The metric table has a row per metric and a column per variant; each cell holds the value,
its 95% interval and n (how the interval was computed is the row's last column: Wilson for
proportions with their counts, the stage's bootstrap otherwise, see analysis.collect). Then
the correlations of each GenRM metric with ``y`` (default ``downstream/avg``) across the
variants, with warnings where there are too few variants for an interval; per benchmark the
L-Acc of each variant split into the part that is right for the right reasons (F-Score) and
the spurious part (the S-Corr share), as the R-Align paper shows it; checklist precision,
recall, F1 and AP; downstream scores per task and per domain; training curves (reward, KL,
response length) of the newest training runs from their MLflow metric history, and a note
where no run logged one; downstream scores over the policy's training steps (downstream_eval
``checkpoints.evaluate=all``: the R-Align paper's Figure 2), one line per variant, and a note
where no downstream run has scores at more than one step; the GenRM training dynamics (outcome
reward and rationale signal per step, genrm.dynamics), with a note for a training run that
logged none. A variant has the same colour in every plot. Writes DIR/report.md
(PNG files beside it), DIR/report.html (PNGs embedded), DIR/table.csv and
DIR/correlations.json, and logs them to MLflow.

Several experiments or sweeps (``'mlflow.experiment=[paper_8b,paper_14b]'``,
``'mlflow.sweep=[abc,def]'``) are one pool of variants, seeds averaged (see analysis.collect); the
report says what it read, and the metric table heads each variant's column with its family
(a row per ``family_<key>``, and the experiments each variant came from when there are
several), the variants grouped by family.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import pandas as pd

from analysis import plots
from analysis.collect import (DOWNSTREAM, GENRM_TRAIN, HI, HOW, LO, N, POLICY, MlflowSource, RunInfo,
                              family_columns, latest_runs, natural, resolve_variants, runs_table, search,
                              sort_by_family)
from analysis.stats import METHODS, TableError, correlate_table
from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import Problems, StageConfig
from plumbing.report import markdown
from plumbing.tracking import StageRun

DEFAULT_CURVES = {
    # one kind of curve: the metric names the engines log it under (first found wins); TRL logs
    # `kl` only when algo.kl_coef > 0, OpenRLHF's TensorBoard scalars arrive as `train/kl`
    "reward": ["reward", "train/reward", "rollout/reward_mean", "rewards/mean"],
    "kl": ["kl", "train/kl", "objective/kl"],
    "response_length": ["completions/mean_length", "train/response_length", "rollout/response_length_mean",
                        "response_length"],
}
WHY_MISSING = {"kl": "TRL logs `kl` only when algo.kl_coef > 0"}
# GenRM training dynamics (genrm.dynamics), the same names on both engines
DYNAMICS = ("outcome_reward", "rationale_correct", "checklist_ap")


@dataclass
class CompareConfig(StageConfig):
    stage: str = "compare"
    mlflow: MlflowSource = field(default_factory=MlflowSource)
    variants: List[str] = field(default_factory=list)  # only these (default: all found)
    curves: Dict[str, List[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_CURVES.items()})
    title: str = "GenRM variants side by side"
    y: str = "downstream/avg"  # the report's correlations: each GenRM metric against this column
    x: List[str] = field(default_factory=list)  # default: every benchmark's l_acc, s_corr, f_score, f1, ap
    bootstrap: int = 2000  # BCa resamples of a correlation's interval (given from 8 variants on)
    permutations: int = 10000
    alpha: float = field(default=0.05, metadata={"range": (1e-9, 1 - 1e-9)})  # in (0, 1)

    def check(self) -> Problems:
        p = super().check()
        if not self.mlflow.experiment:
            p.append(("mlflow.experiment", "give the MLflow experiment(s) to read: mlflow.experiment=NAME"))
        if self.bootstrap < 1 or self.permutations < 1:
            p.append(("bootstrap", "bootstrap and permutations must be >= 1"))
        return p


SCHEMA = CompareConfig
# The report's downstream rows: task scores, domain means, the average (not counts or bounds).
_DOWNSTREAM_SCORE = re.compile(r"^downstream/(?:domain/)?[^/:]+$")
_BENCH_METRIC = re.compile(r"^(?!downstream/)(?!corr/)(?!pipeline/)([^/]+)/(l_acc|s_corr|f_score|precision|recall|f1|ap)$")
_ORDER = ("l_acc", "s_corr", "f_score", "precision", "recall", "f1", "ap")
CHECKLIST = (("precision", "precision"), ("recall", "recall"), ("f1", "F1"), ("ap", "AP"))
CORRELATED = ("l_acc", "s_corr", "f_score", "f1", "ap")


def benchmarks_of(table: pd.DataFrame) -> List[str]:
    return sorted({m.group(1) for c in table.columns if (m := _BENCH_METRIC.match(str(c)))})


def shown_metrics(table: pd.DataFrame) -> List[str]:
    """The report's rows: benchmark metrics (by benchmark, in the papers' order), then the
    downstream task scores, domain means and the average."""
    bench = sorted((c for c in table.columns if _BENCH_METRIC.match(str(c))),
                   key=lambda c: (c.rsplit("/", 1)[0], _ORDER.index(c.rsplit("/", 1)[1])))
    down = [c for c in table.columns if _DOWNSTREAM_SCORE.match(str(c))]
    tasks = sorted(c for c in down if not c.startswith("downstream/domain/") and c != "downstream/avg")
    domains = sorted(c for c in down if c.startswith("downstream/domain/"))
    return bench + tasks + domains + [c for c in down if c == "downstream/avg"]


def _num(v: Any) -> Optional[float]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


@dataclass
class Cell:
    value: Optional[float]
    ci: Optional[Tuple[float, float]] = None
    n: Optional[int] = None

    def text(self) -> str:
        if self.value is None:
            return "-"
        out = f"{self.value:.3f}"
        if self.ci:
            out += f" [{self.ci[0]:.3f}, {self.ci[1]:.3f}]"
        return out + (f" n={self.n}" if self.n is not None else "")


def cell(row: Mapping[str, Any], metric: str) -> Cell:
    lo, hi, n = _num(row.get(metric + LO)), _num(row.get(metric + HI)), _num(row.get(metric + N))
    return Cell(_num(row.get(metric)), (lo, hi) if lo is not None and hi is not None else None,
                None if n is None else int(n))


def metric_rows(table: pd.DataFrame) -> Tuple[List[str], List[Tuple[str, List[Cell], str]]]:
    """The transposed table: (variants, [(metric, a cell per variant, how its interval was made)])."""
    records = table.to_dict("records")
    variants = [str(r["variant"]) for r in records]
    rows = []
    for metric in shown_metrics(table):
        hows = sorted({str(r[metric + HOW]) for r in records if isinstance(r.get(metric + HOW), str)})
        rows.append((metric, [cell(r, metric) for r in records], "; ".join(hows) or "-"))
    return variants, rows


def _series(table: pd.DataFrame, cols: Sequence[str]) -> Tuple[Dict[str, List[float]], Dict[str, List[Any]]]:
    """Per variant: the values of ``cols`` and their intervals (for grouped bars)."""
    values: Dict[str, List[float]] = {}
    errors: Dict[str, List[Any]] = {}
    for r in table.to_dict("records"):
        cells = [cell(r, c) for c in cols]
        values[str(r["variant"])] = [float("nan") if c.value is None else c.value for c in cells]
        errors[str(r["variant"])] = [c.ci for c in cells]
    return values, errors


def _corr_text(entry: Mapping[str, Any], method: str) -> str:
    ci = entry.get(f"{method}_ci")
    return f"{entry[method]:+.3f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "") + f" p={entry[f'{method}_p']:.3g}"


def correlation_warnings(result: Mapping[str, Mapping[str, Any]]) -> List[str]:
    """One line per distinct warning, naming the x columns it applies to."""
    by_text: Dict[str, List[str]] = {}
    for x, e in result.items():
        for text in filter(None, (e.get("warning"), e.get("undefined"))):
            by_text.setdefault(text, []).append(x)
    return [f"{', '.join(xs)}: {text}" for text, xs in by_text.items()]


def correlation_rows(result: Mapping[str, Mapping[str, Any]]) -> List[List[Any]]:
    return [[x, e["n"], *([_corr_text(e, m) for m in METHODS] if "undefined" not in e else ["undefined", "-", "-"])]
            for x, e in result.items()]


def head_rows(table: pd.DataFrame) -> List[List[str]]:
    """The metric table's first rows, one cell per variant: its family (a row per
    ``family_<key>``), the experiments it came from (when several), the seeds averaged."""
    rows = table.to_dict("records")

    def text(v: Any) -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)

    out = [[c, *[text(r.get(c)) for r in rows], "-"] for c in family_columns(table)]
    if "experiments" in table and len({e for v in table["experiments"].dropna() for e in str(v).split(",")}) > 1:
        out.append(["experiments", *[text(r.get("experiments")) for r in rows], "-"])
    return out + [["runs averaged (seeds)", *[str(r.get("n_runs", "-")) for r in rows], "-"]]


def build_report(table: pd.DataFrame, curves: Dict[str, Dict[str, List[Tuple[int, float]]]], out: Path,
                 title: str, correlations: Optional[Mapping[str, Mapping[str, Any]]] = None, y: str = "downstream/avg",
                 curve_variants: Optional[Mapping[str, str]] = None, notes: Sequence[str] = (),
                 read: str = "",
                 checkpoint_curves: Optional[Mapping[str, Mapping[str, List[Tuple[int, float]]]]] = None,
                 dynamics: Optional[Mapping[str, Dict[str, List[Tuple[int, float]]]]] = None) -> Dict[str, Path]:
    """Plots + markdown + HTML from a variant table, training curves (``curve_variants``: a
    curve's label -> its variant, for its colour), downstream scores over policy steps
    (``checkpoint_curves``: metric -> label -> points), GenRM training dynamics (``dynamics``:
    signal of :data:`DYNAMICS` -> label -> points) and correlations (no MLflow needed);
    ``read`` says where the runs came from. Variants are grouped by family."""
    out.mkdir(parents=True, exist_ok=True)
    table = sort_by_family(table)
    figures: List[Tuple[str, Path]] = []
    variants = [str(v) for v in table["variant"]]
    colours = plots.variant_colours(variants)
    rows = table.to_dict("records")
    for bench in benchmarks_of(table):
        l_col, f_col = f"{bench}/l_acc", f"{bench}/f_score"
        if l_col in table and f_col in table and table[f_col].notna().any():
            figures.append((f"{bench}: L-Acc and F-Score", plots.label_vs_fidelity(
                bench, variants, table[l_col], table[f_col], out / "plots" / f"fidelity_{plots.safe_name(bench)}.png",
                colours, [cell(r, l_col).ci for r in rows], [cell(r, f_col).ci for r in rows])))
        elif l_col in table:
            values, errors = _series(table, [l_col])
            figures.append((f"{bench}: L-Acc", plots.grouped_bars(
                ["L-Acc"], values, "L-Acc", f"{bench}: label accuracy", out / "plots" / f"l_acc_{plots.safe_name(bench)}.png",
                colours, errors)))
        checklist = [(f"{bench}/{k}", label) for k, label in CHECKLIST if f"{bench}/{k}" in table
                     and table[f"{bench}/{k}"].notna().any()]
        if checklist:
            values, errors = _series(table, [c for c, _ in checklist])
            figures.append((f"{bench}: checklist precision, recall, F1, AP", plots.grouped_bars(
                [label for _, label in checklist], values, "score", f"{bench}: atomic checklist consistency",
                out / "plots" / f"checklist_{plots.safe_name(bench)}.png", colours, errors)))
    shown = shown_metrics(table)
    tasks = [c for c in shown if c.startswith("downstream/") and not c.startswith("downstream/domain/")
             and c != "downstream/avg"]
    if tasks:
        values, errors = _series(table, tasks)
        figures.append(("Downstream scores per task", plots.grouped_bars(
            [t.split("/", 1)[1] for t in tasks], values, "score", "downstream scores per task",
            out / "plots" / "downstream_tasks.png", colours, errors)))
    domains = [c for c in shown if c.startswith("downstream/domain/")]
    if domains:
        values, errors = _series(table, domains)
        figures.append(("Downstream scores per domain", plots.grouped_bars(
            [d.split("/", 2)[2] for d in domains], values, "score", "downstream scores per domain",
            out / "plots" / "downstream_domains.png", colours, errors)))
    for kind, hist in curves.items():  # kind: "<stage> <metric>", e.g. "policy_train reward"
        if hist:
            curve_colours = {label: colours.get(str((curve_variants or {}).get(label, label)), plots.PALETTE[0])
                             for label in hist}
            figures.append((f"Training curves: {kind}", plots.curves(
                hist, kind.split(" ", 1)[-1], kind, out / "plots" / f"curve_{plots.safe_name(kind)}.png", curve_colours)))
    metrics = list((checkpoint_curves or {}).items())
    for k in range(0, len(metrics), 6):  # Figure 2 of the R-Align paper: score against the policy's RL step
        part = f" ({k // 6 + 1} of {-(-len(metrics) // 6)})" if len(metrics) > 6 else ""
        figures.append((f"Downstream score over policy training{part}", plots.curve_panels(
            dict(metrics[k:k + 6]), "policy step", f"downstream score over policy training{part}",
            out / "plots" / f"checkpoint_curves_{k // 6 + 1}.png",
            {label: colours.get(str((curve_variants or {}).get(label, label)), plots.PALETTE[0])
             for _, hist in metrics[k:k + 6] for label in hist})))
    if dynamics and any(dynamics.get(k) for k in DYNAMICS):
        labels = {label for k in DYNAMICS for label in (dynamics.get(k) or {})}
        dyn_colours = {label: colours.get(str((curve_variants or {}).get(label, label)), plots.PALETTE[0])
                       for label in labels}
        figures.append(("GenRM training dynamics: outcome reward and rationale signal", plots.dynamics(
            *(dynamics.get(k) or {} for k in DYNAMICS), out / "plots" / "genrm_dynamics.png", dyn_colours)))
    corr_figures: List[Tuple[str, Path]] = []
    for x, entry in (correlations or {}).items():
        if "undefined" in entry:
            continue
        keep = table[x].notna() & table[y].notna()
        corr_figures.append((f"{y} vs {x}", plots.scatter(
            table.loc[keep, x], table.loc[keep, y], [str(v) for v in table.loc[keep, "variant"]], x, y,
            out / "plots" / f"scatter_{plots.safe_name(x)}.png",
            title=f"{y} vs {x}: Pearson r={entry['pearson']:+.2f}, n={entry['n']}", colours=colours)))

    variants_, mrows = metric_rows(table)
    headers = ["metric", *variants_, "interval"]
    heads = head_rows(table)
    md_rows = heads + [[m, *[c.text() for c in cells], how] for m, cells, how in mrows]
    md = [f"# {title}", "", *([read, ""] if read else []),
          f"{len(table)} variant(s). Each cell: value [95% interval] n=samples.", "",
          "## Metrics", "", markdown(headers, md_rows).rstrip("\n"), ""]
    corr_md: List[str] = []
    if correlations:
        corr_md = [f"## Correlation with {y}", "", "Across the variants; interval: BCa bootstrap, p: permutation test "
                   "(exact over all orders for small n).", "",
                   markdown(["x", "n", "Pearson r", "Spearman rho", "Kendall tau"],
                            correlation_rows(correlations)).rstrip("\n"), ""]
        corr_md += [f"- warning: {w}" for w in correlation_warnings(correlations)]
        corr_md.append("")
    md += corr_md
    if notes:
        md += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    for caption, path in figures + corr_figures:
        md += [f"## {caption}", "", f"![{caption}]({path.relative_to(out).as_posix()})", ""]
    (out / "report.md").write_text("\n".join(md))
    (out / "report.html").write_text(_html(title, table, variants_, colours, heads, mrows, correlations, y,
                                           notes, figures + corr_figures, read))
    files = {"markdown": out / "report.md", "html": out / "report.html"}
    return {**files, **{c: p for c, p in figures + corr_figures}}


_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f4f4f4}td.m,th.m{text-align:left;font-family:monospace}td .ci{color:#555}td .n{color:#888;font-size:12px}
.sw{display:inline-block;width:12px;height:12px;margin-right:5px;border:1px solid #555;vertical-align:middle}
.warn{color:#9a5b00}img{margin:0.5em 0;border:1px solid #eee}"""


def _html(title: str, table: pd.DataFrame, variants: List[str], colours: Mapping[str, str], heads: List[List[str]],
          mrows: List[Tuple[str, List[Cell], str]], correlations: Optional[Mapping[str, Mapping[str, Any]]], y: str,
          notes: Sequence[str], figures: Sequence[Tuple[str, Path]], read: str = "") -> str:
    e = html.escape

    def td(c: Cell) -> str:
        if c.value is None:
            return "<td>-</td>"
        ci = f' <span class="ci">[{c.ci[0]:.3f}, {c.ci[1]:.3f}]</span>' if c.ci else ""
        n = f' <span class="n">n={c.n}</span>' if c.n is not None else ""
        return f"<td><b>{c.value:.3f}</b>{ci}{n}</td>"

    head = "".join(f'<th><span class="sw" style="background:{colours[v]}"></span>{e(v)}</th>' for v in variants)
    body = [f'<tr><td class="m">{e(head[0])}</td>' + "".join(f"<td>{e(v)}</td>" for v in head[1:-1])
            + "<td>-</td></tr>" for head in heads]
    body += [f'<tr><td class="m">{e(m)}</td>' + "".join(td(c) for c in cells) + f'<td class="m">{e(how)}</td></tr>'
             for m, cells, how in mrows]
    parts = [f"<h1>{e(title)}</h1>", *([f"<p>{e(read)}</p>"] if read else []),
             f"<p>{len(table)} variant(s). Each cell: value [95% interval] n=samples.</p>",
             "<h2>Metrics</h2>", f'<table><tr><th class="m">metric</th>{head}<th class="m">interval</th></tr>'
             + "".join(body) + "</table>"]
    if correlations:
        rows = "".join("<tr>" + "".join(f'<td class="m">{e(str(v))}</td>' if i == 0 else f"<td>{e(str(v))}</td>"
                                        for i, v in enumerate(r)) + "</tr>" for r in correlation_rows(correlations))
        parts += [f"<h2>Correlation with {e(y)}</h2>",
                  "<p>Across the variants; interval: BCa bootstrap, p: permutation test (exact over all orders for "
                  "small n).</p>", '<table><tr><th class="m">x</th><th>n</th><th>Pearson r</th><th>Spearman rho</th>'
                  f"<th>Kendall tau</th></tr>{rows}</table>"]
        parts += [f'<p class="warn">warning: {e(w)}</p>' for w in correlation_warnings(correlations)]
    if notes:
        parts += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>"]
    for caption, path in figures:
        data = base64.b64encode(path.read_bytes()).decode()
        parts += [f"<h2>{e(caption)}</h2>", f'<img alt="{e(caption)}" src="data:image/png;base64,{data}">']
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style>"
            "</head><body>" + "\n".join(parts) + "</body></html>")


def histories(uri: str, runs: Sequence[RunInfo], variants: Dict[str, str], names: Sequence[str],
              stage: str) -> Dict[str, List[Tuple[int, float]]]:
    """Metric history of the first of ``names`` each training run of ``stage`` has, by label
    (``curve_label``)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    out: Dict[str, List[Tuple[int, float]]] = {}
    for r in runs:
        name = next((n for n in names if n in r.metrics), None) if r.stage == stage else None
        if name is not None:
            out[curve_label(r, variants)] = [(m.step, m.value) for m in client.get_metric_history(r.run_id, name)]
    return out


def read_from(source: MlflowSource, uri: str, runs: Sequence[RunInfo]) -> str:
    """The report's first line: the experiments, filter and sweeps its runs were read from."""
    from plumbing.secrets import redact_override_text

    sweeps = sorted({r.tags["sweep_id"] for r in runs if r.tags.get("sweep_id")}, key=natural)
    return (f"Runs read: {len(runs)} finished run(s) of MLflow experiment(s) {', '.join(source.experiment)} "
            f"at {redact_override_text(uri)}" + (f", filter `{source.filter}`" if source.filter else "")
            + (f"; sweep(s) {', '.join(sweeps)}" if sweeps else "") + ".")


def checkpoint_curves(uri: str, runs: Sequence[RunInfo], variants: Dict[str, str]
                      ) -> Dict[str, Dict[str, List[Tuple[int, float]]]]:
    """``downstream/avg`` and each task's score over the policy's training steps, per
    downstream_eval run that logged them at more than one step (``checkpoints.evaluate=all``):
    metric -> run label -> [(step, value)]."""
    tasks = sorted({m for r in runs for m in r.metrics if _DOWNSTREAM_SCORE.match(m) and m != "downstream/avg"
                    and not m.startswith(("downstream/domain/", "downstream/tasks_"))})
    out: Dict[str, Dict[str, List[Tuple[int, float]]]] = {}
    for metric in ["downstream/avg", *tasks]:
        hist = {label: points for label, points in histories(uri, runs, variants, [metric], DOWNSTREAM).items()
                if len({step for step, _ in points}) > 1}
        if hist:
            out[metric] = hist
    return out


def dynamics_notes(trained: Sequence[RunInfo], variants: Mapping[str, str]) -> List[str]:
    """A note per GenRM training run whose dynamics are missing, or that has no rationale signal."""
    out = []
    for r in trained:
        name = curve_label(r, variants)
        if "genrm_dynamics/outcome_reward" not in r.metrics:
            out.append(f"no training dynamics: genrm_train run {name} logged no genrm_dynamics/* metric "
                       "(trained before they were logged)")
        elif not any(f"genrm_dynamics/{k}" in r.metrics for k in DYNAMICS[1:]):
            out.append(f"no rationale signal in the training dynamics of {name}: its reward does not judge "
                       "rationales and it had no monitor (llm@monitor=...)")
    return out


def curve_label(run: RunInfo, variants: Mapping[str, str]) -> str:
    return f"{variants.get(run.run_id, run.run_id[:8])} (seed {run.tags.get('seed', '-')}, {run.run_id[:6]})"


def default_x(table: pd.DataFrame) -> List[str]:
    return [c for c in shown_metrics(table) if _BENCH_METRIC.match(c) and c.rsplit("/", 1)[1] in CORRELATED]


def run(cfg: CompareConfig, tracker: StageRun) -> Dict[str, Any]:
    from plumbing.tracking import tracking_uri

    out = Path(cfg.output_dir)
    uri = cfg.mlflow.uri or tracking_uri(cfg.tracking.uri, cfg.output_dir)
    try:
        runs = search(uri, cfg.mlflow.experiment, cfg.mlflow.filter, sweeps=cfg.mlflow.sweep)
    except LookupError as e:
        raise TableError(str(e)) from None
    table = runs_table(runs, alpha=cfg.alpha)
    notes = [f"warning: {w}" for w in table.attrs.get("warnings", [])]
    superseded = table.attrs.get("superseded", [])
    if cfg.variants:
        table = table[table["variant"].isin(cfg.variants)].reset_index(drop=True)
    if table.empty:
        raise TableError(f"no finished genrm_eval or downstream_eval runs in {cfg.mlflow.experiment} at {uri}")
    if superseded:
        notes.append(f"{len(superseded)} older run(s) left out, each replaced by a newer run of its variant and seed: "
                     + ", ".join(f"{s['run_id'][:8]} ({s['stage']}, config {s['config_hash']})" for s in superseded[:10])
                     + (" ..." if len(superseded) > 10 else ""))
    variants = resolve_variants(runs)
    chosen = [r for r in latest_runs(runs, variants, (GENRM_TRAIN, POLICY))
              if not cfg.variants or variants.get(r.run_id) in cfg.variants]
    curves = {}
    for stage in (GENRM_TRAIN, POLICY):
        trained = [r for r in chosen if r.stage == stage]
        for kind, names in cfg.curves.items():
            curves[f"{stage} {kind}"] = histories(uri, trained, variants, names, stage)
            if trained and not curves[f"{stage} {kind}"]:
                why = f" ({WHY_MISSING[kind]})" if kind in WHY_MISSING else ""
                notes.append(f"no {kind} curve: none of the {len(trained)} {stage} run(s) logged "
                             f"{' / '.join(names)}{why}")
    evaluated = [r for r in latest_runs(runs, variants, (DOWNSTREAM,))
                 if not cfg.variants or variants.get(r.run_id) in cfg.variants]
    over_steps = checkpoint_curves(uri, evaluated, variants)
    (out / "checkpoint_curves.json").write_text(json.dumps(over_steps, indent=1))
    if evaluated and not over_steps:
        notes.append(f"no downstream score over policy training: none of the {len(evaluated)} downstream_eval run(s) "
                     "has scores at more than one policy step (evaluate a policy_train run's kept checkpoints: "
                     "algo.save_steps=k there, checkpoints.evaluate=all here)")
    trained = [r for r in chosen if r.stage == GENRM_TRAIN]
    dynamics = {k: histories(uri, trained, variants, [f"genrm_dynamics/{k}"], GENRM_TRAIN) for k in DYNAMICS}
    notes += dynamics_notes(trained, variants)
    x = cfg.x or default_x(table)
    correlations = None
    if cfg.y in table.columns and x:
        table = sort_by_family(table)
        correlations = correlate_table(table, x, cfg.y, "variant", cfg.bootstrap, cfg.permutations, cfg.alpha,
                                       cfg.seed, skip_undefined=True, carry=family_columns(table))
        (out / "correlations.json").write_text(json.dumps(correlations, indent=2))
    else:
        notes.append(f"no correlations: the table has no column {cfg.y!r}" if x else "no GenRM metric to correlate")
    table.to_csv(out / "table.csv", index=False)
    files = build_report(table, curves, out, cfg.title, correlations, cfg.y,
                         {curve_label(r, variants): variants.get(r.run_id, "") for r in chosen + evaluated}, notes,
                         read_from(cfg.mlflow, uri, runs), over_steps, dynamics)
    for name in ("report.md", "report.html", "table.csv", "correlations.json", "checkpoint_curves.json"):
        if (out / name).exists():
            tracker.log_artifact(out / name)
    tracker.log_artifact(out / "plots", "plots")
    for note in notes:
        print(f"[compare] {note}")
    print(f"[compare] {len(table)} variants -> {files['markdown']} and {files['html']}")
    return {"variants": list(table["variant"]), "report": str(files["html"]), "figures": len(files) - 2}


main = stage_main("compare")

if __name__ == "__main__":
    main()
