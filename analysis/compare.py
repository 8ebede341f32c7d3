"""compare: a side-by-side report of GenRM variants (python -m analysis.compare).

    python -m analysis.compare mlflow.experiment=ralign_paper_8b mlflow.uri=sqlite:///runs/mlflow.db output_dir=DIR

Per benchmark, the L-Acc of each variant split into the part that is right for the right
reasons (F-Score) and the spurious part (the S-Corr share), as the R-Align paper shows it;
downstream scores per domain; training curves (reward, KL, response length) of the
training runs from their MLflow metric history; the metric table. Writes DIR/report.md
(PNG files beside it) and DIR/report.html (PNGs embedded), and logs them to MLflow.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import pandas as pd

from analysis import plots
from analysis.collect import GENRM_TRAIN, POLICY, MlflowSource, RunInfo, resolve_variants, runs_table, search
from analysis.stats import TableError
from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import Problems, StageConfig
from plumbing.report import markdown
from plumbing.tracking import StageRun

DEFAULT_CURVES = {
    # one kind of curve: the metric names the engines log it under (first found wins)
    "reward": ["reward", "train/reward", "rollout/reward_mean", "rewards/mean"],
    "kl": ["kl", "train/kl", "objective/kl"],
    "response_length": ["completions/mean_length", "train/response_length", "rollout/response_length_mean",
                        "response_length"],
}


@dataclass
class CompareConfig(StageConfig):
    stage: str = "compare"
    mlflow: MlflowSource = field(default_factory=MlflowSource)
    variants: List[str] = field(default_factory=list)  # only these (default: all found)
    curves: Dict[str, List[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_CURVES.items()})
    title: str = "GenRM variants side by side"

    def check(self) -> Problems:
        p = super().check()
        if not self.mlflow.experiment:
            p.append(("mlflow.experiment", "give the MLflow experiment(s) to read: mlflow.experiment=NAME"))
        return p


SCHEMA = CompareConfig
# The report's downstream columns: task scores, domain means, the average (not intervals or counts).
_DOWNSTREAM_SCORE = re.compile(r"^downstream/(?:domain/)?[^/]+$")
_BENCH_METRIC = re.compile(r"^(?!downstream/)(?!corr/)(?!pipeline/)([^/]+)/(l_acc|s_corr|f_score|precision|recall|f1|ap)$")


def benchmarks_of(table: pd.DataFrame) -> List[str]:
    return sorted({m.group(1) for c in table.columns if (m := _BENCH_METRIC.match(str(c)))})


def histories(uri: str, runs: Sequence[RunInfo], variants: Dict[str, str], names: Sequence[str],
              stage: str) -> Dict[str, List[Tuple[int, float]]]:
    """Metric history of the first of ``names`` each training run of ``stage`` has, by variant."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    out: Dict[str, List[Tuple[int, float]]] = {}
    for r in runs:
        name = next((n for n in names if n in r.metrics), None) if r.stage == stage else None
        if name is not None:
            label = f"{variants.get(r.run_id, r.run_id[:8])} ({r.run_id[:6]})"
            out[label] = [(m.step, m.value) for m in client.get_metric_history(r.run_id, name)]
    return out


def build_report(table: pd.DataFrame, curves: Dict[str, Dict[str, List[Tuple[int, float]]]], out: Path,
                 title: str) -> Dict[str, Path]:
    """Plots + markdown + HTML from a variant table and training curves (no MLflow needed)."""
    out.mkdir(parents=True, exist_ok=True)
    figures: List[Tuple[str, Path]] = []
    variants = [str(v) for v in table["variant"]]
    for bench in benchmarks_of(table):
        l_col, f_col = f"{bench}/l_acc", f"{bench}/f_score"
        if l_col in table and f_col in table and table[f_col].notna().any():
            figures.append((f"{bench}: L-Acc and F-Score", plots.label_vs_fidelity(
                bench, variants, table[l_col], table[f_col], out / "plots" / f"fidelity_{plots.safe_name(bench)}.png")))
        elif l_col in table:
            figures.append((f"{bench}: L-Acc", plots.grouped_bars(
                variants, {"L-Acc": table[l_col]}, "L-Acc", f"{bench}: label accuracy",
                out / "plots" / f"l_acc_{plots.safe_name(bench)}.png")))
    domains = sorted(c.split("/", 2)[2] for c in table.columns if str(c).startswith("downstream/domain/"))
    if domains:
        series = {v: [table.loc[table["variant"] == v, f"downstream/domain/{d}"].iloc[0] for d in domains]
                  for v in variants}
        figures.append(("Downstream scores per domain", plots.grouped_bars(
            domains, series, "score", "downstream scores per domain", out / "plots" / "downstream_domains.png")))
    for kind, hist in curves.items():  # kind: "<stage> <metric>", e.g. "policy_train reward"
        if hist:
            figures.append((f"Training curves: {kind}", plots.curves(
                hist, kind.split(" ", 1)[-1], kind, out / "plots" / f"curve_{plots.safe_name(kind)}.png")))

    shown = ["variant"] + [c for c in table.columns if _BENCH_METRIC.match(str(c)) or _DOWNSTREAM_SCORE.match(str(c))]
    md_table = _markdown_table(table[shown])
    md = [f"# {title}", "", f"{len(table)} variant(s).", "", "## Metrics", "", md_table, ""]
    for caption, path in figures:
        md += [f"## {caption}", "", f"![{caption}]({path.relative_to(out).as_posix()})", ""]
    (out / "report.md").write_text("\n".join(md))
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{len(table)} variant(s).</p>", "<h2>Metrics</h2>",
            table[shown].to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")]
    for caption, path in figures:
        data = base64.b64encode(path.read_bytes()).decode()
        body += [f"<h2>{html.escape(caption)}</h2>", f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">']
    (out / "report.html").write_text("<!doctype html><html><head><meta charset='utf-8'><title>"
                                     f"{html.escape(title)}</title></head><body>" + "\n".join(body) + "</body></html>")
    return {"markdown": out / "report.md", "html": out / "report.html", **{c: p for c, p in figures}}


def _markdown_table(frame: pd.DataFrame) -> str:
    return markdown(list(frame.columns), [list(r) for r in frame.itertuples(index=False)]).rstrip("\n")


def run(cfg: CompareConfig, tracker: StageRun) -> Dict[str, Any]:
    from plumbing.tracking import tracking_uri

    out = Path(cfg.output_dir)
    uri = cfg.mlflow.uri or tracking_uri(cfg.tracking.uri, cfg.output_dir)
    try:
        runs = search(uri, cfg.mlflow.experiment, cfg.mlflow.filter)
    except LookupError as e:
        raise TableError(str(e)) from None
    table = runs_table(runs)
    if cfg.variants:
        table = table[table["variant"].isin(cfg.variants)]
    if table.empty:
        raise TableError(f"no finished genrm_eval or downstream_eval runs in {cfg.mlflow.experiment} at {uri}")
    variants = resolve_variants(runs)
    chosen = [r for r in runs if not cfg.variants or variants.get(r.run_id) in cfg.variants]
    curves = {f"{stage} {kind}": histories(uri, chosen, variants, names, stage)
              for stage in (GENRM_TRAIN, POLICY) for kind, names in cfg.curves.items()}
    table.to_csv(out / "table.csv", index=False)
    files = build_report(table, curves, out, cfg.title)
    for name in ("report.md", "report.html", "table.csv"):
        tracker.log_artifact(out / name)
    tracker.log_artifact(out / "plots", "plots")
    print(f"[compare] {len(table)} variants -> {files['markdown']} and {files['html']}")
    return {"variants": list(table["variant"]), "report": str(files["html"]), "figures": len(files) - 2}


main = stage_main("compare")

if __name__ == "__main__":
    main()
