"""analysis.seeds against a real sqlite MLflow holding a 3-seed sweep of two GenRM variants,
tagged the way the pipeline tags its steps (variant, seed); the numbers checked against
scipy computed here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from analysis.collect import collect
from analysis.plots import expected_size, png_size
from plumbing import tracking
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.errors import SuiteError

pytestmark = pytest.mark.integration

# variant -> per seed (S-Corr on toy_test, toy accuracy downstream)
WORLD = {"outcome": [(0.40, 0.30), (0.35, 0.36), (0.45, 0.28), (0.30, 0.50), (0.38, 0.33)],
         "ralign": [(0.05, 0.45), (0.02, 0.46), (0.10, 0.47), (0.04, 0.45), (0.06, 0.30)]}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = tracking.tracking_uri(None, tmp_path_factory.mktemp("mlflow"))
    for variant, per_seed in WORLD.items():
        for seed, (s_corr, acc) in enumerate(per_seed):
            for stage, metrics in (("genrm_eval", {"toy_test/s_corr": s_corr, "toy_test/s_corr_ci_lo": 0.0}),
                                   ("downstream_eval", {"downstream/toy_math": acc})):
                tags = tracking.run_tags(stage, "toy_check", seed, "sweep", {"variant": variant})
                with tracking.start_run(uri=uri, experiment="toy_check", run_name=stage, tags=tags) as run:
                    run.log_metrics(metrics)
    return uri


def _t_interval(values):
    v = np.asarray(values)
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return [v.mean() - half, v.mean() + half]


def test_collect_keeps_a_row_per_variant_and_seed(store):
    table = collect(store, ["toy_check"], by=["seed"]).set_index(["variant", "seed"])
    assert len(table) == 10
    assert table.loc[("ralign", "2"), "toy_test/s_corr"] == pytest.approx(0.10)
    assert table.loc[("outcome", "1"), "downstream/toy_math"] == pytest.approx(0.36)


def test_seeds_stage_reports_means_intervals_and_the_verdict(store, tmp_path):
    out = tmp_path / "seeds"
    obj, cfg = finalize(*compose("seeds", [f"output_dir={out}", "mlflow.experiment=[toy_check]", f"mlflow.uri={store}",
                                           "lower=[toy_test/s_corr]", "higher=[downstream/toy_math]"]))
    summary = execute("seeds", obj, cfg)
    assert summary["holds"] == {"toy_test/s_corr": True, "downstream/toy_math": True} and summary["seeds"] == 5
    assert summary["significant"] == {"toy_test/s_corr": True, "downstream/toy_math": False}
    result = json.loads((out / "seeds.json").read_text())
    s_corr = result["toy_test/s_corr"]
    ralign = [s for s, _ in WORLD["ralign"]]
    assert s_corr["variants"]["ralign"]["mean"] == pytest.approx(np.mean(ralign))
    assert s_corr["variants"]["ralign"]["ci"] == pytest.approx(_t_interval(ralign))
    diffs = [r[0] - o[0] for r, o in zip(WORLD["ralign"], WORLD["outcome"])]
    assert s_corr["difference"]["mean"] == pytest.approx(np.mean(diffs))
    assert s_corr["difference"]["ci"] == pytest.approx(_t_interval(diffs)) and s_corr["significant"]
    assert s_corr["t_test"]["p"] == pytest.approx(stats.ttest_rel([r for r, _ in WORLD["ralign"]],
                                                                  [o for o, _ in WORLD["outcome"]]).pvalue)
    assert s_corr["sign_test"] == {"agree": 5, "n": 5, "p": pytest.approx(1 / 32)}
    acc = result["downstream/toy_math"]  # 3 seeds of 5 higher, two lower: the right side, not significant
    acc_diffs = [r[1] - o[1] for r, o in zip(WORLD["ralign"], WORLD["outcome"])]
    assert acc["holds"] and not acc["significant"] and acc["t_test"]["p"] == pytest.approx(
        stats.ttest_1samp(acc_diffs, 0).pvalue) and acc["t_test"]["p"] > 0.05
    assert acc["sign_test"] == {"agree": 3, "n": 5, "p": pytest.approx(16 / 32)}
    assert s_corr["variants"]["outcome"]["values"] == {"0": 0.40, "1": 0.35, "2": 0.45, "3": 0.30, "4": 0.38}
    md = (out / "seeds.md").read_text()
    assert "toy_test/s_corr" in md and "holds (p" in md and "not significant (p" in md and "5 seeds" in md
    assert "5/5 (p 0.031)" in md
    assert png_size(out / "plots" / "seeds_toy_test_s_corr.png") == expected_size()


def test_seeds_stage_fails_when_required_and_the_expectation_does_not_hold(store, tmp_path):
    obj, cfg = finalize(*compose("seeds", [f"output_dir={tmp_path}", "mlflow.experiment=[toy_check]",
                                           f"mlflow.uri={store}", "higher=[toy_test/s_corr]", "require=true"]))
    with pytest.raises(SuiteError, match=r"for \['toy_test/s_corr'\]: does not hold \(p "):
        execute("seeds", obj, cfg)
    assert json.loads((tmp_path / "seeds.json").read_text())["toy_test/s_corr"]["holds"] is False  # written first


def test_seeds_stage_requires_significance_not_only_the_direction(store, tmp_path):
    """The toy accuracy is higher with ralign on average (3 seeds of 5) but not at p < 0.05:
    require=true refuses it, naming the metric and its p; four seeds that all agree are not
    enough either (the sign test cannot reach 0.05 below 5), nor is a seed asked for and missing."""
    obj, cfg = finalize(*compose("seeds", [f"output_dir={tmp_path}", "mlflow.experiment=[toy_check]",
                                           f"mlflow.uri={store}", "lower=[toy_test/s_corr]",
                                           "higher=[downstream/toy_math]", "require=true"]))
    with pytest.raises(SuiteError, match=r"at p < 0.05 for \['downstream/toy_math'\]: not significant \(p 0\.\d+, sign 0\.5, n 5\)"):
        execute("seeds", obj, cfg)
    obj, cfg = finalize(*compose("seeds", [f"output_dir={tmp_path / 'b'}", "mlflow.experiment=[toy_check]",
                                           f"mlflow.uri={store}", "lower=[toy_test/s_corr]", "require=true"]))
    assert execute("seeds", obj, cfg)["significant"] == {"toy_test/s_corr": True}
    obj, cfg = finalize(*compose("seeds", [f"output_dir={tmp_path / 'c'}", "mlflow.experiment=[toy_check]",
                                           f"mlflow.uri={store}", "lower=[toy_test/s_corr]", "seeds=[0,1,2,3]",
                                           "require=true"]))
    with pytest.raises(SuiteError, match=r"not significant \(p .*, sign 0\.062, n 4\)"):
        execute("seeds", obj, cfg)  # t-test p ~ 0.001, but 4 of 4 agreeing is p 1/16
    obj, cfg = finalize(*compose("seeds", [f"output_dir={tmp_path / 'd'}", "mlflow.experiment=[toy_check]",
                                           f"mlflow.uri={store}", "lower=[toy_test/s_corr]", "seeds=[0,1,2,3,4,9]",
                                           "require=true"]))
    with pytest.raises(SuiteError, match=r"holds .*; no outcome/ralign pair for seeds \['9'\]"):
        execute("seeds", obj, cfg)
