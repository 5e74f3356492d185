"""What committing a generated frame costs, three ways, timed in alternating rounds on one machine.

    python benchmarks/commit_modes.py [--checkpoint maze] [--rounds 10] [--frames 10] [--threads 2]

  own pass   the frame is committed by a model pass of its own right after it is generated (the
             engine before 2026-12-02; here forced by reading `sim.cache` after every step)
  fused      the commit rides in the next frame's first sampler pass: one pass over two frames
             instead of two passes over one (the engine's default since 2026-12-02)
  in sampler `commit_in_sampler`: the sampler's pass at the context-noise level commits (opt-in)

Each mode steps its own simulator of the checkpoint (batch 1, the checkpoint's sampler settings)
from the same context; rounds of `--frames` frames alternate between the modes so that load from
other jobs falls on all alike. Prints model passes per frame, median ms per frame over the rounds
and each mode's speed relative to `own pass`, and writes JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from worldsim.checkpoint import load_model
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.maze.episodes import eval_seed
from worldsim.simulator import Simulator
from worldsim.sources import SourceEnv

MODES = ("own pass", "fused", "in sampler")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--frames", type=int, default=10, help="frames per round and mode")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/commit_modes.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    model, config = load_model(args.checkpoint)
    first = torch.from_numpy(SourceEnv(config.get("source", {}), model.cfg.image_size).reset(eval_seed(0)))
    sims, passes, seconds = {}, {m: 0 for m in MODES}, {m: [] for m in MODES}
    for mode in MODES:
        sims[mode] = Simulator.for_checkpoint(model, config, device="cpu", commit_in_sampler=mode == "in sampler")
        sims[mode].reset(first[None, None], seeds=[0])
    calls: list[str] = []
    model.register_forward_hook(lambda *_: calls.append(1))
    g = torch.Generator().manual_seed(0)
    for _ in range(args.rounds + 1):  # the first round warms up and is not counted
        for mode, sim in sims.items():
            actions = torch.randint(0, model.cfg.num_actions, (args.frames, 1), generator=g)
            calls.clear()
            start = time.perf_counter()
            for a in actions:
                sim.step(a)
                if mode == "own pass":
                    sim.cache  # noqa: B018 -- reading the memory commits the pending frame by its own pass
            seconds[mode].append((time.perf_counter() - start) / args.frames)
            passes[mode] = len(calls) / args.frames
    rows = []
    base = statistics.median(seconds["own pass"][1:])
    print(f"{args.checkpoint}: batch 1, {sims['fused'].sampler.steps} sampler steps, context noise "
          f"{sims['fused'].sampler.context_noise}, {args.rounds} rounds x {args.frames} frames, {args.threads} threads")
    print("| mode | model passes per frame | median ms/frame | speed vs own pass |\n|---|---:|---:|---:|")
    for mode in MODES:
        ms = statistics.median(seconds[mode][1:])
        rows.append({"mode": mode, "passes_per_frame": passes[mode], "median_ms_per_frame": 1000 * ms,
                     "rounds_ms_per_frame": [1000 * s for s in seconds[mode][1:]], "speedup": base / ms})
        print(f"| {mode} | {passes[mode]:.0f} | {1000 * ms:.1f} | {base / ms:.2f}x |")
    write_json(args.out, {"rows": rows}, provenance(args, "cpu", checkpoints={"model": config["path"]}))


if __name__ == "__main__":
    main()
