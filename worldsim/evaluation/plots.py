"""PNG plots for eval and bench. Built on matplotlib's object API (Figure, no pyplot), so nothing
here touches the user's interactive backend; every figure carries the run's provenance."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from worldsim.evaluation.provenance import save_figure

METRIC_LABELS = {"psnr": "PSNR (dB, higher is better)", "ssim": "SSIM (higher is better)",
                 "lpips": "LPIPS (lower is better)"}


def metric_curves(summaries: dict[str, dict], path, prov: dict, title: str):
    """Each metric vs frame distance, one line (mean over episodes, +-1 std band) per label.
    `summaries`: label -> metrics.summarize(...) output. LPIPS is drawn when every label has it."""
    labels = {m: text for m, text in METRIC_LABELS.items() if all(m in s["per_distance"] for s in summaries.values())}
    fig = Figure(figsize=(5 * len(labels), 4), layout="constrained")
    for ax, (metric, label) in zip(fig.subplots(1, len(labels)), labels.items()):
        for name, s in summaries.items():
            d = s["per_distance"]
            mean, std = np.asarray(d[metric]), np.asarray(d[f"{metric}_std"])
            ax.plot(d["distance"], mean, label=f"{name} (mean {s['mean'][metric]:.3g})")
            ax.fill_between(d["distance"], mean - std, mean + std, alpha=0.15)
        ax.set(xlabel="frames after the context", ylabel=label, title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path, prov)


def frame_strip(truth: np.ndarray, generated: np.ndarray, path, prov: dict, title: str,
                columns: int = 8, episodes: int = 3):
    """Ground truth above generated frames at evenly spaced distances, for the first episodes.
    truth, generated: uint8 [E, G, H, W, 3]."""
    E, G = truth.shape[:2]
    episodes, columns = min(episodes, E), min(columns, G)
    picks = np.unique(np.linspace(0, G - 1, columns).round().astype(int))
    fig = Figure(figsize=(1.3 * len(picks) + 0.8, 2.7 * episodes + 0.6), layout="constrained")
    axes = fig.subplots(2 * episodes, len(picks), squeeze=False)
    for e in range(episodes):
        for row, (frames, name) in enumerate(((truth, "true"), (generated, "generated"))):
            for col, g in enumerate(picks):
                ax = axes[2 * e + row, col]
                ax.imshow(frames[e, g], interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if col == 0:
                    ax.set_ylabel(f"ep {e} {name}", fontsize=7)
                if e == 0 and row == 0:
                    ax.set_title(f"+{g + 1}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path, prov)


def line_plot(x, series: dict[str, list], path, prov: dict, xlabel: str, ylabel: str, title: str,
              logy: bool = False):
    """One line per label over shared x values (frame counts, batch sizes, steps: a log axis)."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for name, ys in series.items():
        ax.plot(x[:len(ys)], ys, marker="o", markersize=3, label=name)  # a run that stopped early is shorter
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path, prov)
