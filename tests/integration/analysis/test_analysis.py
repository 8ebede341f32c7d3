"""Analysis against a real sqlite MLflow populated the way the stages link their runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.collect import collect
from analysis.plots import expected_size, png_size
from plumbing import tracking
from plumbing.config.hydra_app import compose, execute, finalize

pytestmark = pytest.mark.integration

# variant -> (helpsteer3 L-Acc, F-Score, downstream per domain for two seeds)
WORLD = {
    "qwen3_8b_base": (0.70, 0.40, [{"stem": 0.50, "code": 0.30}, {"stem": 0.52, "code": 0.32}]),
    "rlvr": (0.80, 0.45, [{"stem": 0.55, "code": 0.35}, {"stem": 0.53, "code": 0.33}]),
    "ralign": (0.78, 0.60, [{"stem": 0.62, "code": 0.44}, {"stem": 0.64, "code": 0.46}]),
    "hybrid": (0.79, 0.55, [{"stem": 0.60, "code": 0.40}, {"stem": 0.58, "code": 0.40}]),
}


def _run(uri, stage, name, tags=None, metrics=None, history=None, status_ok=True, sweep="s1", seed=0):
    """A run as a stage writes it (through the suite's own tracking module)."""
    all_tags = tracking.run_tags(stage, "paper", seed, sweep, tags or {})
    try:
        with tracking.start_run(uri=uri, experiment="paper", run_name=name, tags=all_tags) as run:
            run.log_metrics(metrics or {})
            for step, values in enumerate(history or []):
                run.log_metrics(values, step=step)
            if not status_ok:
                raise RuntimeError("crashed")
            return run.run_id
    except RuntimeError:
        return None


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlflow")
    uri = tracking.tracking_uri(None, out)
    for variant, (l_acc, f_score, seeds) in WORLD.items():
        if variant == "qwen3_8b_base":  # no training: the pipeline tags the variant on each step
            _run(uri, "genrm_eval", "eval", {"variant": variant},
                 {"helpsteer3/l_acc": l_acc, "helpsteer3/f_score": f_score, "helpsteer3/l_acc_ci_lo": 0.6})
            policies = [_run(uri, "policy_train", f"policy{s}", {"variant": variant}, seed=s) for s in range(2)]
        else:  # linked through run ids only
            train = _run(uri, "genrm_train", "genrm", {"reward": variant},
                         history=[{"reward": 0.2 + 0.1 * k, "kl": 0.01 * k} for k in range(5)])
            _run(uri, "genrm_eval", "eval", {"genrm_run_id": train},
                 {"helpsteer3/l_acc": l_acc, "helpsteer3/f_score": f_score, "helpsteer3/s_corr": 1 - f_score / l_acc})
            policies = [_run(uri, "policy_train", f"policy{s}", {"genrm_run_id": train},
                             history=[{"train/reward": 0.1 * k, "train/kl": 0.02 * k} for k in range(4)], seed=s)
                        for s in range(2)]
        for seed, (policy, scores) in enumerate(zip(policies, seeds)):
            metrics = {f"downstream/domain/{d}": v for d, v in scores.items()}
            metrics["downstream/avg"] = float(np.mean(list(scores.values())))
            metrics["downstream/aime24"], metrics["downstream/aime24/ci_lo"] = scores["stem"], 0.0
            _run(uri, "downstream_eval", "downstream", {"policy_run_id": policy}, metrics, seed=seed)
    # noise that must not be collected: a failed run and another sweep
    _run(uri, "genrm_eval", "crashed", {"variant": "rlvr"}, {"helpsteer3/l_acc": 0.0}, status_ok=False)
    _run(uri, "genrm_eval", "other", {"variant": "other"}, {"helpsteer3/l_acc": 0.99}, sweep="s2")
    return uri


def _expected_avg(variant):
    return np.mean([np.mean(list(s.values())) for s in WORLD[variant][2]])


def test_collect_joins_eval_and_downstream_per_variant(store, tmp_path):
    table = collect(store, ["paper"], "tags.sweep_id = 's1'").set_index("variant")
    assert sorted(table.index) == sorted(WORLD)
    for variant, (l_acc, f_score, seeds) in WORLD.items():
        row = table.loc[variant]
        assert row["helpsteer3/l_acc"] == pytest.approx(l_acc)
        assert row["helpsteer3/f_score"] == pytest.approx(f_score)
        assert row["downstream/avg"] == pytest.approx(_expected_avg(variant))  # two seeds averaged
        assert row["downstream/domain/code"] == pytest.approx(np.mean([s["code"] for s in seeds]))
        assert row["downstream_eval_runs"] == 2 and row["genrm_eval_runs"] == 1
    assert "helpsteer3/l_acc_ci_lo" not in table.columns
    # export, and the table reads back the same
    table.to_parquet(tmp_path / "t.parquet")
    assert pd.read_parquet(tmp_path / "t.parquet").loc["ralign", "downstream/avg"] == pytest.approx(_expected_avg("ralign"))
    everything = collect(store, ["paper"])
    assert "other" in set(everything["variant"]) and "crashed" not in set(everything["variant"])


def test_correlate_from_mlflow_writes_json_plots_and_a_run(store, tmp_path):
    out = tmp_path / "corr"
    obj, cfg = finalize(*compose("correlate", [f"output_dir={out}", "source=mlflow", "mlflow.experiment=[paper]",
                                               f"mlflow.uri={store}", "mlflow.filter=\"tags.sweep_id = 's1'\"",
                                               "x=[helpsteer3/l_acc,helpsteer3/f_score]", "y=downstream/avg",
                                               "bootstrap=300", "permutations=100"]))
    summary = execute("correlate", obj, cfg)
    result = json.loads((out / "correlations.json").read_text())
    table = pd.read_csv(out / "table.csv")
    for col in ("helpsteer3/l_acc", "helpsteer3/f_score"):
        assert result[col]["n"] == 4
        assert result[col]["pearson"] == pytest.approx(np.corrcoef(table[col], table["downstream/avg"])[0, 1])
        png = out / "plots" / f"scatter_{col.replace('/', '_')}.png"
        assert png_size(png) == expected_size()
    assert result["helpsteer3/f_score"]["pearson"] > 0.9 > result["helpsteer3/l_acc"]["pearson"]
    assert summary["rows"] == 4
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking.tracking_uri(None, out))
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.metrics["corr/helpsteer3/f_score/pearson"] == pytest.approx(result["helpsteer3/f_score"]["pearson"])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"correlations.json", "table.csv", "plots"}


def test_compare_report_has_bars_domains_curves_and_references_them(store, tmp_path):
    out = tmp_path / "cmp"
    obj, cfg = finalize(*compose("compare", [f"output_dir={out}", "mlflow.experiment=[paper]", f"mlflow.uri={store}",
                                             "mlflow.filter=\"tags.sweep_id = 's1'\"", "bootstrap=200",
                                             "permutations=200"]))
    summary = execute("compare", obj, cfg)
    assert sorted(summary["variants"]) == sorted(WORLD)
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    pngs = sorted((out / "plots").glob("*.png"))
    names = {p.name for p in pngs}
    assert {"fidelity_helpsteer3.png", "downstream_domains.png", "downstream_tasks.png", "curve_genrm_train_reward.png",
            "curve_genrm_train_kl.png", "curve_policy_train_reward.png", "curve_policy_train_kl.png",
            "scatter_helpsteer3_l_acc.png"} <= names
    for p in pngs:
        assert png_size(p) == expected_size()
        assert f"](plots/{p.name})" in md
    assert html.count("data:image/png;base64,") == len(pngs)
    # metrics as rows, a column per variant (sorted), each cell value [interval]
    assert "| metric | hybrid | qwen3_8b_base | ralign | rlvr | interval |" in md
    assert "| runs averaged (seeds) | 2 | 2 | 2 | 2 | - |" in md
    aime = next(line for line in md.splitlines() if line.startswith("| downstream/aime24 |"))
    assert aime.endswith("n=2 | t over 2 seeds |")  # two seeds: their mean and its t interval
    assert not any("response_length" in n for n in names)  # no run logged a length
    # the correlations, computed on the table shown: 4 variants, so no interval and a warning
    corr = json.loads((out / "correlations.json").read_text())
    assert corr["helpsteer3/f_score"]["n"] == 4 and corr["helpsteer3/f_score"]["pearson_ci"] is None
    assert "## Correlation with downstream/avg" in md
    assert "- warning: helpsteer3/l_acc, helpsteer3/f_score: n = 4: too few points" in md
    assert "- warning: helpsteer3/s_corr: n = 3: too few points" in md  # one variant logged no S-Corr


@pytest.mark.parametrize(
    "table,args,message",
    [
        ("variant,a,y\nv1,1,1\nv2,2,2\nv3,3,3\n", ["x=[b]"], "column 'b' not in the table"),
        ("variant,a,y\nv1,1,1\nv2,oops,2\nv3,3,3\n", ["x=[a]"], "column 'a' is not numeric: row 2"),
        ("variant,a,y\nv1,1,1\nv2,2,2\n", ["x=[a]"], "a correlation needs at least 3"),
        ("variant,a,y\nv1,1,1\nv2,1,2\nv3,1,3\n", ["x=[a]"], "column 'a' is constant"),
        ("variant,a,y\nv1,1,1\nv2,inf,2\nv3,3,3\n", ["x=[a]"], "column 'a': row 2 holds inf (not a finite number)"),
        ("variant,a,y\nv1,1,1\nv2,2,-inf\nv3,3,3\n", ["x=[a]"], "column 'y': row 2 holds -inf"),
        ("variant,a,y\nv1,1,1\nv2,2,2\nv3,3,3\n", ["x=[a]", "seed=-1"], "seed: must be >= 0, got -1"),
        ("variant,a,y\nv1,1,1\nv2,2,2\nv3,3,3\n", ["x=[a]", "bootstrap=-5"], "bootstrap"),
    ],
)
def test_bad_tables_exit_2_with_a_clear_message(tmp_path, cli, python, table, args, message):
    path = tmp_path / "t.csv"
    path.write_text(table)
    proc = cli([python, "-m", "analysis.correlate", f"input={path}", "y=y", f"output_dir={tmp_path / 'o'}", *args])
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o" / "correlations.json").exists()  # refused before anything is written


def test_a_huge_label_is_drawn_short(tmp_path, monkeypatch):
    """A table cell may hold anything (a 50 MB label): the scatter plot draws at most 40
    characters of each point's label and bounded axis titles."""
    from analysis import plots

    drawn = []
    save = plots._save

    def capture(fig, path):
        drawn.extend(t.get_text() for ax in fig.axes for t in [*ax.texts, ax.title, ax.xaxis.label, ax.yaxis.label])
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", capture)
    path = tmp_path / "t.csv"
    path.write_text("variant,a,y\n" + "x" * 1_000_000 + ",1,1\nv2,2,3\nv3,3,2\nv4,4,5\n")
    out = tmp_path / "o"
    execute("correlate", *finalize(*compose("correlate", [f"input={path}", "x=[a]", "y=y", f"output_dir={out}",
                                                          "bootstrap=50", "permutations=50"])))
    assert png_size(out / "plots" / "scatter_a.png") == expected_size()
    assert drawn and max(len(t) for t in drawn) <= 120 and "v2" in drawn


def test_compare_plots_downstream_score_over_policy_steps_one_line_per_variant(store, tmp_path):
    """The R-Align paper's Figure 2: downstream_eval runs over a policy's kept checkpoints
    (scores logged at each training step, the final last) give a line per variant; a run with
    the final model alone draws none. Without any such run the report says so."""
    out = tmp_path / "curves"
    uri = tracking.tracking_uri(None, tmp_path / "store")
    curves = {"rlvr": [0.30, 0.35, 0.40], "ralign": [0.30, 0.45, 0.60]}
    for variant, avgs in curves.items():
        policy = _run(uri, "policy_train", "policy", {"variant": variant})
        downstream = _run(uri, "downstream_eval", "downstream", {"policy_run_id": policy})
        from mlflow.tracking import MlflowClient

        for step, avg in zip((10, 20, 30), avgs):
            MlflowClient(uri).log_metric(downstream, "downstream/avg", avg, step=step)
            MlflowClient(uri).log_metric(downstream, "downstream/aime24", avg / 2, step=step)
            MlflowClient(uri).log_metric(downstream, "downstream/tasks_scored", 1, step=step)  # a count: no curve
    policy = _run(uri, "policy_train", "policy", {"variant": "base"})
    _run(uri, "downstream_eval", "downstream", {"policy_run_id": policy}, {"downstream/avg": 0.2})
    obj, cfg = finalize(*compose("compare", [f"output_dir={out}", "mlflow.experiment=[paper]", f"mlflow.uri={uri}",
                                             "bootstrap=50", "permutations=50"]))
    execute("compare", obj, cfg)
    data = json.loads((out / "checkpoint_curves.json").read_text())
    assert sorted(data) == ["downstream/aime24", "downstream/avg"]  # scores, not counts
    lines = {label.split(" ")[0]: points for label, points in data["downstream/avg"].items()}
    assert lines == {v: [[s, a] for s, a in zip((10, 20, 30), avgs)] for v, avgs in curves.items()}
    md = (out / "report.md").read_text()
    png = out / "plots" / "checkpoint_curves_1.png"
    assert "](plots/checkpoint_curves_1.png)" in md and png_size(png) == expected_size()
    assert "## Downstream score over policy training" in (out / "report.html").read_text().replace("<h2>", "## ")
    assert "no downstream score over policy training" not in md

    flat = tmp_path / "flat"  # the shared store: every downstream run scored the final model only
    obj, cfg = finalize(*compose("compare", [f"output_dir={flat}", "mlflow.experiment=[paper]", f"mlflow.uri={store}",
                                             "mlflow.filter=\"tags.sweep_id = 's1'\"", "bootstrap=50",
                                             "permutations=50"]))
    execute("compare", obj, cfg)
    assert json.loads((flat / "checkpoint_curves.json").read_text()) == {}
    assert "no downstream score over policy training: none of the 8 downstream_eval run(s)" in \
        (flat / "report.md").read_text()
    assert not list((flat / "plots").glob("checkpoint_curves_*"))
