"""A/B copies of the code: engine step and training step, in alternating child processes.

    git archive REV worldsim envs | tar -x -C runs/base   # the code to compare against
    python benchmarks/ab_trees.py runs/base [runs/other ...] . [--rounds 3] [--device cpu] [--threads 1]
        [--sim-batch 1] [--dtype float32]
        [--train-config small] [--train-window 32] [--train-batch 2] [--train-at-step 0] [--warmup 2]
        [--steps 3] [--maze-pool 0] [--vector N --episode-steps E] [--no-train] [--out FILE]

Each tree is a directory holding a `worldsim` package (and `envs`, for --vector). Every round runs
one child process per tree (in turn, so load from other jobs falls on all alike); the child
imports that tree's worldsim and measures (1) ms per step of the shipped checkpoint's Simulator at
batch --sim-batch in --dtype (batch 1: the env's case; on CUDA with its default CUDA graph), (2)
with --vector, ms per step of `gym.make_vec("LSSVWM-v0", num_envs=N, max_episode_steps=E)` with
the envs' episodes staggered so that N/E of them restart each step (an RL agent's case), and (3)
ms per training step of `--train-config` on a fixed batch, after `--warmup` steps. On CUDA the
first process on a machine compiles and tunes the Triton kernels (measured: the tree run first took
7x as long per step), so each tree first runs once untimed.
Prints medians and each tree's ratio to the first; JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHECKPOINT = str(Path(__file__).resolve().parents[1] / "checkpoints" / "maze")


def child(a: argparse.Namespace) -> dict:
    import torch

    import worldsim
    from worldsim.checkpoint import load_model
    from worldsim.simulator import Simulator
    from worldsim.train.config import load_train_config
    from worldsim.train.trainer import Trainer

    torch.set_num_threads(a.threads)
    out = {"worldsim": worldsim.__file__}
    if a.sim_batch:
        model, config = load_model(CHECKPOINT)
        sim = Simulator.for_checkpoint(model, config, device=a.device, dtype=a.dtype)
        sync = torch.cuda.synchronize if sim.device.type == "cuda" else (lambda: None)
        g = torch.Generator().manual_seed(0)
        n = a.sim_batch
        sim.reset(torch.randint(0, 255, (n, 20, 64, 64, 3), dtype=torch.uint8, generator=g),
                  torch.zeros(n, 19, dtype=torch.long))
        act = torch.ones(n, dtype=torch.long)
        for _ in range(3):
            sim.step(act)
        sync()
        t = time.perf_counter()
        for _ in range(a.frames):
            sim.step(act)
        sync()
        out["step_ms"] = (time.perf_counter() - t) / a.frames * 1000
    if a.vector:
        out["vector_step_ms"] = vector_step_ms(a)
    if not a.train:
        return out
    overrides = {"window_schedule": ((0, a.train_window),)} if a.train_window else {}
    if a.train_batch:
        overrides.update(batch_frames=0, batch_size=a.train_batch)
    if a.maze_pool:
        overrides.update(maze_pool=a.maze_pool)
    cfg = load_train_config(a.train_config, sample_every=0, **overrides)
    trainer = Trainer(cfg, f"/tmp/ab_trees_{os.getpid()}", device=a.device, show_progress=False)
    trainer.step = a.train_at_step
    window, batch = cfg.window_at(a.train_at_step), cfg.batch_at(a.train_at_step)
    fixed = trainer.source.next(window, batch)
    trainer.source.next = lambda w, b: fixed
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    for _ in range(a.warmup):
        trainer.train_step()
        trainer.step = a.train_at_step
    sync()
    t = time.perf_counter()
    for _ in range(a.steps):
        trainer.train_step()
        trainer.step = a.train_at_step  # same window and learning rate every step
    sync()
    out["train_ms"] = (time.perf_counter() - t) / a.steps * 1000
    out["train_frames_per_s"] = fixed.frames.shape[0] * window / (out["train_ms"] / 1000)
    return out


def vector_step_ms(a: argparse.Namespace) -> float:
    import gymnasium as gym
    import numpy as np

    envs = gym.make_vec("LSSVWM-v0", num_envs=a.vector, checkpoint=CHECKPOINT, device=a.device,
                        max_episode_steps=a.episode_steps)
    if not sys.modules[type(envs.unwrapped).__module__].__file__.startswith(str(Path(a.tree).resolve())):
        raise SystemExit(f"the vector env came from {sys.modules[type(envs.unwrapped).__module__].__file__}")
    actions = np.random.default_rng(0).integers(envs.single_action_space.n, size=(a.vector + a.frames, a.vector))
    envs.reset(seed=0)
    for i in range(a.vector):  # env i restarts i steps in: from here on episodes end in turn
        envs.step(actions[i])
        envs.reset(options={"reset_mask": np.arange(a.vector) == i})
    t = time.perf_counter()
    for x in actions[a.vector:]:
        envs.step(x)
    return (time.perf_counter() - t) / a.frames * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("trees", nargs="+", help="two or more directories, each holding a worldsim package")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--frames", type=int, default=20, help="Simulator steps timed per round")
    p.add_argument("--sim-batch", type=int, default=1, help="episodes per Simulator step; 0: no Simulator timing")
    p.add_argument("--dtype", default="float32", help="the Simulator's dtype (float32, bfloat16)")
    p.add_argument("--train-config", default="small")
    p.add_argument("--train-window", type=int, default=32, help="0: the config's schedule at --train-at-step")
    p.add_argument("--train-batch", type=int, default=2, help="windows per step; 0: the config's")
    p.add_argument("--train-at-step", type=int, default=0)
    p.add_argument("--maze-pool", type=int, default=0, help="mazes generated for the batch; 0: the config's")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--vector", type=int, default=0, help="also time the vector env with this many envs (on --device)")
    p.add_argument("--episode-steps", type=int, default=16, help="--vector: max_episode_steps of its envs")
    p.add_argument("--train", action=argparse.BooleanOptionalAction, default=True, help="time the training step")
    p.add_argument("--out")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tree", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a)))
        return
    if len(a.trees) < 2:
        raise SystemExit("give at least two trees to compare")
    trees = [str(Path(t).resolve()) for t in a.trees]
    for t in trees:
        if not (Path(t) / "worldsim" / "__init__.py").is_file():
            raise SystemExit(f"{t}: no worldsim package there")
    args = [x for x in sys.argv[1:] if x not in a.trees]
    runs: dict[str, list[dict]] = {t: [] for t in trees}
    for r in range(-1 if a.device.startswith("cuda") else 0, a.rounds):  # round -1: priming, not kept
        for t in trees:
            env = {**os.environ, "PYTHONPATH": t + os.pathsep + os.environ.get("PYTHONPATH", "")}
            res = subprocess.run([sys.executable, __file__, *a.trees, *args, "--child", "--tree", t], env=env,
                                 capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(f"{t}, round {r}: the child failed\n{res.stderr[-3000:]}")
            row = json.loads(res.stdout.strip().splitlines()[-1])
            if not row["worldsim"].startswith(t):
                raise SystemExit(f"{t}: the child imported {row['worldsim']}, not this tree's worldsim")
            if r >= 0:
                runs[t].append(row)
            print(f"round {r}: {t}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items() if k != "worldsim"),
                  flush=True)
    keys = [k for k in runs[trees[0]][0] if k != "worldsim"]
    med = {t: {k: statistics.median(row[k] for row in runs[t]) for k in keys} for t in trees}
    print(f"\n| median of {a.rounds} rounds | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for t in trees:
        print(f"| {t} | " + " | ".join(f"{med[t][k]:.1f}" for k in keys) + " |")
    for t in trees[1:]:
        ratios = " | ".join(f"{med[t][k] / med[trees[0]][k]:.3f}" for k in keys)
        print(f"| {Path(t).name or t} / first | {ratios} |")
    if a.out:
        import torch

        from worldsim.evaluation.provenance import provenance, write_json

        write_json(a.out, {"trees": trees, "runs": runs, "median": med}, provenance(a, torch.device(a.device)))


if __name__ == "__main__":
    main()
