"""Long-rollout stability: does a free-running rollout of N frames (10,000 by default) collapse?

    python benchmarks/long_rollout.py --checkpoint maze --frames 10000 --out benchmarks/results/long_rollout

The model starts from one true frame of a held-out maze and is driven by the maze's exploration
policy acting in the true maze (the "twin"), so the same actions give both a generated and a
true stream. Nothing true enters the model after the first frame. Per frame we record the
statistics a collapse shows in -- mean brightness, pixel standard deviation (contrast) and texture
(mean difference between neighbouring pixels) -- for both streams, and the PSNR between them (which falls as the rollout's path drifts from the true
one; a collapse is different: frames leaving the range of frames the maze can produce).

Writes long_rollout.json (per-frame stats, per-1000-frame summary, the fraction of generated frames
whose mean and std lie within the true stream's range over the whole rollout) and
long_rollout_frames.png (true above generated at frames 0, 1k, 5k, N).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from tqdm import tqdm

from worldsim.checkpoint import load_model
from worldsim.evaluation import plots
from worldsim.evaluation.metrics import psnr
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.maze.core import MazeWorld
from worldsim.maze.episodes import eval_seed
from worldsim.maze.policies import ExplorePolicy
from worldsim.simulator import Simulator, add_sampling_arguments, sampling_options


def frame_stats(frame: torch.Tensor) -> tuple[float, float, float]:
    """(mean, std, texture) of a uint8 [H, W, 3] frame, in [0, 255]. texture: the mean absolute
    difference between neighbouring pixels -- the maze is flat-shaded, so a rollout dissolving
    into texture noise shows here even while its mean and std stay plausible."""
    x = frame.float()
    texture = ((x[1:] - x[:-1]).abs().mean() + (x[:, 1:] - x[:, :-1]).abs().mean()) / 2
    return float(x.mean()), float(x.std()), float(texture)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--episode", type=int, default=0, help="held-out maze seed index (eval_seed)")
    add_sampling_arguments(p)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--history-guidance", metavar="SCALE:NOISE",
                   help="sample with history guidance (benchmarks/history_guidance.py), on the CPU")
    p.add_argument("--out", default="benchmarks/results/long_rollout")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    model, config = load_model(args.checkpoint)
    maze = config["source"]["env_kwargs"]
    sim = Simulator.for_checkpoint(model, config, device=args.device, **sampling_options(args))
    if args.history_guidance:
        from history_guidance import Guidance, GuidedSimulator  # noqa: E402  (benchmarks/ is the script's directory)

        scale, noise = (float(x) for x in args.history_guidance.split(":"))
        sim = GuidedSimulator(model, sim.sampler, Guidance(scale, noise))
    world = MazeWorld(1, maze_size=maze["maze_size"], image_size=maze["image_size"])
    seed = eval_seed(args.episode)
    truth = world.reset(seeds=[seed])
    policy = ExplorePolicy(world)
    # hashed before the rollout: a checkpoint moved during an hour's run then loses nothing
    prov = provenance(args, sim.device, checkpoints={"model": config["path"]},
                      config={"seed": seed, "sampling_steps": sim.sampler.steps,
                              "context_noise": sim.sampler.context_noise})
    generated = sim.reset(truth[:, None], seeds=[seed])

    keep = sorted({0, min(1000, args.frames), min(5000, args.frames), args.frames})
    kept_true, kept_gen = {0: truth[0].numpy()}, {0: generated[0].numpy()}
    stats = {f"{who}_{stat}": [] for who in ("true", "gen") for stat in ("mean", "std", "texture")}
    stats["psnr"] = []
    start = time.perf_counter()
    try:
        for t in tqdm(range(1, args.frames + 1), desc="long rollout", unit="frame"):
            action = policy.act()
            truth, _, _ = world.step(action)
            generated, _, _ = sim.step(action)
            for name, frame in (("true", truth[0]), ("gen", generated[0])):
                for stat, value in zip(("mean", "std", "texture"), frame_stats(frame)):
                    stats[f"{name}_{stat}"].append(value)
            stats["psnr"].append(float(psnr(generated[0].numpy()[None], truth[0].numpy()[None])[0]))
            if t in keep:
                kept_true[t], kept_gen[t] = truth[0].numpy(), generated[0].numpy()
    except KeyboardInterrupt:  # Ctrl-C / SIGINT: report the frames made so far, the last one shown
        done = len(stats["psnr"])
        print(f"interrupted after {done} frames")
        keep = [k for k in keep if k <= done] + ([done] if done not in keep else [])
        kept_true[done], kept_gen[done] = truth[0].numpy(), generated[0].numpy()
        args.frames = done
    seconds = time.perf_counter() - start

    arr = {k: np.asarray(v) for k, v in stats.items()}
    ranges = {stat: (float(arr[f"true_{stat}"].min()), float(arr[f"true_{stat}"].max())) for stat in ("mean", "std", "texture")}
    # the criterion: brightness and contrast within the truth's range. Texture is reported
    # per block instead: the model's frames are never as flat as the truth's, even at frame 1, so
    # what matters is whether their texture grows along the rollout.
    inside = np.ones(args.frames, dtype=bool)
    for stat in ("mean", "std"):
        lo, hi = ranges[stat]
        inside &= (arr[f"gen_{stat}"] >= lo) & (arr[f"gen_{stat}"] <= hi)
    blocks = []
    for b in range(0, args.frames, 1000):
        s = slice(b, min(b + 1000, args.frames))
        blocks.append({"frames": [b + 1, s.stop], "inside_true_range": float(inside[s].mean()),
                       **{f"{k}_mean": float(arr[k][s].mean()) for k in stats}})
    summary = {"frames": args.frames, "seconds": seconds, "true_ranges": ranges,
               "inside_true_range": float(inside.mean()), "blocks": blocks}

    out = args.out.rstrip("/")
    write_json(f"{out}/long_rollout.json", {"summary": summary, "per_frame": stats}, prov)
    plots.frame_strip(np.stack([kept_true[t] for t in keep])[None], np.stack([kept_gen[t] for t in keep])[None],
                      f"{out}/long_rollout_frames.png", prov, f"frames {', '.join(map(str, keep))}: true (top), model",
                      columns=len(keep), episodes=1)
    print(f"{args.frames} frames in {seconds:.0f} s; generated frames whose mean and std lie inside the true "
          f"frames' range: {summary['inside_true_range']:.1%}")
    print("| frames | inside true range | PSNR | mean gen / true | std gen / true | texture gen / true |\n|---|---|---|---|---|---|")
    for b in blocks:
        print(f"| {b['frames'][0]}-{b['frames'][1]} | {b['inside_true_range']:.1%} | {b['psnr_mean']:.2f} | "
              + " | ".join(f"{b[f'gen_{k}_mean']:.1f} / {b[f'true_{k}_mean']:.1f}" for k in ("mean", "std", "texture")) + " |")


if __name__ == "__main__":
    main()
