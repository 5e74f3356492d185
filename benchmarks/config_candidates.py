"""What each candidate shipped config costs: parameters, tokens per frame, training FLOPs, and the
engine's step time on this machine, as ratios to the shipped `small` measured in the same run.

    python benchmarks/config_candidates.py --threads 1 [--device cpu] [--steps 8 --rounds 3] [--only NAME ...]

Issue #7 asks for the shipped config to be chosen by measurement, quality against step speed.
This is the speed side: a candidate that cannot play at >= 5 frames/s on a 2-core CPU (the
README's `worldsim play` goal) at the shipped 2 sampler steps is out whatever its quality. Models
are random-init (cost does not depend on the weights). Rounds alternate the candidates, so load
from other jobs falls on all of them alike; each candidate's figure is the median step.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from worldsim.bench import actions, random_context
from worldsim.config import mixed_blocks, preset
from worldsim.diffusion import SamplerSettings
from worldsim.evaluation.flops import training_flops_per_frame
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.model import LSSVWM
from worldsim.simulator import Simulator

SHIPPED = "small (shipped)"
CANDIDATES = {
    SHIPPED: {},
    "k = 5": dict(attn_window=5),
    "k = 20": dict(attn_window=20),
    "blocks whole / 4x4": dict(ssm_blocks=((8, 8), (4, 4)) * 4),
    "blocks whole only": dict(ssm_blocks=((8, 8),) * 8),
    "depth 12": dict(depth=12, ssm_blocks=mixed_blocks(8, 12)),
    "width 384": dict(width=384, attn_heads=6),
    "4x4 patches (256 tokens)": dict(patch_size=4, ssm_blocks=mixed_blocks(16, 8)),
    "base (4x4, width 512, depth 12)": "base",
}


def candidate_config(spec):
    return preset(spec) if isinstance(spec, str) else preset("small", **spec)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sampling-steps", type=int, default=2, help="the shipped setting")
    p.add_argument("--steps", type=int, default=8, help="timed steps per candidate per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--context", type=int, default=20, help="frames in memory before timing")
    p.add_argument("--train-window", type=int, default=256, help="window for the training FLOP count")
    p.add_argument("--out", default="benchmarks/results/config_candidates.json")
    p.add_argument("--only", nargs="+", choices=list(CANDIDATES), metavar="NAME",
                   help=f"time only these candidates and the shipped one, the ratios' base (default: all): "
                        f"{', '.join(CANDIDATES)}")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    sims, rows = {}, {}
    for name, spec in CANDIDATES.items():
        if args.only and name not in (SHIPPED, *args.only):
            continue
        cfg = candidate_config(spec)
        torch.manual_seed(0)
        sim = Simulator(LSSVWM(cfg), SamplerSettings(steps=args.sampling_steps), device=args.device)
        context = random_context(cfg, 1).expand(1, args.context, -1, -1, -1).contiguous()
        sim.reset(context, torch.ones(1, args.context - 1, dtype=torch.long))
        for _ in range(2):  # warm-up
            sim.step(actions(cfg, 1))
        sims[name] = sim
        rows[name] = {"config": dataclasses.asdict(cfg), "parameters": sim.model.num_parameters(),
                      "tokens_per_frame": cfg.tokens_per_frame,
                      "train_gflop_per_frame": training_flops_per_frame(cfg, args.train_window) / 1e9,
                      "memory_mib": sim.memory_bytes() / 2**20, "step_ms": []}
    for r in range(args.rounds):
        for name, sim in sims.items():
            for _ in range(args.steps):
                t0 = time.perf_counter()
                sim.step(actions(sim.cfg, 1))
                rows[name]["step_ms"].append(1e3 * (time.perf_counter() - t0))
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    base_ms = statistics.median(rows[SHIPPED]["step_ms"])
    print(f"\n{args.device}, {args.threads} thread(s), batch 1, {args.sampling_steps} sampler steps, "
          f"{args.rounds} rounds x {args.steps} steps each\n")
    print("| candidate | params | tokens/frame | train GFLOP/frame | memory MiB | ms/frame | frames/s | vs shipped | play >= 5 fps |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, row in rows.items():
        ms = statistics.median(row["step_ms"])
        row.update(median_ms=ms, frames_per_s=1e3 / ms, time_vs_shipped=ms / base_ms)
        print(f"| {name} | {row['parameters'] / 1e6:.2f}M | {row['tokens_per_frame']} | "
              f"{row['train_gflop_per_frame']:.2f} | {row['memory_mib']:.1f} | {ms:.1f} | {1e3 / ms:.1f} | "
              f"{ms / base_ms:.2f}x | {'yes' if 1e3 / ms >= 5 else 'no'} |")
    write_json(args.out, {"candidates": rows}, provenance(args, torch.device(args.device)))


if __name__ == "__main__":
    main()
