"""Plots of the analysis: PNG files of a fixed pixel size (figsize x dpi), headless."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence

import numpy as np

FIGSIZE = (6.4, 4.8)
DPI = 100  # 640 x 480 pixels


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
            path: Path, title: Optional[str] = None) -> Path:
    """Points labelled by variant, with the least-squares line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    x, y = np.asarray(x, float), np.asarray(y, float)
    ax.scatter(x, y, s=40, zorder=3)
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
                      path: Path) -> Path:
    """Per variant: an L-Acc bar split into the part right for the right reasons (F-Score)
    and the spurious part (L-Acc - F-Score, the S-Corr share), as the R-Align paper shows it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    idx = np.arange(len(variants))
    l_acc = np.nan_to_num(np.asarray(l_acc, float))
    f = np.nan_to_num(np.asarray(f_score, float))
    ax.bar(idx, f, 0.6, label="F-Score (right, for the right reasons)", color="tab:green")
    ax.bar(idx, np.clip(l_acc - f, 0, None), 0.6, bottom=f, label="spurious (L-Acc - F-Score)",
           color="tab:orange", hatch="//", alpha=0.8)
    for i, (a, b) in enumerate(zip(l_acc, f)):
        share = 1 - b / a if a > 0 else float("nan")
        ax.text(i, a + 0.01, f"L={a:.2f}\nS={share:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(idx, [str(v) for v in variants], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("fraction of samples")
    ax.set_title(f"{benchmark}: label accuracy and fidelity", fontsize=10)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str, title: str,
                 path: Path) -> Path:
    """Bars per group (x axis), one colour per series (e.g. domains x variants)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    names = list(series)
    width = 0.8 / max(len(names), 1)
    idx = np.arange(len(groups))
    for k, name in enumerate(names):
        ax.bar(idx + (k - (len(names) - 1) / 2) * width, np.nan_to_num(np.asarray(series[name], float)), width,
               label=str(name))
    ax.set_xticks(idx, [str(g) for g in groups], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def curves(histories: Mapping[str, List[tuple]], ylabel: str, title: str, path: Path) -> Path:
    """One line per run: [(step, value), ...]."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for name, points in histories.items():
        if points:
            steps, values = zip(*sorted(points))
            ax.plot(steps, values, label=str(name))
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def seed_points(metric: str, values: Mapping[str, Sequence[float]], summary: Mapping[str, Mapping[str, Any]],
                path: Path) -> Path:
    """Per variant: each seed's value as a point, the mean as a bar with its interval."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    names = list(values)
    for k, name in enumerate(names):
        s = summary[name]
        if s.get("mean") is None:
            continue
        err = None if not s.get("ci") else [[s["mean"] - s["ci"][0]], [s["ci"][1] - s["mean"]]]
        ax.bar(k, s["mean"], 0.6, alpha=0.35, yerr=err, capsize=6)
        pts = np.asarray(values[name], float)
        ax.scatter(np.full(len(pts), k) + np.linspace(-0.12, 0.12, len(pts)), pts, s=30, zorder=3, color="black")
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


__all__ = ["scatter", "short_label", "label_vs_fidelity", "grouped_bars", "curves", "seed_points", "png_size", "expected_size", "safe_name"]

