"""The README's main job, `ralign run experiment=smoke`: the whole paper in miniature on CPU,
every stage for real, in one MLflow parent run (slow: several minutes)."""

from __future__ import annotations

import json
import re

import pytest
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STEPS = ["preflight", "genrm_outcome", "genrm_ralign", "eval_base", "eval_outcome", "eval_ralign", "policy_base",
         "policy_outcome", "policy_ralign", "downstream_base", "downstream_outcome", "downstream_ralign", "correlate",
         "compare"]


@pytest.mark.timeout(2700)  # ~25 min on 2 cores, over the suite's 600 s default
def test_smoke_experiment_end_to_end(tmp_path, cli, ralign):
    out = tmp_path / "smoke"
    r = cli([ralign, "run", "experiment=smoke", f"output_dir={out}"], timeout=2700)
    assert r.returncode == 0, r.stderr[-4000:]
    steps = json.loads((out / "pipeline.json").read_text())
    assert {n: s["status"] for n, s in steps.items()} == {n: "ok" for n in STEPS}
    assert "[14/14] compare" in r.stdout and "mlflow ui --backend-store-uri" in r.stdout
    # the results per GenRM variant, printed and written
    assert "Results per GenRM variant" in r.stdout and "toy_test/s_corr" in r.stdout
    results = (out / "results.md").read_text()
    assert all(f"| {v} |" in results for v in ("base", "outcome", "ralign")) and "downstream/toy_math" in results
    assert re.search(r"\| ralign \| \d\.\d{4} \[\d\.\d{3}, \d\.\d{3}\] \|", results), results  # with its interval
    assert "toy_test/s_corr:lo" in (out / "results.csv").read_text().splitlines()[0]

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    parent = next(x for x in runs if x.data.tags["stage"] == "pipeline")
    children = [x for x in runs if x.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert {"results.csv", "results.md"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert len(children) == len(STEPS) and all(x.info.status == "FINISHED" for x in children)
    variants = {x.data.tags.get("step"): x.data.tags.get("variant") for x in children}
    assert variants["eval_ralign"] == variants["policy_ralign"] == variants["downstream_ralign"] == "ralign"

    # the GenRMs were warm started, so they write verdicts the parser reads, and the oracle judged their reasons
    for v in ("base", "outcome", "ralign"):
        bench = json.loads((out / f"eval_{v}" / "summary.json").read_text())["benchmarks"]
        toy = bench["toy_test"]
        assert toy["n"] == 128 and toy["parse_fail"] < 32 and 0 <= toy["l_acc"] <= 1
        assert toy["metarm_calls"] > 0 and toy["s_corr"] is not None
        assert bench["toy_test_checklist"]["ap"] is not None
    down = json.loads((out / "downstream_ralign" / "summary.json").read_text())
    assert "toy_math" in down["tasks"] and {"stem", "code", "if"} <= set(down["domains"])
    toy_math = down["tasks"]["toy_math"]
    assert toy_math["samples"] == 4 * 128 and toy_math["verdicts"].get("correct", 0) > 0  # the policy answers
    corr = json.loads((out / "correlate" / "correlations.json").read_text())
    assert set(corr) == {"toy_test/l_acc", "toy_test/s_corr", "toy_test/f_score", "toy_test_checklist/ap"}
    assert all(e["n"] == 3 for e in corr.values())
    assert (out / "compare" / "report.md").exists() and list((out / "correlate" / "plots").glob("*.png"))
    # the report's two figures over training: downstream score per policy step (each variant's
    # kept checkpoints and its final policy) and the GenRMs' training dynamics
    report = (out / "compare" / "report.md").read_text()
    curves = json.loads((out / "compare" / "checkpoint_curves.json").read_text())["downstream/toy_math"]
    assert len(curves) == 3 and all([s for s, _ in pts][-3:] == [40, 80, 120] for pts in curves.values()), curves
    assert (out / "compare" / "plots" / "checkpoint_curves_1.png").exists() and "checkpoint_curves_1.png" in report
    assert (out / "compare" / "plots" / "genrm_dynamics.png").exists() and "genrm_dynamics.png" in report
    assert "no training dynamics" not in report and "no rationale signal" not in report  # outcome is measured too
