"""Would `torch.compile` make CPU play fast enough? The engine step, eager vs compiled, same process.

    python benchmarks/compile_step.py [--checkpoint maze] [--threads 2] [--rounds 4] [--steps 10]

The checkpoint's Simulator at batch 1 after a random 8-frame context. The model's forward is
compiled once (`dynamic=False`; the time of the first steps, compilation included, is reported),
then eager and compiled steps alternate in rounds, each round restarting the episode, so load from
other jobs falls on both alike. Prints a table (median ms per frame, the speed-up) and writes JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from worldsim.checkpoint import load_model
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.simulator import Simulator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=10, help="timed steps per round and mode, after 3 untimed")
    p.add_argument("--out", default="runs/compile_step.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, config = load_model(args.checkpoint)
    sim = Simulator.for_checkpoint(model, config, device="cpu")
    context = torch.randint(0, 256, (1, 8, model.cfg.image_size, model.cfg.image_size, 3), dtype=torch.uint8)
    context_actions = torch.randint(0, model.cfg.num_actions, (1, 7))

    def episode(steps: int) -> list[float]:
        sim.reset(context, context_actions)
        seconds = []
        for i in range(steps):
            start = time.perf_counter()
            sim.step(torch.tensor([i % model.cfg.num_actions]))
            seconds.append(time.perf_counter() - start)
        return seconds

    eager = model.forward
    compiled = torch.compile(model.forward, dynamic=False)
    model.forward = compiled
    first = episode(6)  # compiles every graph a rollout needs
    times = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        for mode, forward in (("eager", eager), ("compiled", compiled)):
            model.forward = forward
            times[mode] += episode(3 + args.steps)[3:]
    ms = {mode: 1000 * statistics.median(t) for mode, t in times.items()}
    print(f"| mode | ms per frame (median of {args.rounds * args.steps}) | frames/s |\n|---|---:|---:|")
    for mode, v in ms.items():
        print(f"| {mode} | {v:.1f} | {1000 / v:.2f} |")
    print(f"speed-up {ms['eager'] / ms['compiled']:.2f}x; first 6 compiled steps (compilation included): "
          + ", ".join(f"{s:.1f}" for s in first) + " s")
    prov = provenance(args, "cpu", checkpoints={"model": config["path"]})
    print("wrote", write_json(args.out, {"ms_per_frame": ms, "speedup": ms["eager"] / ms["compiled"],
                                         "first_compiled_steps_s": first, "step_seconds": times}, prov))


if __name__ == "__main__":
    main()
