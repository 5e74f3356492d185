"""Would `torch.compile` pay for the engine step? Eager vs compiled, same process.

    python benchmarks/compile_step.py [--checkpoint maze] [--threads 2] [--rounds 4] [--steps 10]
        [--device cpu] [--batch 1] [--dtype float32]

The checkpoint's Simulator at batch --batch after a random 8-frame context (batch 1 on CPU: play;
256 on a GPU: RL rollouts), once plain and once with `Simulator(compile=True)` (the time of the
compiled Simulator's first steps, compilation included, is reported); then their steps alternate in
rounds, each round restarting the episodes, so load from other jobs falls on both alike. On CUDA
each replays the CUDA graph of its own step. Both run the same episodes (context, seeds, actions), so
the compiled frames are also scored against the eager ones (PSNR per step of the last round: the
compiler reorders float ops, and a rollout carries what that changes). Prints a table (median ms
per step, frames/s, the speed-up) and writes JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from worldsim.checkpoint import load_model
from worldsim.evaluation.metrics import psnr
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.simulator import DTYPES, Simulator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=10, help="timed steps per round and mode, after 3 untimed")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=1, help="episodes per step")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--out", default="runs/compile_step.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, config = load_model(args.checkpoint)
    sims = {mode: Simulator.for_checkpoint(model, config, device=args.device, dtype=args.dtype,
                                           compile=mode == "compiled") for mode in ("eager", "compiled")}
    device = sims["eager"].device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    B, s = args.batch, model.cfg.image_size
    context = torch.randint(0, 256, (B, 8, s, s, 3), dtype=torch.uint8)
    context_actions = torch.randint(0, model.cfg.num_actions, (B, 7))

    frames = {}  # mode -> the last episode's frames [steps, B, H, W, 3]

    def episode(mode: str, steps: int) -> list[float]:
        sim = sims[mode]
        sim.reset(context, context_actions)
        seconds, frames[mode] = [], []
        for i in range(steps):
            start = time.perf_counter()
            frame = sim.step(torch.full((B,), i % model.cfg.num_actions))[0]
            sync()
            seconds.append(time.perf_counter() - start)
            frames[mode].append(frame.numpy())
        return seconds

    first = episode("compiled", 6)  # compiles every graph a rollout needs
    times = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        for mode in times:
            times[mode] += episode(mode, 3 + args.steps)[3:]
    agreement = [float(psnr(c, e).mean()) for c, e in zip(frames["compiled"], frames["eager"])]
    ms = {mode: 1000 * statistics.median(t) for mode, t in times.items()}
    print(f"{args.checkpoint} on {device.type}, batch {B}, {args.dtype}")
    print(f"| mode | ms per step (median of {args.rounds * args.steps}) | frames/s |\n|---|---:|---:|")
    for mode, v in ms.items():
        print(f"| {mode} | {v:.1f} | {1000 * B / v:,.1f} |")
    print(f"speed-up {ms['eager'] / ms['compiled']:.2f}x; first 6 compiled steps (compilation included): "
          + ", ".join(f"{s:.1f}" for s in first) + " s")
    print("compiled frames against eager, PSNR per step (dB): " + ", ".join(f"{p:.1f}" for p in agreement))
    prov = provenance(args, device, checkpoints={"model": config["path"]})
    print("wrote", write_json(args.out, {"ms_per_step": ms, "speedup": ms["eager"] / ms["compiled"],
                                         "first_compiled_steps_s": first, "step_seconds": times,
                                         "psnr_compiled_vs_eager_per_step": agreement}, prov))


if __name__ == "__main__":
    main()
