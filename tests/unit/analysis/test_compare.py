"""The compare report from a table (no MLflow): metrics as rows, a column per variant with
value, interval and n in each cell; one colour per variant in every plot."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from analysis import plots
from analysis.compare import build_report, metric_rows

# as analysis.collect gives it: a row per variant, interval columns beside the metrics
TABLE = pd.DataFrame.from_records([
    {"variant": "ralign", "bench/l_acc": 0.9, "bench/l_acc:lo": 0.84, "bench/l_acc:hi": 0.94, "bench/l_acc:n": 122,
     "bench/l_acc:interval": "Wilson", "bench/f_score": 0.8, "bench/ap": 0.7, "bench/ap:lo": 0.6, "bench/ap:hi": 0.8,
     "bench/ap:n": 100, "bench/ap:interval": "bootstrap (stage)", "downstream/math": 0.5,
     "downstream/domain/stem": 0.5, "downstream/avg": 0.5, "n_runs": 1},
    {"variant": "outcome", "bench/l_acc": 0.0, "bench/l_acc:lo": 0.0, "bench/l_acc:hi": 0.0305, "bench/l_acc:n": 122,
     "bench/l_acc:interval": "Wilson", "bench/f_score": 0.0, "bench/ap": 0.4, "downstream/math": 0.25,
     "downstream/domain/stem": 0.25, "downstream/avg": 0.25, "n_runs": 2},
])


def test_metrics_are_rows_and_variants_are_columns():
    variants, rows = metric_rows(TABLE)
    assert variants == ["ralign", "outcome"]
    assert [m for m, _, _ in rows] == ["bench/l_acc", "bench/f_score", "bench/ap", "downstream/math",
                                       "downstream/domain/stem", "downstream/avg"]
    l_acc = dict((m, (cells, how)) for m, cells, how in rows)["bench/l_acc"]
    assert [c.text() for c in l_acc[0]] == ["0.900 [0.840, 0.940] n=122", "0.000 [0.000, 0.030] n=122"]
    assert l_acc[1] == "Wilson"


def test_report_table_is_transposed_with_intervals(tmp_path):
    build_report(TABLE, {}, tmp_path, "t")
    md = (tmp_path / "report.md").read_text()
    assert "| metric | ralign | outcome | interval |" in md
    assert "| bench/l_acc | 0.900 [0.840, 0.940] n=122 | 0.000 [0.000, 0.030] n=122 | Wilson |" in md
    assert "| runs averaged (seeds) | 1 | 2 | - |" in md
    html = (tmp_path / "report.html").read_text()
    assert '<span class="ci">[0.000, 0.030]</span>' in html and "n=122" in html
    assert html.count("data:image/png;base64,") == len(list((tmp_path / "plots").glob("*.png")))


def test_variant_colours_depend_only_on_the_set_of_variants():
    a = plots.variant_colours(["rlvr", "ralign", "base"])
    assert a == plots.variant_colours(["base", "ralign", "rlvr", "ralign"])
    assert len(set(a.values())) == 3
    assert plots.variant_colours(["x"] + [f"v{i}" for i in range(40)])["x"] == plots.variant_colours(
        [f"v{i}" for i in range(40)] + ["x"])["x"]


def test_a_variant_has_one_colour_in_every_plot(tmp_path, monkeypatch):
    figures = {}
    save = plots._save

    def capture(fig, path):
        seen = {}
        for ax in fig.axes:
            for patch in ax.patches:  # fidelity bars carry their variant as gid
                if (patch.get_gid() or "").startswith("variant:"):
                    seen.setdefault(patch.get_gid()[8:], set()).add(to_rgb(patch.get_facecolor()))
            for container in ax.containers:  # grouped bars: one container per variant
                if hasattr(container, "patches") and container.get_label() in ("ralign", "outcome"):
                    seen.setdefault(container.get_label(), set()).update(to_rgb(p.get_facecolor())
                                                                         for p in container.patches)
            for line in ax.get_lines():  # curves: labelled "<variant> (...)"
                variant = line.get_label().split(" (")[0]
                if variant in ("ralign", "outcome"):
                    seen.setdefault(variant, set()).add(to_rgb(line.get_color()))
        figures[path.name] = seen
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", capture)
    curves = {"policy_train kl": {"ralign (seed 0, abcdef)": [(0, 0.0), (1, 0.1)],
                                  "outcome (seed 0, 123456)": [(0, 0.0), (1, 0.2)]}}
    build_report(TABLE, curves, tmp_path, "t", curve_variants={"ralign (seed 0, abcdef)": "ralign",
                                                               "outcome (seed 0, 123456)": "outcome"})
    colours = plots.variant_colours(["ralign", "outcome"])
    with_variants = {name: seen for name, seen in figures.items() if seen}
    assert {"fidelity_bench.png", "checklist_bench.png", "downstream_tasks.png", "downstream_domains.png",
            "curve_policy_train_kl.png"} <= set(with_variants)
    for name, seen in with_variants.items():
        for variant, rgb in seen.items():
            assert rgb == {to_rgb(colours[variant])}, (name, variant)


def test_intervals_become_error_bars(tmp_path, monkeypatch):
    bars = {}
    save = plots._save

    def capture(fig, path):
        bars[path.name] = sum(len(c.lines[2]) for ax in fig.axes for c in ax.containers
                              if type(c).__name__ == "ErrorbarContainer")
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", capture)
    build_report(TABLE, {}, tmp_path, "t")
    assert bars["fidelity_bench.png"] >= 1 and bars["checklist_bench.png"] >= 1


@pytest.mark.parametrize("values,intervals,expected", [
    ([0.5, 0.2], [(0.4, 0.7), None], [[0.1, 0.0], [0.2, 0.0]]),
    ([0.5], [(float("nan"), float("nan"))], None),
])
def test_error_array_from_bounds(values, intervals, expected):
    err = plots._yerr(values, intervals)
    assert (err is None and expected is None) or err.ravel().tolist() == pytest.approx(sum(expected, []))


def test_variants_are_grouped_by_family_under_a_row_per_family_key(tmp_path):
    """A table from several experiments: each variant's family heads its column, the columns
    grouped by the coarsest family key (fewest values), sizes in natural order (8b before 14b)."""
    table = pd.DataFrame.from_records([
        {"variant": v, "family_size": size, "family_reward": reward, "bench/l_acc": 0.5, "n_runs": 1,
         "experiments": exp}
        for v, size, reward, exp in (("ralign_14b", "14b", "ralign", "b"), ("rlvr_8b", "8b", "rlvr", "a"),
                                     ("ralign_8b", "8b", "ralign", "a,b"), ("rlvr_14b", "14b", "rlvr", "b"),
                                     ("rrm", None, "rrm", "b"))])
    build_report(table, {}, tmp_path, "t", read="Runs read: x.")
    md = (tmp_path / "report.md").read_text()
    assert "| metric | ralign_8b | rlvr_8b | ralign_14b | rlvr_14b | rrm | interval |" in md
    assert "| family_size | 8b | 8b | 14b | 14b | - | - |" in md
    assert "| family_reward | ralign | rlvr | ralign | rlvr | rrm | - |" in md
    assert "| experiments | a,b | a | b | b | b | - |" in md
    assert md.index("| family_size |") < md.index("| family_reward |") < md.index("| runs averaged")
    assert "Runs read: x." in md and "<p>Runs read: x.</p>" in (tmp_path / "report.html").read_text()
