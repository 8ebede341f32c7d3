"""The union of several experiments' variants (analysis.collect, correlate, compare) against a
real sqlite MLflow store: two experiments with overlapping variant names, two seeds each, the
pipeline's ``family_<key>`` tags; a seed sweep split over the experiments is one variant with
every seed, a seed run again in the other experiment is a rerun, not a second seed."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from analysis.collect import FamilyWarning, RunInfo, collect, runs_table
from plumbing import tracking
from plumbing.config.hydra_app import compose, execute, finalize

pytestmark = pytest.mark.integration

# variant -> (family_source, family_size, family_reward, L-Acc, F-Score, downstream/avg) of seed 0;
# seed s adds 0.01 * s to the downstream average and 0.002 * s to L-Acc
FAMILY = {
    "qwen3_8b": ("off_the_shelf", "8b", "base", 0.70, 0.40, 0.50),
    "rlvr_8b": ("trained", "8b", "rlvr", 0.80, 0.45, 0.52),
    "ralign_8b": ("trained", "8b", "ralign", 0.78, 0.60, 0.60),
    "qwen3_14b": ("off_the_shelf", "14b", "base", 0.74, 0.44, 0.55),
    "rlvr_14b": ("trained", "14b", "rlvr", 0.83, 0.50, 0.56),
    "ralign_14b": ("trained", "14b", "ralign", 0.81, 0.66, 0.66),
    "rrm_32b": ("off_the_shelf", "32b", "rrm", 0.85, 0.70, 0.64),
}
# where each (variant, seed) ran: paper_a (sweep a) ran the 8B family, paper_b (sweep b) the 14B
# family, RRM-32B, seeds 2 and 3 of ralign_8b (a seed sweep split over the experiments) and seed 1
# of rlvr_8b again (a rerun: its numbers replace paper_a's seed 1, it is no third seed)
PLAN = ([("paper_a", "a", v, s) for v in ("qwen3_8b", "rlvr_8b", "ralign_8b") for s in (0, 1)]
        + [("paper_b", "b", v, s) for v in ("qwen3_14b", "rlvr_14b", "ralign_14b") for s in (0, 1)]
        + [("paper_b", "b", "ralign_8b", s) for s in (2, 3)] + [("paper_b", "b", "rrm_32b", 0)]
        + [("paper_b", "b", "rlvr_8b", 1)])
RERUN_AVG = 0.40  # the rerun of rlvr_8b seed 1 in paper_b


def _values(variant, seed, rerun=False):
    _, _, _, l_acc, f_score, avg = FAMILY[variant]
    return l_acc + 0.002 * seed, f_score, RERUN_AVG if rerun else avg + 0.01 * seed


def _expected(variant):
    """(L-Acc, F-Score, downstream/avg, seeds) per variant: the seeds' mean, a rerun replacing its seed."""
    seeds = {}
    for exp, _, v, s in PLAN:
        if v == variant:
            seeds[s] = _values(v, s, rerun=(exp == "paper_b" and v == "rlvr_8b"))
    return (*[float(np.mean([vals[i] for vals in seeds.values()])) for i in range(3)], len(seeds))


def _log(uri, experiment, sweep, stage, variant, seed, metrics, families=True):
    source, size, reward = FAMILY[variant][:3]
    extra = {"variant": variant, "step": f"{stage}_{variant}", "config_hash": f"{experiment}-{variant}"}
    if families:
        extra |= {"family_source": source, "family_size": size, "family_reward": reward}
    tags = tracking.run_tags(stage, experiment, seed, sweep, extra)
    with tracking.start_run(uri=uri, experiment=experiment, run_name=f"{stage}_{variant}", tags=tags) as run:
        run.log_metrics(metrics)
    time.sleep(0.002)  # "newest" is by start time (ms): the rerun starts after the run it replaces
    return run.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = tracking.tracking_uri(None, tmp_path_factory.mktemp("mlflow"))
    ids = {}
    for exp, sweep, variant, seed in PLAN:
        rerun = exp == "paper_b" and variant == "rlvr_8b"
        l_acc, f_score, avg = _values(variant, seed, rerun)
        ids[(exp, variant, seed)] = [
            _log(uri, exp, sweep, "genrm_eval", variant, seed,
                 {"helpsteer3/l_acc": l_acc, "helpsteer3/f_score": f_score}),
            _log(uri, exp, sweep, "downstream_eval", variant, seed, {"downstream/avg": avg})]
    # another sweep in paper_b that the filter leaves out
    _log(uri, "paper_b", "stale", "genrm_eval", "qwen3_14b", 7, {"helpsteer3/l_acc": 0.01, "helpsteer3/f_score": 0.9})
    return uri, ids


SWEEPS = ["a", "b"]  # MLflow's filter has no OR: mlflow.sweep=[a,b] is the union of the two


def test_the_union_joins_variants_across_experiments_with_seeds_averaged(store):
    uri, ids = store
    table = collect(uri, ["paper_a", "paper_b"], sweeps=SWEEPS)
    assert not table.attrs["warnings"]
    rows = table.set_index("variant")
    assert sorted(rows.index) == sorted(FAMILY)
    for variant in FAMILY:
        l_acc, f_score, avg, seeds = _expected(variant)
        row = rows.loc[variant]
        assert row["n_runs"] == seeds, variant
        assert row["helpsteer3/l_acc"] == pytest.approx(l_acc) and row["downstream/avg"] == pytest.approx(avg)
        assert row["helpsteer3/f_score"] == pytest.approx(f_score)
        assert (row["family_source"], row["family_size"], row["family_reward"]) == FAMILY[variant][:3]
    # the seed sweep split over two experiments: four seeds, from both
    assert rows.loc["ralign_8b", "n_runs"] == 4 and rows.loc["ralign_8b", "downstream_eval_runs"] == 4
    assert rows.loc["ralign_8b", "experiments"] == "paper_a,paper_b" and rows.loc["ralign_8b", "sweeps"] == "a,b"
    assert rows.loc["ralign_8b", "downstream/avg:interval"] == "t over 4 seeds"
    # seed 1 of rlvr_8b ran in both: the newer run (paper_b) replaces the older, two seeds not three
    assert rows.loc["rlvr_8b", "n_runs"] == 2 and rows.loc["rlvr_8b", "downstream_eval_runs"] == 2
    assert rows.loc["rlvr_8b", "downstream/avg"] == pytest.approx((0.52 + RERUN_AVG) / 2)
    assert set(rows.loc["rlvr_8b", "superseded_run_ids"].split(",")) == set(ids[("paper_a", "rlvr_8b", 1)])
    assert rows.loc["rlvr_8b", "downstream/avg:n"] == 2
    # the family columns right after the variant, coarsest first; rows grouped by family
    assert list(table.columns[:4]) == ["variant", "family_source", "family_size", "family_reward"]
    assert list(table["variant"]) == ["qwen3_8b", "qwen3_14b", "rrm_32b", "ralign_8b", "rlvr_8b",
                                      "ralign_14b", "rlvr_14b"]
    # without the sweeps the stale sweep's seed joins qwen3_14b; a filter narrows as before
    assert collect(uri, ["paper_a", "paper_b"]).set_index("variant").loc["qwen3_14b", "n_runs"] == 3
    assert list(collect(uri, ["paper_a", "paper_b"], "tags.sweep_id = 'a'")["variant"]) == [
        "qwen3_8b", "ralign_8b", "rlvr_8b"]


def test_a_sweep_without_runs_or_a_bad_filter_stops_naming_the_key(store, tmp_path, cli, python):
    uri, _ = store
    base = [python, "-m", "analysis.correlate", "source=mlflow", f"mlflow.uri={uri}", "x=[helpsteer3/l_acc]",
            "mlflow.experiment=[paper_a,paper_b]", f"output_dir={tmp_path / 'o'}"]
    proc = cli([*base, "mlflow.sweep=[a,typo]"])
    assert proc.returncode == 2 and "mlflow.sweep: no finished run of sweep 'typo'" in proc.stderr
    proc = cli([*base, "mlflow.filter=\"tags.sweep_id IN ('a')\""])
    assert proc.returncode == 2 and "mlflow.filter: MLflow cannot search" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_by_seed_keeps_the_seeds_of_both_experiments_apart(store):
    uri, _ = store
    table = collect(uri, ["paper_a", "paper_b"], by=["seed"], sweeps=SWEEPS).set_index(["variant", "seed"])
    assert sorted(s for v, s in table.index if v == "ralign_8b") == ["0", "1", "2", "3"]
    assert table.loc[("ralign_8b", "3"), "experiments"] == "paper_b"
    assert table.loc[("rlvr_8b", "1"), "downstream/avg"] == pytest.approx(RERUN_AVG)
    assert table.loc[("rlvr_8b", "1"), "family_size"] == "8b"


def _run(uri, stage, overrides, tmp_path):
    obj, cfg = finalize(*compose(stage, [f"output_dir={tmp_path}", f"mlflow.uri={uri}",
                                         "mlflow.experiment=[paper_a,paper_b]", "mlflow.sweep=[a,b]",
                                         "bootstrap=200", "permutations=500", *overrides]))
    return execute(stage, obj, cfg)


def test_correlate_over_the_union_and_within_each_size(store, tmp_path, capsys):
    uri, _ = store
    out = tmp_path / "corr"
    summary = _run(uri, "correlate", ["source=mlflow", "x=[helpsteer3/f_score,helpsteer3/l_acc]",
                                      "within=family_size"], out)
    assert summary["rows"] == 7
    result = json.loads((out / "correlations.json").read_text())
    means = {v: _expected(v) for v in FAMILY}
    f = result["helpsteer3/f_score"]
    order = f["labels"]
    assert sorted(order) == sorted(FAMILY) and f["n"] == 7
    assert f["pearson"] == pytest.approx(np.corrcoef([means[v][1] for v in order], [means[v][2] for v in order])[0, 1])
    assert f["families"]["family_size"] == [FAMILY[v][1] for v in order]
    assert f["families"]["family_reward"] == [FAMILY[v][2] for v in order]
    within = f["within"]["family_size"]
    assert list(within) == ["8b", "14b", "32b"]  # natural order
    for size in ("8b", "14b"):
        members = [v for v in FAMILY if FAMILY[v][1] == size]
        assert sorted(within[size]["labels"]) == sorted(members) and within[size]["n"] == 3
        xs, ys = [means[v][1] for v in within[size]["labels"]], [means[v][2] for v in within[size]["labels"]]
        assert within[size]["pearson"] == pytest.approx(np.corrcoef(xs, ys)[0, 1])
    assert within["32b"]["n"] == 1 and "at least 3" in within["32b"]["undefined"]  # reported, not fatal
    table = pd.read_csv(out / "table.csv")
    assert {"family_size", "family_reward", "family_source", "experiments"} <= set(table.columns)
    printed = capsys.readouterr().out
    assert "family_size" in printed and "  family_size=14b" in printed and "within family_size=32b" in printed
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking.tracking_uri(None, out)).get_run(summary["mlflow_run_id"])
    assert run.data.metrics["corr/helpsteer3/f_score/family_size/8b/pearson"] == pytest.approx(within["8b"]["pearson"])


def test_correlate_within_a_column_the_table_lacks_stops_naming_it(tmp_path, cli, python):
    path = tmp_path / "t.csv"
    path.write_text("variant,a,y\nv1,1,1\nv2,2,2\nv3,3,4\n")
    proc = cli([python, "-m", "analysis.correlate", f"input={path}", "x=[a]", "y=y", "within=family_size",
                f"output_dir={tmp_path / 'o'}"])
    assert proc.returncode == 2 and "within: column 'family_size' not in the table" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compare_report_shows_the_family_and_what_it_read(store, tmp_path):
    uri, _ = store
    out = tmp_path / "cmp"
    summary = _run(uri, "compare", [], out)
    order = ["qwen3_8b", "qwen3_14b", "rrm_32b", "ralign_8b", "rlvr_8b", "ralign_14b", "rlvr_14b"]
    assert summary["variants"] == order
    md = (out / "report.md").read_text()
    assert f"| metric | {' | '.join(order)} | interval |" in md
    assert f"| family_size | {' | '.join(FAMILY[v][1] for v in order)} | - |" in md
    assert f"| family_reward | {' | '.join(FAMILY[v][2] for v in order)} | - |" in md
    assert f"| family_source | {' | '.join(FAMILY[v][0] for v in order)} | - |" in md
    assert ("| experiments | paper_a | paper_b | paper_b | paper_a,paper_b | paper_a,paper_b | paper_b | paper_b | - |"
            in md)
    assert f"| runs averaged (seeds) | {' | '.join(str(_expected(v)[3]) for v in order)} | - |" in md
    assert "MLflow experiment(s) paper_a, paper_b" in md and "sweep(s) a, b." in md
    html = (out / "report.html").read_text()
    assert '<td class="m">family_size</td><td>8b</td><td>14b</td><td>32b</td>' in html
    assert "paper_a, paper_b" in html
    corr = json.loads((out / "correlations.json").read_text())
    assert corr["helpsteer3/f_score"]["families"]["family_size"] == [FAMILY[v][1] for v in order]


# ---------------------------------------------------------------------------- families without a store
def _info(run_id, variant, tags, metrics, start, experiment="e"):
    return RunInfo(run_id, "genrm_eval", {"stage": "genrm_eval", "variant": variant, "seed": "0", **tags}, {},
                   metrics, "FINISHED", run_id, start, start, experiment)


def test_a_variant_whose_runs_disagree_on_its_family_warns_and_shows_both():
    """The smoke's `ralign` in one experiment and a paper's `ralign` (14b) in another: one name,
    two GenRMs; the table says so instead of silently averaging them under one family."""
    runs = [_info("r1", "ralign", {"family_size": "14b", "seed": "0"}, {"b/l_acc": 0.5}, 1, "smoke"),
            _info("r2", "ralign", {"family_size": "8b", "seed": "1"}, {"b/l_acc": 0.7}, 2, "paper"),
            _info("r3", "outcome", {"family_size": "8b"}, {"b/l_acc": 0.6}, 3)]
    with pytest.warns(FamilyWarning, match="'ralign': its runs disagree on family_size .*14b: r1; 8b: r2"):
        table = runs_table(runs)
    rows = table.set_index("variant")
    assert rows.loc["ralign", "family_size"] == "8b|14b" and rows.loc["outcome", "family_size"] == "8b"
    assert any("disagree on family_size" in w for w in table.attrs["warnings"])


def test_runs_without_family_tags_leave_the_column_empty_and_a_link_lends_its_family():
    runs = [_info("r1", "old", {}, {"b/l_acc": 0.5}, 1), _info("r2", "new", {"family_size": "8b"}, {"b/l_acc": 0.7}, 2)]
    table = runs_table(runs)
    assert pd.isna(table.set_index("variant").loc["old", "family_size"]) and not table.attrs["warnings"]
    assert "family_size" not in runs_table(runs[:1]).columns  # no tags at all: no column, no error
    # a downstream run tagged before families existed takes its policy's (linked) family
    policy = RunInfo("p", "policy_train", {"stage": "policy_train", "variant": "v", "family_size": "14b"}, {}, {},
                     "FINISHED", "p", 1)
    down = RunInfo("d", "downstream_eval", {"stage": "downstream_eval", "policy_run_id": "p"}, {},
                   {"downstream/avg": 0.5}, "FINISHED", "d", 2)
    assert runs_table([policy, down]).set_index("variant").loc["v", "family_size"] == "14b"
