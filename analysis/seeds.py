"""seeds: is one GenRM variant better than another across seeds? (python -m analysis.seeds)

    ralign run -m experiment=toy_check seed=200,201,202,203,204 output_dir=runs/toy_check
    python -m analysis.seeds mlflow.uri=sqlite:///$PWD/runs/toy_check/mlflow.db mlflow.experiment=[toy_check] \\
        'lower=[toy_test/s_corr]' 'higher=[downstream/toy_math]' output_dir=runs/toy_check/seeds

(or ``source=table input=FILE.csv`` with columns ``variant``, ``seed`` and the metrics). For each
metric: per variant the value of each seed, their mean and a Student-t interval; the paired
difference ``treatment - baseline`` over the seeds both have, with its t interval; and, for
the metrics in ``lower`` / ``higher``, whether the treatment's mean is on that side of the
baseline's (``holds``), and the paired t-test and the sign test over the seeds (``significant``
when both give p < alpha). Writes DIR/seeds.json, DIR/seeds.csv (one row per variant and seed),
DIR/seeds.md, a plot per metric (each seed a point with its own interval where collect gives
one, the mean with its t interval over the seeds), and logs them to MLflow. ``require=true``
exits 1 unless every expectation holds significantly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import pandas as pd

from analysis import plots
from analysis.collect import HI, LO, MlflowSource, load_table, source_problems
from analysis.stats import TableError, compare_seeds
from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import Problems, StageConfig
from plumbing.errors import SuiteError
from plumbing.tracking import StageRun, tracking_uri


@dataclass
class SeedsConfig(StageConfig):
    stage: str = "seeds"
    source: str = "mlflow"  # mlflow (mlflow.experiment=NAME) | table (input=FILE)
    input: Optional[str] = None
    mlflow: MlflowSource = field(default_factory=MlflowSource)
    baseline: str = "outcome"  # variant names (tag `variant`)
    treatment: str = "ralign"
    lower: List[str] = field(default_factory=list)  # metrics the treatment should have lower
    higher: List[str] = field(default_factory=list)  # ... higher
    metrics: List[str] = field(default_factory=list)  # more metrics to report, no expectation
    alpha: float = field(default=0.05, metadata={"range": (1e-9, 1 - 1e-9)})  # in (0, 1)
    # only these seeds (default: every seed in the store); with require, each must have both
    # variants' values, so a verdict is about the seeds asked for, not whatever else ran there
    seeds: List[str] = field(default_factory=list)
    require: bool = False  # exit 1 unless every expectation holds (paired t-test and sign test p < alpha)

    def check(self) -> Problems:
        p = super().check()
        p += source_problems(self.source, self.input, self.mlflow, "TABLE.csv (columns variant, seed, metrics)")
        if not (self.lower or self.higher or self.metrics):
            p.append(("metrics", "name at least one metric: 'lower=[toy_test/s_corr]' 'higher=[downstream/avg]'"))
        if self.baseline == self.treatment:
            p.append(("treatment", "must differ from baseline"))
        if not 0 < self.alpha < 1:
            p.append(("alpha", "must be in (0, 1)"))
        return p


SCHEMA = SeedsConfig


def seed_table(cfg: SeedsConfig) -> pd.DataFrame:
    """One row per (variant, seed)."""
    table = load_table(cfg.source, cfg.input, cfg.mlflow, tracking_uri(cfg.tracking.uri, cfg.output_dir), by=["seed"])
    missing = [c for c in ("variant", "seed") if c not in table.columns]
    if missing:
        raise TableError(f"{cfg.input}: no column {missing[0]!r} (columns: {list(table.columns)})")
    return table


def seed_intervals(table: pd.DataFrame, metric: str, seeds: Dict[str, List[str]]) -> Dict[str, List[Any]]:
    """Each seed's own interval of ``metric`` (Wilson for a proportion, from analysis.collect),
    per variant in the order of ``seeds``; None where the table has none."""
    lo, hi = metric + LO, metric + HI
    if lo not in table.columns or hi not in table.columns:
        return {}
    bounds = {(str(r["variant"]), str(r["seed"])): (r[lo], r[hi]) for r in table.to_dict("records")}
    return {v: [bounds.get((v, s)) for s in ss] for v, ss in seeds.items()}


def _fmt(e: Dict[str, Any]) -> str:
    if e["mean"] is None:
        return "-"
    ci = e["ci"]
    return f"{e['mean']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{e['mean']:.3f}"


def _p(p: Optional[float]) -> str:
    return "-" if p is None else (f"{p:.2g}" if p >= 1e-4 else "<1e-4")


def verdict(e: Dict[str, Any]) -> str:
    """``holds`` (the expected side, paired t-test and sign test p < alpha), ``not
    significant`` (the expected side, by chance as far as the seeds tell), ``does not hold``,
    or ``no paired seeds`` (the metric is missing for a variant in every seed)."""
    if "expect" not in e:
        return "-"
    if not e["difference"]["seeds"]:
        return "no paired seeds"
    word = "holds" if e["significant"] else ("not significant" if e["holds"] else "does not hold")
    return f"{word} (p {_p(e['t_test']['p'])}, sign {_p(e['sign_test']['p'])}, n {len(e['difference']['seeds'])})"


def report_rows(result: Dict[str, Dict[str, Any]], variants: List[str]) -> List[List[Any]]:
    rows = []
    for metric, e in result.items():
        sign = e.get("sign_test")
        rows.append([metric, *[_fmt(e["variants"][v]) if v in e["variants"] else "-" for v in variants],
                     _fmt(e["difference"]), e.get("expect", "-"),
                     f"{sign['agree']}/{sign['n']} (p {_p(sign['p'])})" if sign else "-", verdict(e)])
    return rows


def run(cfg: SeedsConfig, tracker: StageRun) -> Dict[str, Any]:
    from plumbing.report import markdown
    from plumbing.report import table as text_table

    out = Path(cfg.output_dir)
    table = seed_table(cfg)
    if cfg.seeds:
        table = table[table["seed"].astype(str).isin([str(s) for s in cfg.seeds])]
    if table.empty:
        raise TableError("no genrm_eval or downstream_eval runs with a variant were found"
                         + (f" for seeds {list(cfg.seeds)}" if cfg.seeds else ""))
    table.to_csv(out / "seeds.csv", index=False)
    expect = {**{m: None for m in cfg.metrics}, **{m: "lower" for m in cfg.lower}, **{m: "higher" for m in cfg.higher}}
    result = {m: compare_seeds(table, m, cfg.baseline, cfg.treatment, e, cfg.alpha) for m, e in expect.items()}
    (out / "seeds.json").write_text(json.dumps(result, indent=2))
    variants = sorted({v for e in result.values() for v in e["variants"]})
    level = f"{100 * (1 - cfg.alpha):g}%"
    headers = ["metric", *variants, f"{cfg.treatment} - {cfg.baseline}", "expected", "seeds agreeing", "verdict"]
    rows = report_rows(result, variants)
    n_seeds = table["seed"].nunique()
    intro = (f"{n_seeds} seeds; mean [{level} t interval] per variant and of the paired difference; a claim holds "
             f"when the paired t-test (two-sided) and the sign test (one-sided, the seeds agreeing) both give "
             f"p < {cfg.alpha:g}")
    (out / "seeds.md").write_text(f"# Across seeds\n\n{intro}\n\n" + markdown(headers, rows))
    colours = plots.variant_colours(table["variant"])
    for metric, e in result.items():
        plots.seed_points(metric, {v: list(e["variants"][v]["values"].values()) for v in e["variants"]},
                          {v: e["variants"][v] for v in e["variants"]}, out / "plots" / f"seeds_{plots.safe_name(metric)}.png",
                          colours, seed_intervals(table, metric, {v: list(e["variants"][v]["values"]) for v in e["variants"]}))
        diff = e["difference"]
        if diff["mean"] is not None:
            tracker.log_metrics({f"seeds/{metric}/difference": diff["mean"]})
    for name in ("seeds.json", "seeds.csv", "seeds.md"):
        tracker.log_artifact(out / name)
    tracker.log_artifact(out / "plots", "plots")
    print(f"\n{intro}")
    print(text_table(headers, rows))
    failed = {m: verdict(e) for m, e in result.items() if "expect" in e and not e["significant"]}
    for m, e in result.items():
        missing = sorted({str(s) for s in cfg.seeds} - set(e["difference"]["seeds"]))
        if "expect" in e and missing:
            failed[m] = f"{failed.get(m, verdict(e))}; no {cfg.baseline}/{cfg.treatment} pair for seeds {missing}"
    if cfg.require and failed:
        raise SuiteError(f"expected {cfg.treatment} vs {cfg.baseline} does not hold at p < {cfg.alpha:g} for "
                         f"{list(failed)}: {'; '.join(failed.values())} (see {out / 'seeds.md'})")
    return {"seeds": n_seeds, "holds": {m: e["holds"] for m, e in result.items() if "holds" in e},
            "significant": {m: e["significant"] for m, e in result.items() if "expect" in e}}


main = stage_main("seeds")

if __name__ == "__main__":
    main()
