"""Plots of the analysis: PNG files of a fixed pixel size (figsize x dpi), headless.

A variant has one colour in every plot of a report (``variant_colours``); intervals are
drawn as error bars where the table has them (``errors``: per series, (lo, hi) per bar).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

FIGSIZE = (6.4, 4.8)
DPI = 100  # 640 x 480 pixels
# colour-blind-safe first (Okabe-Ito), then matplotlib's tab20 for long variant lists
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
           "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94")
Interval = Optional[Sequence[Optional[float]]]  # (lo, hi); None or NaN: none


def variant_colours(variants: Iterable[Any]) -> Dict[str, str]:
    """One colour per variant, from the sorted set of names: the same variant list gives the
    same colours in every plot, whatever order a plot lists them in."""
    names = sorted({str(v) for v in variants})
    return {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(names)}


def _yerr(values: Sequence[float], intervals: Optional[Sequence[Interval]]) -> Optional[np.ndarray]:
    """matplotlib's (2, n) error array from (lo, hi) bounds; 0 where a bar has none."""
    if intervals is None:
        return None
    v = np.nan_to_num(np.asarray(values, float))
    err = np.zeros((2, len(v)))
    for i, ci in enumerate(intervals):
        if ci is not None and len(ci) == 2 and None not in ci and not any(np.isnan(np.asarray(ci, float))):
            err[:, i] = [max(v[i] - ci[0], 0.0), max(ci[1] - v[i], 0.0)]
    return err if err.any() else None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)  # no bbox cropping: every plot has the same size
    _pyplot().close(fig)
    return path


def scatter(x: Sequence[float], y: Sequence[float], labels: Sequence[str], xlabel: str, ylabel: str,
            path: Path, title: Optional[str] = None, colours: Optional[Mapping[str, str]] = None) -> Path:
    """Points labelled by variant (in its colour), with the least-squares line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    x, y = np.asarray(x, float), np.asarray(y, float)
    colours = colours if colours is not None else variant_colours(labels)
    ax.scatter(x, y, s=40, zorder=3, c=[colours.get(str(label), PALETTE[0]) for label in labels])
    for xi, yi, label in zip(x, y, labels):
        ax.annotate(short_label(label), (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if len(x) >= 2 and np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        xs = np.linspace(x.min(), x.max(), 50)
        ax.plot(xs, slope * xs + intercept, linestyle="--", color="tab:red", label=f"fit: y = {slope:.3g}x + {intercept:.3g}")
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel(short_label(xlabel, 80))
    ax.set_ylabel(short_label(ylabel, 80))
    ax.set_title(short_label(title or f"{ylabel} vs {xlabel}", 120), fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def short_label(value: Any, limit: int = 40) -> str:
    """Text a plot can draw: a table cell may hold anything (a 50 MB label would make the
    renderer lay out 50 MB of glyphs)."""
    text = " ".join(str(value)[: limit * 4].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def label_vs_fidelity(benchmark: str, variants: Sequence[str], l_acc: Sequence[float], f_score: Sequence[float],
                      path: Path, colours: Optional[Mapping[str, str]] = None,
                      l_err: Optional[Sequence[Interval]] = None, f_err: Optional[Sequence[Interval]] = None) -> Path:
    """Per variant (in its colour): an L-Acc bar split into the part right for the right
    reasons (F-Score, solid) and the spurious part (L-Acc - F-Score, the S-Corr share,
    hatched), as the R-Align paper shows it; each with its interval where given."""
    from matplotlib.patches import Patch

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    colours = colours if colours is not None else variant_colours(variants)
    idx = np.arange(len(variants))
    l_acc = np.nan_to_num(np.asarray(l_acc, float))
    f = np.nan_to_num(np.asarray(f_score, float))
    colour = [colours.get(str(v), PALETTE[0]) for v in variants]
    solid = ax.bar(idx, f, 0.6, color=colour, edgecolor="black", linewidth=0.5)
    spurious = ax.bar(idx, np.clip(l_acc - f, 0, None), 0.6, bottom=f, color=colour, alpha=0.35, hatch="//",
                      edgecolor="black", linewidth=0.5)
    for v, a, b in zip(variants, solid.patches, spurious.patches):
        a.set_gid(f"variant:{v}")
        b.set_gid(f"variant:{v}")
    for values, err, dx in ((l_acc, _yerr(l_acc, l_err), 0.12), (f, _yerr(f, f_err), -0.12)):
        if err is not None:
            ax.errorbar(idx + dx, values, yerr=err, fmt="none", ecolor="black", capsize=3, linewidth=1)
    top = l_acc if l_err is None else np.maximum(l_acc, [ci[1] if ci and ci[1] is not None else 0 for ci in l_err])
    for i, (a, b) in enumerate(zip(l_acc, f)):
        share = 1 - b / a if a > 0 else float("nan")
        ax.text(i, np.nan_to_num(top[i]) + 0.01, f"L={a:.2f}\nS={share:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(idx, [str(v) for v in variants], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("fraction of samples")
    ax.set_title(f"{benchmark}: label accuracy and fidelity", fontsize=10)
    ax.legend(handles=[Patch(facecolor="grey", edgecolor="black", label="F-Score (right, for the right reasons)"),
                       Patch(facecolor="grey", alpha=0.35, hatch="//", edgecolor="black",
                             label="spurious (L-Acc - F-Score)")], loc="upper right", fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str, title: str,
                 path: Path, colours: Optional[Mapping[str, str]] = None,
                 errors: Optional[Mapping[str, Sequence[Interval]]] = None) -> Path:
    """Bars per group (x axis), one colour per series (e.g. domains x variants: the
    variant's colour), with each bar's interval where ``errors`` gives one."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    names = list(series)
    colours = colours if colours is not None else variant_colours(names)
    width = 0.8 / max(len(names), 1)
    idx = np.arange(len(groups))
    for k, name in enumerate(names):
        values = np.asarray(series[name], float)
        ax.bar(idx + (k - (len(names) - 1) / 2) * width, np.nan_to_num(values), width, label=str(name),
               color=colours.get(str(name), PALETTE[k % len(PALETTE)]),
               yerr=_yerr(values, (errors or {}).get(name)), capsize=3, error_kw={"linewidth": 1})
    ax.set_xticks(idx, [str(g) for g in groups], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def curves(histories: Mapping[str, List[tuple]], ylabel: str, title: str, path: Path,
           colours: Optional[Mapping[str, str]] = None) -> Path:
    """One line per run: [(step, value), ...], in the colour ``colours`` gives its label (its
    variant's); runs of one colour (seeds) differ in line style."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    colours = colours if colours is not None else variant_colours(histories)
    styles = ("-", "--", ":", "-.")
    seen: Dict[str, int] = {}
    for name, points in histories.items():
        if points:
            steps, values = zip(*sorted(points))
            colour = colours.get(str(name), PALETTE[0])
            k = seen[colour] = seen.get(colour, -1) + 1
            ax.plot(steps, values, label=str(name), color=colour, linestyle=styles[k % len(styles)])
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def curve_panels(panels: Mapping[str, Mapping[str, List[tuple]]], xlabel: str, title: str, path: Path,
                 colours: Mapping[str, str]) -> Path:
    """A small plot per metric (at most 6 per figure), one line per run in its variant's colour
    (``colours``: label -> colour) with a marker at each evaluated step: a score over training."""
    plt = _pyplot()
    n = len(panels)
    cols = 1 if n == 1 else 2 if n <= 4 else 3
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=FIGSIZE, squeeze=False)
    styles = ("-", "--", ":", "-.")
    for ax, (metric, hist) in zip(axes.flat, panels.items()):
        seen: Dict[str, int] = {}
        for name, points in hist.items():
            steps, values = zip(*sorted(points))
            colour = colours.get(str(name), PALETTE[0])
            k = seen[colour] = seen.get(colour, -1) + 1
            ax.plot(steps, values, marker="o", markersize=3, label=short_label(name), color=colour,
                    linestyle=styles[k % len(styles)])
        ax.set_title(short_label(metric), fontsize=8)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel(xlabel, fontsize=7)
    axes.flat[0].legend(fontsize=5)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def dynamics(outcome: Mapping[str, List[tuple]], rationale: Mapping[str, List[tuple]],
             checklist: Mapping[str, List[tuple]], path: Path, colours: Optional[Mapping[str, str]] = None) -> Path:
    """GenRM training dynamics (RationaleRM's figure), one line per run in its variant's
    colour: the outcome reward above, the rationale signal below against the same steps
    (MetaRM-correct rate among label-correct rollouts solid, checklist AP dashed)."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=FIGSIZE, sharex=True)
    colours = colours if colours is not None else variant_colours([*outcome, *rationale, *checklist])
    for ax, series, style, suffix in ((top, outcome, "-", ""), (bottom, rationale, "-", " rationale correct"),
                                      (bottom, checklist, "--", " checklist AP")):
        for name, points in series.items():
            if points:
                steps, values = zip(*sorted(points))
                line, = ax.plot(steps, values, color=colours.get(str(name), PALETTE[0]), linestyle=style,
                                marker="." if len(points) < 30 else None, label=short_label(f"{name}{suffix}", 60))
                line.set_gid(f"{name}|{suffix.strip() or 'outcome'}")
    top.set_ylabel("outcome reward", fontsize=8)
    bottom.set_ylabel("rationale signal", fontsize=8)
    bottom.set_xlabel("GenRM training step")
    top.set_title("training dynamics: outcome reward vs rationale signal", fontsize=10)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, path)


def seed_points(metric: str, values: Mapping[str, Sequence[float]], summary: Mapping[str, Mapping[str, Any]],
                path: Path, colours: Optional[Mapping[str, str]] = None,
                point_errors: Optional[Mapping[str, Sequence[Interval]]] = None) -> Path:
    """Per variant (in its colour): each seed's value as a point (with its own interval where
    given), the mean as a bar with its interval over the seeds."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    names = list(values)
    colours = colours if colours is not None else variant_colours(names)
    for k, name in enumerate(names):
        s = summary[name]
        if s.get("mean") is None:
            continue
        err = None if not s.get("ci") else [[s["mean"] - s["ci"][0]], [s["ci"][1] - s["mean"]]]
        ax.bar(k, s["mean"], 0.6, alpha=0.35, yerr=err, capsize=6, color=colours.get(str(name), PALETTE[0]))
        pts = np.asarray(values[name], float)
        xs = np.full(len(pts), k) + np.linspace(-0.12, 0.12, len(pts))
        ax.scatter(xs, pts, s=30, zorder=3, color="black")
        perr = _yerr(pts, (point_errors or {}).get(name))
        if perr is not None:
            ax.errorbar(xs, pts, yerr=perr, fmt="none", ecolor="black", capsize=2, linewidth=0.8, zorder=3)
    ax.set_xticks(np.arange(len(names)), [str(n) for n in names])
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: each seed, mean and interval", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def png_size(path: Path) -> tuple:
    """(width, height) from a PNG file's header, checking its signature."""
    data = Path(path).read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def expected_size() -> tuple:
    return int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI)


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


__all__ = ["scatter", "short_label", "label_vs_fidelity", "grouped_bars", "curves", "dynamics", "seed_points", "png_size",
           "expected_size", "safe_name", "variant_colours", "PALETTE"]

