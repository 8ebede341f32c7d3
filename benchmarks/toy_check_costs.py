"""What each step of a toy_check run cost, from its MLflow store: per step, the median and
range of its wall time over the seeds, and the whole run's wall time (first start to last end
of every run in the store: a store holding an earlier or resumed run reads longer).
With seeds in lanes at once (scripts/toy_check.sh, JOBS=2) a step's time is its share of a
machine busy with the other lane as well.

    python benchmarks/toy_check_costs.py runs/toy_check/mlflow.db [EXPERIMENT]
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict


def main(db: str, experiment: str = "toy_check") -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}" if "://" not in db else db)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"{db}: no experiment {experiment!r}")
    runs = [r for r in client.search_runs([exp.experiment_id], max_results=5000)
            if r.info.status == "FINISHED" and r.info.end_time and r.data.tags.get("stage") not in ("sweep", None)]
    steps = defaultdict(list)
    for r in runs:
        name = r.data.tags.get("step") or ("pipeline (one seed)" if r.data.tags.get("stage") == "pipeline" else None)
        if name:
            steps[name].append((r.info.end_time - r.info.start_time) / 1000)
    seeds = {r.data.tags.get("seed") for r in runs}
    wall = (max(r.info.end_time for r in runs) - min(r.info.start_time for r in runs)) / 1000
    print(f"{len(seeds)} seeds, {len(runs)} runs; whole run {wall / 60:.1f} min\n")
    print(f"{'step':<22} {'n':>3} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, times in sorted(steps.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"{name:<22} {len(times):>3} {statistics.median(times):>9.1f} {min(times):>7.1f} {max(times):>7.1f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
