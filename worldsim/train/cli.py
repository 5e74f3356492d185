"""`worldsim train`: start or resume a training run.

    worldsim train --config tiny|small|base|FILE.json --steps N --out DIR [--device auto] [--data maze|DIR]
    worldsim train --config small --plans PLANS.safetensors --plans-fraction 0.5 ...   # maze + cue recall plans
    worldsim train --config small --init maze --steps N --out DIR   # new run from the shipped weights
    worldsim train --resume DIR [--steps N]          # continue the run in DIR up to step N
    torchrun --nproc_per_node 2 -m worldsim.cli train ...   # DDP, same arguments
"""

from __future__ import annotations

import argparse

from worldsim.train.config import load_train_config
from worldsim.train.trainer import Trainer, load_run_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="preset (tiny, small, base) or a JSON file of TrainConfig fields")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR (its config is reused)")
    p.add_argument("--steps", type=int, help="train until this many optimizer steps in total")
    p.add_argument("--out", help="run directory (checkpoints, metrics.jsonl, samples/)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--data", help="'maze' (generated on the fly) or a directory of shards from `worldsim record`")
    p.add_argument("--plans", help="a maze plans file (scripts/build_recall_plans.py) mixed into the maze's windows")
    p.add_argument("--plans-fraction", type=float, help="the share of each batch's windows cut from --plans (0.5)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--save-every", type=int)
    p.add_argument("--sample-every", type=int)
    p.add_argument("--init", metavar="CHECKPOINT", help="start a new run from these weights (path or shipped name)")


def run(args) -> int:
    if args.resume:
        if args.config or args.data or args.plans or args.plans_fraction is not None:
            raise ValueError("--resume reuses the run's own config: drop --config/--data/--plans/--plans-fraction")
        cfg = load_run_config(args.resume)
        out = args.out or args.resume
    else:
        if not (args.config and args.out and args.steps):
            raise ValueError("a new run needs --config, --steps and --out (or --resume DIR)")
        cfg = load_train_config(args.config, data=args.data, batch_size=args.batch_size, seed=args.seed,
                                save_every=args.save_every, sample_every=args.sample_every,
                                init_from=args.init, plans=args.plans, plans_fraction=args.plans_fraction)
        out = args.out
    trainer = Trainer(cfg, out, device=args.device)
    if args.resume:
        trainer.resume(args.resume)
    elif cfg.init_from:
        trainer.init_from(cfg.init_from, cfg.init_reinit, cfg.init_layers, cfg.init_shut_layers)
    steps = args.steps if args.steps is not None else cfg.total_steps
    if trainer.is_main:
        print(f"worldsim train: {trainer.model.num_parameters() / 1e6:.2f}M parameters, device {trainer.device}, "
              f"world size {trainer.world}, step {trainer.step} -> {steps}, out {out}")
    last = trainer.fit(steps)
    if trainer.is_main and last:
        print(f"step {trainer.step}: loss {last['loss']:.4f}, {last['frames_per_s']:.0f} frames/s")
    return 0
