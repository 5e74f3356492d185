"""Is the world model's reward head a usable reward? Predicted vs true reward on held-out mazes.

    python benchmarks/reward_head.py --checkpoint maze --envs 8 --steps 300 --out benchmarks/results/reward_head.json

The maze's exploration policy acts in B held-out true mazes for N steps; the model sees the same
actions twice over:
  * teacher-forced: before each step its memory holds the true frames so far. This measures the
    head itself, on the frames it was trained on;
  * free-running: it continues from its own frames, as inside LSSVWM-v0 (where an RL agent trains).
Reported: the summed reward per env (true, teacher-forced, free-running), and the mean predicted
reward on the steps where the true reward was 1 and on the others.
"""

import argparse
import json

import numpy as np
import torch
from tqdm import tqdm

from worldsim.checkpoint import load_model
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.maze.core import MazeWorld
from worldsim.maze.episodes import eval_seed
from worldsim.maze.policies import ExplorePolicy
from worldsim.simulator import Simulator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--context-noise", type=float, default=None, help="noise level of committed frames (default: the checkpoint's)")
    p.add_argument("--out", default="benchmarks/results/reward_head.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    model, config = load_model(args.checkpoint)
    maze = config["source"]["env_kwargs"]
    world = MazeWorld(args.envs, maze_size=maze["maze_size"], image_size=maze["image_size"])
    seeds = [eval_seed(i) for i in range(args.envs)]
    first = world.reset(seeds=seeds)
    policy = ExplorePolicy(world)
    sims = {mode: Simulator.for_checkpoint(model, config, None, args.context_noise, "cpu", "float32")
            for mode in ("teacher_forced", "free_running")}
    for sim in sims.values():
        sim.reset(first[:, None], seeds=seeds)

    true, predicted = [], {mode: [] for mode in sims}
    for _ in tqdm(range(args.steps), desc="reward head", unit="step"):
        action = policy.act()
        frames, reward, _ = world.step(action)
        true.append(reward.numpy())
        teacher = sims["teacher_forced"]
        memory = teacher.cache.snapshot()
        predicted["teacher_forced"].append(teacher.step(action)[1].numpy())
        teacher.cache = memory  # forget its frame, remember the true one
        teacher.observe(frames[:, None], action[:, None])
        predicted["free_running"].append(sims["free_running"].step(action)[1].numpy())

    true_r = np.stack(true, 1)  # [B, N]
    hit = true_r > 0.5
    summary = {"envs": args.envs, "steps": args.steps, "true_return_per_env": float(true_r.sum(1).mean()),
               "reward_steps": int(hit.sum())}
    for mode, values in predicted.items():
        pred = np.stack(values, 1)
        summary[mode] = {"return_per_env": float(pred.sum(1).mean()),
                         "mean_on_reward_steps": float(pred[hit].mean()) if hit.any() else None,
                         "mean_on_other_steps": float(pred[~hit].mean()),
                         "correlation": float(np.corrcoef(pred.ravel(), true_r.ravel())[0, 1]) if hit.any() else None}
    write_json(args.out, {"summary": summary}, provenance(args, "cpu", checkpoints={"model": config["path"]}))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
