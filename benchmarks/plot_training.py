"""Loss curve of a (possibly multi-stage) training history: checkpoints/maze/metrics.jsonl by default.

    python benchmarks/plot_training.py [--metrics FILE] [--out benchmarks/results/flagship_loss.png]

Rows with a `stage` field (runs continued with `worldsim train --init`) are plotted over their
`total_step`, one colour per stage, with the training window of each stage in the legend.
"""

import argparse
import json

import numpy as np
from matplotlib.figure import Figure

from worldsim.evaluation.provenance import provenance, save_figure


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--metrics", default="checkpoints/maze/metrics.jsonl")
    p.add_argument("--out", default="benchmarks/results/flagship_loss.png")
    p.add_argument("--smooth", type=int, default=5, help="moving average over this many logged rows")
    args = p.parse_args()
    rows = [json.loads(line) for line in open(args.metrics)]
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for stage in sorted({r.get("stage", 1) for r in rows}):
        part = [r for r in rows if r.get("stage", 1) == stage]
        x = np.array([r.get("total_step", r["step"]) for r in part])
        y = np.array([r["diffusion"] for r in part])
        k = min(args.smooth, len(y))
        y = np.convolve(y, np.ones(k) / k, mode="valid")
        windows = "/".join(str(w) for w in dict.fromkeys(r["window"] for r in part))
        ax.plot(x[k - 1:], y, label=f"stage {stage}: windows {windows} frames")
    ax.set(xlabel="optimizer step (all stages)", ylabel="diffusion loss (v-MSE)", yscale="log",
           title=f"training loss, moving average of {args.smooth} logged steps")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    print(save_figure(fig, args.out, provenance(args, "cpu")))


if __name__ == "__main__":
    main()
