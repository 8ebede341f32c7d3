"""analysis.collect against a real sqlite MLflow store: a rerun with a changed config replaces
the older run of its (variant, seed) instead of being averaged with it as if it were a seed."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from analysis.collect import MixedConfigWarning, collect
from plumbing import tracking

pytestmark = pytest.mark.integration


def _eval(uri, variant, seed, config_hash, metrics, params=None):
    tags = tracking.run_tags("genrm_eval", "exp", seed, None, {"variant": variant, "config_hash": config_hash,
                                                                 "step": f"eval_{variant}"})
    with tracking.start_run(uri=uri, experiment="exp", run_name=f"eval_{variant}", tags=tags) as run:
        if params:
            run.log_params(params)
        run.log_metrics(metrics)
    time.sleep(0.01)  # "newest" is by start time (ms)
    return run.run_id


def _counts(correct_labels, n):
    return {"bench/l_acc": correct_labels / n, "bench/n": n, "bench/label_correct": correct_labels}


@pytest.fixture
def uri(tmp_path):
    return tracking.tracking_uri(None, tmp_path)


def test_a_rerun_with_a_changed_config_replaces_the_older_run(uri):
    _eval(uri, "ralign", 0, "aaaa", _counts(61, 122))
    newest = _eval(uri, "ralign", 0, "bbbb", _counts(100, 122))
    row = collect(uri, ["exp"]).set_index("variant").loc["ralign"]
    assert row["n_runs"] == 1 and row["genrm_eval_runs"] == 1
    assert row["bench/l_acc"] == pytest.approx(100 / 122)  # the newest run's, not the mean 0.66
    assert row["genrm_eval_run_ids"] == newest and row["genrm_eval_config_hash"] == "bbbb"
    assert row["bench/l_acc:n"] == 122  # the interval is the newest run's alone


def test_two_seeds_are_averaged(uri):
    _eval(uri, "ralign", 0, "aaaa", _counts(61, 122))
    _eval(uri, "ralign", 1, "cccc", _counts(100, 122))
    table = collect(uri, ["exp"])
    row = table.set_index("variant").loc["ralign"]
    assert row["n_runs"] == 2 and row["bench/l_acc"] == pytest.approx(161 / 244)
    assert row["genrm_eval_config_hash"] == "aaaa,cccc"
    by_seed = collect(uri, ["exp"], by=["seed"]).set_index(["variant", "seed"])
    assert by_seed.loc[("ralign", "1"), "bench/l_acc"] == pytest.approx(100 / 122)


def test_rerun_of_one_seed_and_a_rerun_that_measured_less(uri):
    """Each metric comes from the newest run that logged it; a row that then draws on two
    configurations of one step says so."""
    old = _eval(uri, "v", 0, "aaaa", {**_counts(10, 20), "other/l_acc": 0.3})
    _eval(uri, "v", 0, "bbbb", _counts(15, 20))
    with pytest.warns(MixedConfigWarning, match="other/l_acc"):
        table = collect(uri, ["exp"])
    row = table.set_index("variant").loc["v"]
    assert row["bench/l_acc"] == pytest.approx(0.75) and row["other/l_acc"] == pytest.approx(0.3)
    assert old in row["genrm_eval_run_ids"] and any("other/l_acc" in w for w in table.attrs["warnings"])


def test_seeds_run_with_different_settings_are_flagged(uri):
    _eval(uri, "v", 0, "aaaa", _counts(10, 20), {"seed": 0, "genrm.sampling.temperature": 0.7,
                                                  "output_dir": "/runs/s0/eval_v"})
    _eval(uri, "v", 1, "bbbb", _counts(12, 20), {"seed": 1, "genrm.sampling.temperature": 0.7,
                                                  "output_dir": "/runs/s1/eval_v"})
    table = collect(uri, ["exp"])  # seed and output folder differ: nothing to say
    assert not table.attrs["warnings"]
    _eval(uri, "v", 2, "cccc", _counts(12, 20), {"seed": 2, "genrm.sampling.temperature": 1.0,
                                                  "output_dir": "/runs/s2/eval_v"})
    with pytest.warns(MixedConfigWarning, match="genrm.sampling.temperature"):
        collect(uri, ["exp"])


def _wilson(k, n):
    from scipy import stats

    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return [ci.low, ci.high]


def test_intervals_travel_through_collect(uri):
    """Wilson from the counts for proportions (pooled over seeds), the stage's own interval
    for a mean it logged one for, a t interval over seeds for the rest."""
    counts = {"bench/n": 122, "bench/label_correct": 0, "bench/correct": 0, "bench/incorrect": 0, "bench/l_acc": 0.0,
              "bench/ap": 0.4, "bench/ap_ci_lo": 0.3, "bench/ap_ci_hi": 0.5, "bench/valid": 100}
    _eval(uri, "v", 0, "aaaa", counts)
    tags = tracking.run_tags("downstream_eval", "exp", 0, None, {"variant": "v"})
    with tracking.start_run(uri=uri, experiment="exp", run_name="down", tags=tags) as run:
        run.log_metrics({"downstream/math": 0.25, "downstream/math/n": 8, "downstream/math/ci_lo": 0.0,
                         "downstream/math/ci_hi": 0.5, "downstream/judge": 0.55, "downstream/judge/n": 3,
                         "downstream/judge/ci_lo": 0.5, "downstream/judge/ci_hi": 0.6})
    row = collect(uri, ["exp"]).set_index("variant").loc["v"]
    assert [row["bench/l_acc:lo"], row["bench/l_acc:hi"]] == pytest.approx(_wilson(0, 122))
    assert row["bench/l_acc:hi"] > 0.03 and row["bench/l_acc:interval"] == "Wilson" and row["bench/l_acc:n"] == 122
    assert "bench/s_corr:lo" not in row.index  # no judged sample: no S-Corr was logged, nor an interval
    assert [row["bench/ap:lo"], row["bench/ap:hi"], row["bench/ap:n"]] == [0.3, 0.5, 100]
    assert row["bench/ap:interval"] == "bootstrap (stage)"
    assert [row["downstream/math:lo"], row["downstream/math:hi"]] == pytest.approx(_wilson(2, 8))
    # 0.55 of 3 documents is no whole number of them: a mean of graded scores, the stage's interval
    assert row["downstream/judge:interval"] == "bootstrap (stage)" and row["downstream/judge:n"] == 3
    _eval(uri, "v", 1, "bbbb", {**counts, "bench/label_correct": 3, "bench/l_acc": 3 / 122, "bench/ap": 0.6})
    row = collect(uri, ["exp"]).set_index("variant").loc["v"]
    # two seeds: the spread between them (t, clipped to [0, 1]), wider here than the pooled Wilson
    from analysis.stats import mean_interval

    t = mean_interval([0.0, 3 / 122])["ci"]
    assert [row["bench/l_acc:lo"], row["bench/l_acc:hi"]] == pytest.approx([0.0, t[1]]) and t[0] < 0
    assert row["bench/l_acc:interval"] == "t over 2 seeds" and row["bench/l_acc:n"] == 2
    assert "bench/n:lo" not in row.index  # a count has no interval
    # seeds that agree exactly: never narrower than one evaluation's own noise (Wilson, pooled)
    _eval(uri, "w", 0, "cccc", counts)
    _eval(uri, "w", 1, "dddd", counts)
    row = collect(uri, ["exp"]).set_index("variant").loc["w"]
    assert [row["bench/l_acc:lo"], row["bench/l_acc:hi"]] == pytest.approx(_wilson(0, 244))
    assert row["bench/l_acc:interval"].startswith("Wilson, 2 seeds pooled")
    row = collect(uri, ["exp"]).set_index("variant").loc["v"]
    assert row["bench/ap:interval"] == "t over 2 seeds" and row["bench/ap"] == pytest.approx(0.5)


def test_evaluations_of_independently_trained_seeds_are_seeds_not_reruns():
    """Three GenRMs trained with seeds 1, 2, 3, each evaluated with `genrm.model=runs:/<id>`
    and the evaluation's default seed 0: three seeds to average, not one run and two reruns."""
    from analysis.collect import RunInfo, runs_table

    runs = [RunInfo(f"train{s}", "genrm_train", {"stage": "genrm_train", "reward": "ralign", "seed": str(s)},
                    {}, {}, "FINISHED", f"t{s}", 100 + s) for s in (1, 2, 3)]
    runs += [RunInfo(f"eval{s}", "genrm_eval", {"stage": "genrm_eval", "genrm_run_id": f"train{s}", "seed": "0"},
                     {}, {"hs3/l_acc": v}, "FINISHED", f"e{s}", 200 + s) for s, v in ((1, .70), (2, .60), (3, .80))]
    runs.append(RunInfo("eval3b", "genrm_eval", {"stage": "genrm_eval", "genrm_run_id": "train3", "seed": "0"},
                        {}, {"hs3/l_acc": .90}, "FINISHED", "e3b", 300))  # a rerun of seed 3's evaluation
    row = runs_table(runs).set_index("variant").loc["ralign"]
    assert row["n_runs"] == 3 and row["hs3/l_acc"] == pytest.approx((.70 + .60 + .90) / 3)
    assert row["superseded_run_ids"] == "eval3"
    by_seed = runs_table(runs, by=["seed"])
    assert sorted(by_seed["seed"]) == ["1/0", "2/0", "3/0"]


def test_averages_over_different_task_sets_are_flagged():
    from analysis.collect import MixedConfigWarning, RunInfo, runs_table

    runs = [RunInfo(f"d{v}", "downstream_eval", {"stage": "downstream_eval", "variant": v, "seed": "0"}, {},
                    {"downstream/avg": .5, "downstream/tasks_scored": k}, "FINISHED", v, 1) for v, k in (("a", 7), ("b", 5))]
    with pytest.warns(MixedConfigWarning, match="cover different numbers of tasks"):
        table = runs_table(runs)
    assert any("different numbers of tasks" in w for w in table.attrs["warnings"])


def test_the_pipeline_s_results_table_joins_its_own_runs_with_intervals(uri, tmp_path):
    """plumbing.pipeline prints and writes the table through the function conf/pipeline.yaml
    names (the shared pipeline imports no analysis code): its runs only, Wilson intervals."""
    from plumbing.config.hydra_app import compose
    from scipy.stats import binomtest

    from plumbing.pipeline import results_table

    ids = [_eval(uri, "ralign", 0, "aaaa", _counts(61, 122)), _eval(uri, "outcome", 0, "bbbb", _counts(100, 122))]
    _eval(uri, "elsewhere", 0, "cccc", _counts(1, 122))  # a run of another pipeline in the same store
    cfg, _ = compose("pipeline", ["experiment=smoke", f"output_dir={tmp_path}", "tracking.experiment=exp",
                                  "summary=[bench/l_acc,downstream/avg]"])
    assert cfg.results_table == "analysis.collect.results_table"

    logged = []
    md = results_table(cfg, SimpleNamespace(uri=uri, log_artifact=logged.append), ids)
    lo, hi = binomtest(61, 122).proportion_ci(method="wilson")
    assert md.splitlines()[:2] == ["| variant | bench/l_acc |", "|---|---|"]
    assert f"| ralign | 0.5000 [{lo:.3f}, {hi:.3f}] |" in md and "| outcome | 0.8197 [" in md
    assert "elsewhere" not in md and logged == [tmp_path / "results.csv"]
    header = (tmp_path / "results.csv").read_text().splitlines()[0]
    assert "bench/l_acc:lo" in header and "bench/n" in header  # the whole table: intervals and counts
    assert "Results per GenRM variant" in (tmp_path / "pipeline.log").read_text()


@pytest.mark.parametrize("override, message", [("results_table=null", "summary needs the function"),
                                               ("results_table=analysis.collect.no_such", "has no 'no_such'")])
def test_a_pipeline_summary_without_a_joining_function_stops_at_start(tmp_path, override, message):
    from plumbing.config.hydra_app import compose
    from plumbing.config.validate import ConfigError

    with pytest.raises(ConfigError) as err:
        compose("pipeline", ["experiment=smoke", f"output_dir={tmp_path}", override])
    assert [k for k, m in err.value.problems if message in m] == ["results_table"]
