"""How much worse a model generates after a memory of its own estimates than after one of true
frames: the gap that own-context training (`own_context_prob`, worldsim/train/objective.py) aims at.

    python benchmarks/own_context_gap.py [--checkpoint maze] [--episodes 16] [--context 48]
        [--generate 4] [--threads 2] [--out runs/own_context_gap.json]

Held-out maze episodes (the next-frame task's, seeds outside training's). The memory after the
first `--context` frames is built three ways:
  true          the true frames committed clean (what `worldsim eval --teacher-forced` gives)
  true, noised  the true frames committed at the checkpoint's context noise
  own, noised   the model's own estimates of them, committed at that noise (`own_context`: the
                memory training builds for own-context windows, and close to what the simulator's
                memory holds when it runs on its own)
and from each the checkpoint's sampler generates the next `--generate` frames on the true actions,
with the same noise. Prints PSNR against the truth per generated frame and the paired differences
per episode (mean +- standard error); writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from worldsim.checkpoint import load_model
from worldsim.diffusion import ObjectiveConfig, add_noise
from worldsim.evaluation.metrics import psnr
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.evaluation.tasks import maze_episodes, maze_size
from worldsim.simulator import Simulator
from worldsim.train.objective import own_context, prepare_window

CONDITIONS = ("true", "true, noised", "own, noised")


def memories(sim: Simulator, frames: torch.Tensor, actions: torch.Tensor, seed: int) -> dict:
    """The memory after frames uint8 [1, P, H, W, 3] (actions [1, P]) per condition."""
    zeros = torch.zeros(actions.shape)
    w = prepare_window(frames, actions, zeros, zeros, ObjectiveConfig(long_context_prob=0.0),
                       torch.Generator().manual_seed(seed))
    level = torch.full_like(w.tau, sim.sampler.context_noise)
    w = dataclasses.replace(w, loss_mask=torch.zeros_like(w.loss_mask))  # every frame is context
    own = own_context(sim.model, w, torch.ones(1, dtype=torch.bool), sim.sampler.context_noise,
                      torch.Generator().manual_seed(seed))
    commit = lambda z, tau: sim.model(z, tau, w.produced, update_cache=True).cache  # noqa: E731
    with torch.no_grad():
        return {"true": sim.prefill(frames, actions[:, :-1]),
                "true, noised": commit(add_noise(w.x0, level, w.eps), level),
                "own, noised": commit(own.z, own.tau)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--context", type=int, default=48, help="frames in the memory")
    p.add_argument("--generate", type=int, default=4, help="frames generated after it")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/own_context_gap.json")
    args = p.parse_args()
    if args.episodes < 2:
        p.error(f"--episodes must be >= 2 (the gaps are given with their standard error), got {args.episodes}")
    torch.set_num_threads(args.threads)
    model, config = load_model(args.checkpoint)
    sim = Simulator.for_checkpoint(model, config, device="cpu")
    P, G = args.context, args.generate
    episodes = maze_episodes("next-frame", args.episodes, P, G + 1, maze_size(config), model.cfg.image_size)
    scores = {c: [] for c in CONDITIONS}  # per condition: [episodes][G] PSNR
    for i, e in enumerate(episodes):
        frames, actions = e.frames[None], e.actions[None]
        for name, cache in memories(sim, frames[:, :P], actions[:, :P], i).items():
            sim.reset(frames[:, :1], seeds=[i])  # the same noise for every condition
            sim.cache = cache
            row = []
            for j in range(G):
                generated, _, _ = sim.step(actions[:, P - 1 + j])
                row.append(float(psnr(generated.numpy(), frames[:, P + j].numpy())[0]))
            scores[name].append(row)
        print(f"episode {i}: " + ", ".join(f"{c} {scores[c][-1][0]:.2f} dB" for c in CONDITIONS), flush=True)

    t = {c: torch.tensor(v) for c, v in scores.items()}  # [episodes, G]
    n = len(episodes)
    print(f"\n{args.checkpoint}, {n} held-out episodes, memory of {P} frames, "
          f"context noise {sim.sampler.context_noise}, "
          f"{sim.sampler.steps} sampler steps: PSNR of generated frame 1..{G}\n")
    print("| memory | " + " | ".join(f"frame {j + 1}" for j in range(G)) + " |\n|---|" + "---:|" * G)
    for c in CONDITIONS:
        print(f"| {c} | " + " | ".join(f"{v:.2f}" for v in t[c].mean(0).tolist()) + " |")
    summary = {c: t[c].mean(0).tolist() for c in CONDITIONS}
    for a, b in (("true, noised", "true"), ("own, noised", "true, noised")):
        d = t[a] - t[b]
        mean, se = d.mean(0), d.std(0) / n ** 0.5
        summary[f"{a} minus {b}"] = {"mean": mean.tolist(), "se": se.tolist()}
        print(f"| {a} minus {b} | " + " | ".join(f"{m:+.2f} +- {s:.2f}" for m, s in zip(mean.tolist(), se.tolist())) + " |")
    write_json(args.out, {"context": P, "generate": G, "psnr": scores, "summary": summary},
               provenance(args, torch.device("cpu"), config, {args.checkpoint: config["path"]}))


if __name__ == "__main__":
    main()
