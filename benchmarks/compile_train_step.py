"""Would `torch.compile` pay for training? Eager against compiled training steps, same process.

    python benchmarks/compile_train_step.py [--config configs/maze384/stage5.json] [--batch-frames F]
        [--window W] [--rounds 3] [--steps 5] [--device cuda] [--threads 2] [--out runs/compile_train_step.json]

One Trainer, whose objective runs either as it is or through `torch.compile`, in alternating rounds
of training steps on one fixed batch (no maze is rendered: data time is left out), so both modes
update the same weights and load from other jobs falls on both alike. State resets are off and there
are no temporal segments: a reset cuts a window into spans of random lengths, each a new graph to
compile, so the figure is what compiling could gain once a reset runs inside one graph. First, both
modes take one step from the same weights, optimizer state and random streams, and the loss and the
updated weights are compared (the compiler reorders float ops); the compiled step's time there
includes compiling. Prints a table, dynamo's graph and graph-break counts, and writes JSON.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch._dynamo.utils import counters

from worldsim.evaluation.provenance import provenance, write_json
from worldsim.train.config import load_train_config
from worldsim.train.trainer import Trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/maze384/stage5.json", help="preset or TrainConfig JSON")
    p.add_argument("--batch-frames", type=int, default=None, help="frames per step (default: the config's)")
    p.add_argument("--window", type=int, default=None, help="window length (default: the config's first)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5, help="timed steps per round and mode, after one untimed")
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/compile_train_step.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {"state_reset_prob": 0.0, "segment_frames": 0, "init_from": "", "batch_frames": args.batch_frames}
    if args.window:
        overrides["window_schedule"] = [[0, args.window]]
    cfg = load_train_config(args.config, **overrides)
    trainer = Trainer(cfg, "/tmp/compile_train_step", device=args.device, show_progress=False)
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    window, batch = cfg.window_at(0), cfg.batch_at(0)
    fixed = trainer.source.next(window, batch)
    trainer.source.next = lambda w, b: fixed
    runners = {"eager": trainer.objective, "compiled": torch.compile(trainer.objective)}

    def step(mode: str) -> tuple[float, dict]:
        trainer.runner = runners[mode]
        trainer.step = 0  # the same lr every step
        start = time.perf_counter()
        logs = trainer.train_step()
        sync()
        return time.perf_counter() - start, logs

    # one step from the same state in each mode
    start = {"model": copy.deepcopy(trainer.model.state_dict()), "opt": copy.deepcopy(trainer.opt.state_dict()),
             "rng": (trainer.generator.get_state(), trainer.noise_generator.get_state())}
    first, loss, weights = {}, {}, {}
    for mode in runners:
        trainer.model.load_state_dict(start["model"])
        trainer.opt.load_state_dict(start["opt"])
        trainer.generator.set_state(start["rng"][0])
        trainer.noise_generator.set_state(start["rng"][1])
        first[mode], logs = step(mode)
        loss[mode] = logs["loss"]
        weights[mode] = {k: q.detach().float().clone() for k, q in trainer.model.named_parameters()}
    weight_diff = max(float((weights["eager"][k] - q).abs().max()) for k, q in weights["compiled"].items())
    update = max(float((q - start["model"][k].float()).abs().max()) for k, q in weights["eager"].items())

    times = {mode: [] for mode in runners}
    for _ in range(args.rounds):
        for mode in runners:
            step(mode)  # untimed: the first step after switching modes
            times[mode] += [step(mode)[0] for _ in range(args.steps)]
    ms = {mode: 1000 * statistics.median(t) for mode, t in times.items()}
    frames = batch * window
    print(f"{args.config} on {trainer.device.type}: {batch} windows x {window} frames per step")
    print(f"| mode | ms per step (median of {args.rounds * args.steps}) | frames/s |\n|---|---:|---:|")
    for mode, v in ms.items():
        print(f"| {mode} | {v:.1f} | {1000 * frames / v:,.0f} |")
    graphs, breaks = counters["stats"]["unique_graphs"], sum(counters["graph_break"].values())
    print(f"speed-up {ms['eager'] / ms['compiled']:.2f}x; first compiled step (compilation included) "
          f"{first['compiled']:.1f} s, first eager step {first['eager']:.1f} s; {graphs} graphs, {breaks} graph breaks")
    print(f"one step from the same state: loss {loss['eager']:.6f} eager, {loss['compiled']:.6f} compiled; "
          f"weights after it differ by at most {weight_diff:.2e} (the step moved them by up to {update:.2e})")
    prov = provenance(args, trainer.device)
    print("wrote", write_json(args.out, {
        "ms_per_step": ms, "speedup": ms["eager"] / ms["compiled"], "frames_per_step": frames,
        "first_step_s": first, "step_seconds": times, "loss_same_state": loss, "max_weight_difference": weight_diff,
        "max_weight_update": update, "unique_graphs": graphs, "graph_breaks": dict(counters["graph_break"])}, prov))


if __name__ == "__main__":
    main()
