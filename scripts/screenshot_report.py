"""Regenerate docs/compare_report.png: the compare report of a pipeline's MLflow store, as a
headless Chromium shows it (the metric table with intervals, the correlations, the top plots).

    .venv/bin/python scripts/screenshot_report.py [--store runs/smoke/mlflow.db] [--experiment smoke]
        [--out docs/compare_report.png] [--height 1700] [compare overrides ...]

Default store: the newest ``outputs/*/*/mlflow.db`` or ``runs/*/mlflow.db`` (a smoke pipeline's:
``ralign run experiment=smoke``). The store is copied first and never written. Runs logged before
downstream_eval logged ``downstream/<task>/n`` get it in the copy from their own summary.json
artifact, so their pass rates have Wilson intervals too. Needs a Chromium: ``apt-get install
chromium-headless-shell`` (or chromium), or set CHROMIUM=/path/to/binary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell")


def default_store() -> Optional[Path]:
    found = [p for pattern in ("outputs/*/*/mlflow.db", "runs/*/mlflow.db") for p in REPO.glob(pattern)]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def browser() -> str:
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in BROWSERS:
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("no Chromium found: apt-get install chromium-headless-shell (or set CHROMIUM=/path/to/chrome)")


def backfill_task_counts(uri: str, experiment: str) -> int:
    """Log ``downstream/<task>/n`` from each downstream_eval run's summary.json where the run
    lacks it (runs written before downstream_eval logged it). Returns how many were added."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        sys.exit(f"no MLflow experiment {experiment!r} in {uri}")
    added = 0
    for run in client.search_runs([exp.experiment_id], "tags.stage = 'downstream_eval'", max_results=1000):
        if any(k.startswith("downstream/") and k.endswith("/n") for k in run.data.metrics):
            continue
        try:
            with tempfile.TemporaryDirectory() as tmp:
                summary = json.loads(Path(client.download_artifacts(run.info.run_id, "summary.json", tmp)).read_text())
        except Exception as e:  # no summary: the report shows the stage's interval without n
            print(f"[screenshot] {run.info.run_id}: no summary.json ({e})", file=sys.stderr)
            continue
        for task, s in summary.get("tasks", {}).items():
            if s.get("score") is not None and s.get("n"):
                client.log_metric(run.info.run_id, f"downstream/{task}/n", s["n"])
                added += 1
    return added


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=None, help="an MLflow sqlite file (default: the newest pipeline's)")
    ap.add_argument("--experiment", default="smoke")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "compare_report.png")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1700)
    ap.add_argument("overrides", nargs="*", help="more overrides for analysis.compare, e.g. y=downstream/toy_math")
    args = ap.parse_args(argv)
    store = args.store or default_store()
    if store is None or not store.is_file():
        sys.exit("no MLflow store: run a pipeline (ralign run experiment=smoke) or give --store PATH/mlflow.db")
    with tempfile.TemporaryDirectory(prefix="compare_report_") as tmp:
        db = Path(tmp) / "mlflow.db"
        shutil.copy2(store, db)
        uri = f"sqlite:///{db}"
        print(f"[screenshot] {store} (copied): {backfill_task_counts(uri, args.experiment)} task counts backfilled")
        report = Path(tmp) / "compare"
        subprocess.run([sys.executable, "-m", "analysis.compare", f"mlflow.experiment=[{args.experiment}]",
                        f"mlflow.uri={uri}", f"output_dir={report}", "tracking.enabled=false", *args.overrides],
                       cwd=REPO, check=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={args.width},{args.height}", f"--screenshot={args.out.resolve()}",
                        (report / "report.html").as_uri()], check=True, capture_output=True, timeout=120)
    print(f"[screenshot] wrote {args.out}")


if __name__ == "__main__":
    main()
