"""Does the world model use the action? Teacher-forced next frame with the true action vs a wrong one.

    python benchmarks/action_effect.py --checkpoint maze --envs 16 --out benchmarks/results/action_effect.json

The maze's exploration policy acts in B held-out mazes. At several points of each trajectory the
model gets the true frames so far as context and generates the next frame three times over from
one memory snapshot: with the action that was taken, and with a wrong action (the true one shifted
by `--shift` in the action list). As a floor, the previous true frame is scored as a prediction of
the next one ("nothing moves"). If the true action does not beat the wrong one, the model ignores
its actions; if the model does not beat the floor, it predicts little beyond "the same as before".
"""

import argparse

import numpy as np
import torch

from worldsim.checkpoint import load_model
from worldsim.evaluation.metrics import psnr
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.maze.core import N_ACTIONS, MazeWorld
from worldsim.maze.episodes import eval_seed
from worldsim.maze.policies import ExplorePolicy
from worldsim.simulator import Simulator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--envs", type=int, default=16)
    p.add_argument("--points", default="20,24,28,32,36", help="context lengths at which the next frame is scored")
    p.add_argument("--shift", type=int, default=2, help="wrong action = (true action + shift) mod the action count")
    p.add_argument("--sampling-steps", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/action_effect.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.shift % N_ACTIONS == 0:
        raise SystemExit(f"--shift {args.shift} maps every action to itself")

    model, config = load_model(args.checkpoint)
    maze = config["source"]["env_kwargs"]
    sim = Simulator.for_checkpoint(model, config, args.sampling_steps, None, "cpu", "float32")
    points = [int(t) for t in args.points.split(",")]
    seeds = [eval_seed(i) for i in range(args.envs)]
    world = MazeWorld(args.envs, maze_size=maze["maze_size"], image_size=maze["image_size"])
    frames, actions = [world.reset(seeds=seeds)], []
    policy = ExplorePolicy(world)
    for _ in range(max(points)):
        actions.append(policy.act())
        frames.append(world.step(actions[-1])[0])
    frames, actions = torch.stack(frames, 1), torch.stack(actions, 1)  # [B, T+1, H, W, 3], [B, T]

    scores = {"true_action": [], "wrong_action": [], "previous_frame": []}
    for t in points:  # context: frames 0..t-1; target: frame t, produced by actions[:, t-1]
        sim.reset(frames[:, :t], actions[:, :t - 1], seeds=seeds)
        snapshot = sim.get_state()
        target = frames[:, t].numpy()
        for name, action in (("true_action", actions[:, t - 1]), ("wrong_action", (actions[:, t - 1] + args.shift) % N_ACTIONS)):
            sim.set_state(snapshot)
            scores[name].append(psnr(sim.step(action)[0].numpy(), target))
        scores["previous_frame"].append(psnr(frames[:, t - 1].numpy(), target))
    summary = {k: float(np.mean(np.concatenate(v))) for k, v in scores.items()}

    prov = provenance(args, sim.device, checkpoints={"model": config["path"]},
                      config={"seeds": seeds, "points": points, "sampling_steps": sim.sampler.steps})
    write_json(args.out, {"mean_psnr": summary, "per_point": {k: [x.tolist() for x in v] for k, v in scores.items()}}, prov)
    print(f"next-frame PSNR over {args.envs} mazes x {len(points)} points, {sim.sampler.steps} sampler steps")
    print("| prediction | PSNR |\n|---|---:|")
    for k, v in summary.items():
        print(f"| {k.replace('_', ' ')} | {v:.2f} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
