"""compare's training-dynamics figure (RationaleRM's): per variant, the outcome reward and the
rationale signal of its GenRM training against the step, from a real sqlite MLflow store."""

from __future__ import annotations

import pytest

from analysis import plots
from analysis.plots import expected_size, png_size
from plumbing import tracking
from plumbing.config.hydra_app import compose, execute, finalize

pytestmark = pytest.mark.integration

# variant -> per step (outcome reward, MetaRM-correct among label-correct, checklist AP or None)
DYNAMICS = {
    "outcome": [(0.5, 0.6, None), (0.7, 0.5, None), (0.9, 0.3, None)],  # rationale degenerates
    "ralign": [(0.5, 0.6, None), (0.6, 0.7, None), (0.7, 0.8, None)],
    "hybrid": [(0.5, 0.6, 0.4), (0.6, 0.6, 0.5), (0.8, 0.7, 0.6)],
}


def _run(uri, stage, tags, metrics=None, history=()):
    with tracking.start_run(uri=uri, experiment="dyn", run_name=stage,
                            tags=tracking.run_tags(stage, "dyn", 0, "s1", tags)) as run:
        run.log_metrics(metrics or {})
        for step, values in history:
            run.log_metrics(values, step=step)
        return run.run_id


def test_compare_plots_outcome_reward_and_rationale_signal_per_variant(tmp_path, monkeypatch):
    uri = tracking.tracking_uri(None, tmp_path / "store")
    for variant, steps in DYNAMICS.items():
        history = [(k, {"genrm_dynamics/outcome_reward": o, "genrm_dynamics/rationale_correct": r,
                        **({"genrm_dynamics/checklist_ap": ap} if ap is not None else {})})
                   for k, (o, r, ap) in enumerate(steps, start=1)]
        train = _run(uri, "genrm_train", {"variant": variant, "reward": variant}, history=history)
        _run(uri, "genrm_eval", {"genrm_run_id": train}, {"toy/l_acc": 0.7})
    old = _run(uri, "genrm_train", {"variant": "legacy"}, history=[(1, {"reward": 0.3})])  # before dynamics
    _run(uri, "genrm_eval", {"genrm_run_id": old}, {"toy/l_acc": 0.6})
    bare = _run(uri, "genrm_train", {"variant": "bare"}, history=[(1, {"genrm_dynamics/outcome_reward": 0.4})])
    _run(uri, "genrm_eval", {"genrm_run_id": bare}, {"toy/l_acc": 0.5})

    drawn = {}
    save = plots._save

    def capture(fig, path):
        if path.name == "genrm_dynamics.png":
            drawn["panels"] = [{line.get_gid(): (list(line.get_xdata()), list(line.get_ydata()), line.get_color(),
                                                 line.get_linestyle()) for line in ax.get_lines()} for ax in fig.axes]
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", capture)
    out = tmp_path / "cmp"
    execute("compare", *finalize(*compose("compare", [f"output_dir={out}", "mlflow.experiment=[dyn]", f"mlflow.uri={uri}",
                                                      "bootstrap=50", "permutations=50"])))
    top, bottom = drawn["panels"]
    colours = plots.variant_colours(["outcome", "ralign", "hybrid", "legacy", "bare"])

    def line(panel, variant, kind):
        return next(v for gid, v in panel.items() if gid.startswith(variant + " ") and gid.endswith("|" + kind))

    for variant, steps in DYNAMICS.items():
        xs, ys, colour, style = line(top, variant, "outcome")
        assert xs == [1, 2, 3] and ys == pytest.approx([o for o, _, _ in steps]) and colour == colours[variant]
        xs, ys, colour, style = line(bottom, variant, "rationale correct")
        assert ys == pytest.approx([r for _, r, _ in steps]) and colour == colours[variant] and style == "-"
    xs, ys, colour, style = line(bottom, "hybrid", "checklist AP")
    assert ys == pytest.approx([0.4, 0.5, 0.6]) and style == "--" and colour == colours["hybrid"]
    assert not any(gid.endswith("|checklist AP") for gid in bottom if not gid.startswith("hybrid "))
    assert line(top, "bare", "outcome")[1] == [0.4] and not any(g.startswith("bare ") for g in bottom)
    assert not any(g.startswith("legacy ") for panel in (top, bottom) for g in panel)
    assert png_size(out / "plots" / "genrm_dynamics.png") == expected_size()
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "![GenRM training dynamics: outcome reward and rationale signal](plots/genrm_dynamics.png)" in md
    assert "<h2>GenRM training dynamics: outcome reward and rationale signal</h2>" in html
    for text in (md, html):
        assert "no training dynamics: genrm_train run legacy" in text
        assert "no rationale signal in the training dynamics of bare" in text
