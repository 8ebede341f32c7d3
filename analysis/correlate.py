"""correlate: do GenRM metrics predict downstream results? (python -m analysis.correlate)

    python -m analysis.correlate input=table.csv 'x=[helpsteer3/l_acc,helpsteer3/f_score]' y=downstream/avg output_dir=DIR
    python -m analysis.correlate source=mlflow mlflow.experiment=ralign_paper_8b mlflow.uri=sqlite:///runs/mlflow.db \\
        'x=[helpsteer3/l_acc,helpsteer3/f_score]' y=downstream/avg

(``mlflow.filter`` narrows the runs; Hydra needs the quotes around a value with spaces:
``'mlflow.filter="tags.sweep_id = \'abc\'"'``.) Several experiments or sweeps are one pool
of variants (``'mlflow.experiment=[paper_8b,paper_14b]'``, ``'mlflow.sweep=[abc,def]'``; seeds
averaged, see analysis.collect), each row with its family columns (``family_size``,
``family_reward`` ...); ``within=family_size`` adds one correlation per value of that column
(the paper's per-size analysis) to the pooled one. For each x: Pearson r, Spearman rho and
Kendall tau, each with a BCa bootstrap interval (from 8 rows on; fewer: a warning instead)
and a permutation p-value, and n (see analysis.stats). Writes
DIR/correlations.json, the table (DIR/table.csv and .parquet: with source=mlflow, the
collected runs), a scatter plot per x (fitted line, labelled points) and logs them to
MLflow. A missing or non-numeric column, fewer than 3 rows or a constant column stops with
a message naming it (exit 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import pandas as pd

from analysis import plots
from analysis.collect import MlflowSource, family_columns, load_table, natural, source_problems
from analysis.stats import TableError, correlate_table, numeric_column
from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import Problems, StageConfig
from plumbing.tracking import StageRun, tracking_uri


@dataclass
class CorrelateConfig(StageConfig):
    stage: str = "correlate"
    source: str = "table"  # table (input=FILE) | mlflow (mlflow.experiment=NAME)
    input: Optional[str] = None  # a CSV or parquet table, one row per GenRM
    mlflow: MlflowSource = field(default_factory=MlflowSource)
    x: List[str] = field(default_factory=list)
    y: str = "downstream/avg"
    label: str = "variant"  # the column that names the points
    bootstrap: int = 2000
    permutations: int = 10000
    alpha: float = field(default=0.05, metadata={"range": (1e-9, 1 - 1e-9)})  # in (0, 1)
    skip_undefined: bool = False  # an x with too few rows or a constant column: report it instead of failing
    # a column (family_size): also a correlation per value of it (rows without one: pooled only);
    # a group too small or constant is reported undefined, never fatal
    within: Optional[str] = None

    def check(self) -> Problems:
        p = super().check()
        p += source_problems(self.source, self.input, self.mlflow, "TABLE.csv")
        if not self.x:
            p.append(("x", "give the GenRM metric column(s): 'x=[helpsteer3/l_acc,helpsteer3/f_score]'"))
        if self.bootstrap < 1 or self.permutations < 1:
            p.append(("bootstrap", "bootstrap and permutations must be >= 1"))
        return p


SCHEMA = CorrelateConfig


def run(cfg: CorrelateConfig, tracker: StageRun) -> Dict[str, Any]:
    out = Path(cfg.output_dir)
    table = load_table(cfg.source, cfg.input, cfg.mlflow, tracking_uri(cfg.tracking.uri, cfg.output_dir))
    table.to_csv(out / "table.csv", index=False)
    table.to_parquet(out / "table.parquet", index=False)
    families = family_columns(table)
    label = cfg.label if cfg.label in table.columns else None
    result = correlate_table(table, cfg.x, cfg.y, label, cfg.bootstrap, cfg.permutations, cfg.alpha, cfg.seed,
                             skip_undefined=cfg.skip_undefined, carry=families)
    if cfg.within:
        for value, part in within_groups(table, cfg.within):
            sub = correlate_table(part, cfg.x, cfg.y, label, cfg.bootstrap, cfg.permutations, cfg.alpha, cfg.seed,
                                  skip_undefined=True, carry=families)
            for col, entry in sub.items():
                result[col].setdefault("within", {}).setdefault(cfg.within, {})[value] = entry
    (out / "correlations.json").write_text(json.dumps(result, indent=2))
    labels = table[cfg.label] if cfg.label in table.columns else pd.Series(range(1, len(table) + 1))
    colours = plots.variant_colours(str(v)[:200] for v in labels)
    y = numeric_column(table, cfg.y)
    for col, entry in result.items():
        if "undefined" in entry:
            print(f"[correlate] {col}: {entry['undefined']}")
            continue
        x = numeric_column(table, col)
        keep = x.notna() & y.notna()
        path = out / "plots" / f"scatter_{plots.safe_name(col)}.png"
        plots.scatter(x[keep], y[keep], [str(v)[:200] for v in labels[keep]], col, cfg.y, path,
                      title=f"{cfg.y} vs {col}: Pearson r={entry['pearson']:.2f}, n={entry['n']}", colours=colours)
        tracker.log_metrics({f"corr/{col}/{m}": entry[m] for m in ("pearson", "spearman", "kendall")}
                            | {f"corr/{col}/{m}_p": entry[f"{m}_p"] for m in ("pearson", "spearman", "kendall")})
    for col, entry in result.items():
        for within, groups in entry.get("within", {}).items():
            for value, sub in groups.items():
                if "undefined" not in sub:
                    tracker.log_metrics({f"corr/{col}/{within}/{plots.safe_name(value)}/{m}": sub[m]
                                         for m in ("pearson", "spearman", "kendall")})
    tracker.log_artifact(out / "correlations.json")
    tracker.log_artifact(out / "table.csv")
    tracker.log_artifact(out / "table.parquet")
    if (out / "plots").exists():
        tracker.log_artifact(out / "plots", "plots")
    _print_rows(table, label, families, cfg.x, cfg.y)
    _print(result, cfg.y)
    return {"correlations": result, "rows": len(table)}


def within_groups(table: pd.DataFrame, column: str) -> List[tuple]:
    """(value, rows) per value of ``column``, in natural order (8b before 14b); rows without a
    value are left out (they count in the pooled correlation only)."""
    if column not in table.columns:
        raise TableError(f"within: column {column!r} not in the table (family columns: {family_columns(table)})")
    values = sorted({str(v) for v in table[column] if not pd.isna(v) and str(v) != ""}, key=natural)
    return [(v, table[table[column].astype(str) == v]) for v in values]


def _print_rows(table: pd.DataFrame, label: Optional[str], families: List[str], x: List[str], y: str) -> None:
    """The points correlated: each row's label, family and values."""
    from plumbing.report import table as text

    def short(v: Any) -> Any:
        return v if isinstance(v, (int, float)) else str(v)[:40]

    cols = list(dict.fromkeys(c for c in [*families, *x, y] if c in table.columns))
    print(text([label or "row", *cols], [[short(r.get(label) if label else i + 1), *[short(r.get(c)) for c in cols]]
                                        for i, r in enumerate(table.to_dict("records"))]))


def _print(result: Dict[str, Dict[str, Any]], y: str) -> None:
    from plumbing.report import table

    def cell(e: Dict[str, Any], m: str) -> str:
        ci = e[f"{m}_ci"]
        return f"{e[m]:+.3f} [{ci[0]:+.2f},{ci[1]:+.2f}] p={e[f'{m}_p']:.3g}" if ci else f"{e[m]:+.3f} p={e[f'{m}_p']:.3g}"

    def row(name: str, e: Dict[str, Any]) -> List[Any]:
        return [name, e["n"], *([cell(e, m) for m in ("pearson", "spearman", "kendall")] if "undefined" not in e
                                else ["undefined", "-", "-"])]

    rows = []
    for x, e in result.items():
        rows.append(row(x, e))
        rows += [row(f"  {within}={value}", sub) for within, groups in e.get("within", {}).items()
                 for value, sub in groups.items()]
    print(f"\ncorrelation with {y}")
    print(table(["x", "n", "Pearson r", "Spearman rho", "Kendall tau"], rows))
    for x, e in result.items():
        if e.get("warning"):
            print(f"warning: {x}: {e['warning']}")
        for within, groups in e.get("within", {}).items():
            for value, sub in groups.items():
                if sub.get("undefined"):
                    print(f"note: {x} within {within}={value}: {sub['undefined']}")


main = stage_main("correlate")

if __name__ == "__main__":
    main()
