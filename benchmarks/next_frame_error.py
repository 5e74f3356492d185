"""Where the teacher-forced next frame's error comes from: sampling, uncertainty, or the patches.

    python benchmarks/next_frame_error.py [--checkpoint maze] [--episodes 8] [--context 30]
        [--generate 30] [--samples 4] [--threads 2] [--out runs/next_frame_error.json] [sampler options]

Held-out maze episodes of the next-frame task. Each frame is drawn `--samples` times after the
true frames before it (`worldsim eval --task next-frame`, each draw with other noise seeds), and
scored against the truth as
  one sample        each draw's squared error, averaged over the draws (what `worldsim eval`
                    scores, though it averages per-frame PSNRs where this pools the errors)
  mean of samples   the average of the draws: the model's conditional mean, as far as K draws
                    estimate it. The gap to one sample is the error a sampler pays for drawing
                    one plausible frame instead of the average; what remains is the model's error
                    in what it expects, and the truth's own unpredictability
  last true frame   the frame before, repeated: the trivial predictor (exact where nothing moves)
and split by the action that led to the frame and by the pixel's place in its patch (the
tokens' p x p pixels: border rows and columns against the interior), to show whether the model's
error sits at the patch seams. PSNR is over all frames' pixels of a group (10 log10(255^2 / MSE)).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from worldsim.checkpoint import load_model
from worldsim.evaluation.metrics import PSNR_CAP
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.evaluation.tasks import maze_episodes, maze_size, rollout
from worldsim.maze.core import ACTION_NAMES
from worldsim.simulator import Simulator, add_sampling_arguments, sampling_options

SEED_STRIDE = 1_000_003  # each draw's seeds: the episode's + k * stride


def db(mse: float) -> float:
    return float(min(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)), PSNR_CAP))


def patch_places(size: int, patch: int) -> dict[str, np.ndarray]:
    """Boolean [size, size] masks of pixels on a patch's border (first or last row or column of
    its patch) and in its interior."""
    i = np.arange(size) % patch
    edge = (i == 0) | (i == patch - 1)
    border = edge[:, None] | edge[None, :]
    return {"patch border": border, "patch interior": ~border}


def error_table(draws: np.ndarray, truth: np.ndarray, previous: np.ndarray, actions: np.ndarray,
                patch: int) -> list[dict]:
    """PSNR of each estimate per group of frames: draws uint8 [K, E, G, H, W, 3] of the frames truth
    [E, G, H, W, 3], whose true predecessors are `previous` (same shape) and which actions [E, G] led to."""
    truth = truth.astype(np.float64)
    draws = draws.astype(np.float64)
    # squared error per pixel (channels averaged) of each estimate: [E, G, H, W]
    sq = {"one sample": ((draws - truth) ** 2).mean(-1).mean(0),
          "mean of samples": ((draws.mean(0) - truth) ** 2).mean(-1),
          "last true frame": ((previous.astype(np.float64) - truth) ** 2).mean(-1)}
    places = patch_places(truth.shape[2], patch)
    groups = {"all frames": np.ones(actions.shape, bool)}
    groups.update({name: actions == a for a, name in enumerate(ACTION_NAMES) if (actions == a).any()})
    rows = []
    for group, sel in groups.items():
        row = {"group": group, "frames": int(sel.sum())}
        for est, e in sq.items():
            row[est] = db(e[sel].mean())
        for place, mask in places.items():
            row[f"one sample, {place}"] = db(sq["one sample"][sel][:, mask].mean())
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--context", type=int, default=30)
    p.add_argument("--generate", type=int, default=30)
    p.add_argument("--samples", type=int, default=4, help="draws of each frame")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/next_frame_error.json")
    add_sampling_arguments(p)
    args = p.parse_args()
    if args.samples < 2:
        p.error("--samples must be at least 2 (the mean of one draw is that draw)")
    torch.set_num_threads(args.threads)

    model, config = load_model(args.checkpoint)
    sim = Simulator.for_checkpoint(model, config, device="cpu", **sampling_options(args))
    episodes = maze_episodes("next-frame", args.episodes, args.context, args.generate, maze_size(config),
                             model.cfg.image_size)
    draws = []  # per draw: [E, G, H, W, 3] uint8
    for k in range(args.samples):
        shifted = [dataclasses.replace(e, seed=int(e.seed) + k * SEED_STRIDE) for e in episodes]
        r = rollout(sim, shifted, args.generate, teacher_forced=True, batch_size=args.batch_size)
        draws.append(np.stack(r.generated))
        print(f"draw {k + 1}/{args.samples}: {r.seconds_per_step * 1000:.0f} ms per step", flush=True)
    truth = np.stack(r.truth)  # [E, G, H, W, 3]
    c = args.context
    previous = np.stack([e.frames[c - 1:c - 1 + truth.shape[1]].numpy() for e in episodes])
    actions = np.stack([e.actions[c - 1:c - 1 + truth.shape[1]].numpy() for e in episodes])  # [E, G] into each frame
    draws = np.stack(draws)  # [K, E, G, H, W, 3]
    rows = error_table(draws, truth, previous, actions, model.cfg.patch_size)
    spread = float(draws.var(0, ddof=1).mean())  # per-pixel variance between draws (float64 for uint8 input)
    cols = list(rows[0])[1:]
    print(f"\n{args.checkpoint}: {args.episodes} episodes x {truth.shape[1]} frames after {c}, {args.samples} draws "
          f"each; PSNR (dB) over each group's pixels; variance between draws {spread:.1f} (0-255 units^2)\n")
    print("| frames into which action | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for row in rows:
        print(f"| {row['group']} | {row['frames']} | " + " | ".join(f"{row[k]:.2f}" for k in cols[1:]) + " |")
    write_json(args.out, {"draw_variance": spread, "rows": rows},
               provenance(args, torch.device("cpu"), config, {args.checkpoint: config["path"]}))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
