"""RL in imagination: PPO trained only inside the world model, then played on the true maze.

For each training seed, Stable-Baselines3's PPO (CnnPolicy on the RGB frames) learns twice with
the same number of env steps:
  - in imagination: inside `LSSVWM-v0`, where frames, reward and termination are all the world
    model's predictions (its reward and termination heads); it never sees the true maze;
  - on the real maze: inside the checkpoint's source env (`worldsim/Maze-v0` for "maze").
Both agents and a uniformly random policy are then evaluated on the true maze, on the same fixed
evaluation seeds (the same mazes for every agent). The gap between the imagination agent and the
real one measures how much of the world model's dynamics and reward survives as a training
ground; the return the imagination agent saw in training against the return it gets on the maze
shows how much it learnt to exploit the model's errors.

Both training envs are batched Gymnasium vector envs (`gym.make_vec`) with the same frames
(uint8 S x S x 3), actions and truncation (`--episode-steps`), adapted to SB3 by
`worldsim.rl.SB3VecEnv` and monitored by SB3's VecMonitor, so a policy moves between them as is.

    python examples/rl_in_imagination.py --device cuda --sampling-steps 2 --out runs/rl_in_imagination

(defaults: 3 seeds, 98,304 env steps per agent in 256 parallel envs, 200-step episodes, 128
evaluation episodes). Writes results.json and results.md into --out and prints the table.
Runtime: the world model's batched step dominates (on an H100, launch-bound: ~0.2 s per step of
all 256 envs at 2 sampler steps), so the command above should take 6-7 minutes (estimated from
measured step costs); on CPU use a tiny checkpoint (the tests do). Needs the "rl" extra: pip install -e ".[rl]".
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecMonitor

import worldsim  # noqa: F401  (registers LSSVWM-v0 and worldsim/Maze-v0)
from worldsim.checkpoint import load_config, resolve
from worldsim.rl import SB3VecEnv
from worldsim.sources import MAZE_ID

AGENTS = {"ppo_imagination": "PPO in imagination", "ppo_real": "PPO on the real env", "random": "random policy"}
NATURE_CNN_MIN_SIZE = 36  # NatureCNN's 8/4, 4/2, 3/1 convolutions need frames of at least 36 x 36


class SmallCNN(BaseFeaturesExtractor):
    """Two stride-2 3x3 convolutions and a linear layer: a features extractor for frames too
    small for SB3's NatureCNN (e.g. the 16x16 frames of the tests' tiny checkpoint)."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128):
        super().__init__(observation_space, features_dim)
        channels = observation_space.shape[0]  # SB3 hands the policy channel-first frames
        self.cnn = torch.nn.Sequential(
            torch.nn.Conv2d(channels, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, *observation_space.shape)).shape[1]
        self.linear = torch.nn.Sequential(torch.nn.Linear(n_flat, features_dim), torch.nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))


def make_imagination(a, num_envs: int) -> gym.vector.VectorEnv:
    return gym.make_vec("LSSVWM-v0", num_envs=num_envs, checkpoint=a.checkpoint, device=a.device,
                        sampling_steps=a.sampling_steps, dtype=a.dtype, compile=a.compile,
                        max_episode_steps=a.episode_steps)


def make_real(a, source: dict, num_envs: int) -> gym.vector.VectorEnv:
    """The checkpoint's source env with the frame size the model was trained on; the maze as one
    batched MazeWorld on --device (envs/maze_vector.py: a SyncVectorEnv of MazeEnvs would pay the
    raycaster's per-call cost once per env, slower than the world model itself)."""
    kwargs = dict(source.get("env_kwargs", {}))
    if source["env_id"] == MAZE_ID:
        kwargs["device"] = a.device
    return gym.make_vec(source["env_id"], num_envs=num_envs, max_episode_steps=a.episode_steps, **kwargs)


def train(a, venv: gym.vector.VectorEnv, seed: int) -> tuple[PPO, dict]:
    """PPO for --steps env steps on `venv`. Returns the model and its training statistics."""
    env = VecMonitor(SB3VecEnv(venv))
    policy_kwargs = {"features_extractor_class": SmallCNN} if a.cnn == "small" else {}
    # Atari-style PPO settings (rl-baselines3-zoo): short rollouts, 4 epochs, clip 0.1, entropy bonus
    model = PPO("CnnPolicy", env, n_steps=a.n_steps, batch_size=a.batch_size, n_epochs=a.n_epochs,
                learning_rate=a.learning_rate, clip_range=0.1, ent_coef=0.01, policy_kwargs=policy_kwargs,
                seed=seed, device=a.device, verbose=0)
    # PPO seeds env i with seed + i, so seeds 0 and 1 would share all but one stream of mazes;
    # spread the training seeds apart (evaluation seeds start at --eval-seed, far above these)
    model.env.seed(seed * venv.num_envs)
    start = time.perf_counter()
    model.learn(total_timesteps=a.steps)
    seconds = time.perf_counter() - start
    returns = [info["r"] for info in model.ep_info_buffer]  # the last (up to) 100 episodes
    env.close()
    return model, {"train_steps": int(model.num_timesteps), "train_seconds": round(seconds, 2),
                   "train_return": float(np.mean(returns)) if returns else None}


def evaluate(a, source: dict, act) -> list[float]:
    """Return of each of --eval-episodes episodes on the true env, episode i from seed
    --eval-seed + i; act(observations [E, S, S, 3]) -> actions [E]."""
    venv = make_real(a, source, a.eval_episodes)
    obs, _ = venv.reset(seed=a.eval_seed)
    returns = np.zeros(a.eval_episodes)
    running = np.ones(a.eval_episodes, dtype=bool)
    while running.any():  # every episode runs to its truncation (or termination), once
        obs, reward, terminated, truncated, _ = venv.step(act(obs))
        returns += np.where(running, reward, 0.0)
        running &= ~(terminated | truncated)
    venv.close()
    return returns.tolist()


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def table(results: dict) -> str:
    settings, real_id = results["settings"], results["source"]["env_id"]
    lines = [f"Return on the true env ({real_id}) over {settings['eval_episodes']} evaluation episodes of "
             f"{settings['episode_steps']} steps: mean ± std over training seeds {settings['seeds']}. Training "
             "return: the mean of the last 100 training episodes in the env the agent trained in (for "
             "imagination, the return the world model predicted).",
             "",
             f"| agent | trained in | env steps | return on {real_id} | per seed | training return |",
             "|---|---|---:|---:|---|---:|"]
    trained_in = {"ppo_imagination": "LSSVWM-v0", "ppo_real": real_id, "random": "-"}
    for key, name in AGENTS.items():
        runs = results["agents"][key]
        mean, std = mean_std([r["return"] for r in runs])
        per_seed = ", ".join(f"{r['return']:.2f}" for r in runs)
        steps = f"{runs[0]['train_steps']:,}" if "train_steps" in runs[0] else "-"
        seen = [r["train_return"] for r in runs if r.get("train_return") is not None]
        seen = f"{np.mean(seen):.2f}" if seen else "-"
        lines.append(f"| {name} | {trained_in[key]} | {steps} | {mean:.2f} ± {std:.2f} | {per_seed} | {seen} |")
    return "\n".join(lines)


def save(results: dict, out: Path) -> str:
    """Write results.json and results.md (the table and the command); returns the table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    markdown = table(results)
    (out / "results.md").write_text(f"{markdown}\n\nCommand: `{results['command']}`\n")
    return markdown


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="world model: path or shipped name (default: maze)")
    p.add_argument("--steps", type=int, default=98_304, help="env steps of PPO training, per agent and seed")
    p.add_argument("--num-envs", type=int, default=256, help="parallel envs in training (one batch for the world model)")
    p.add_argument("--seeds", default="0,1,2", help="training seeds, comma-separated")
    p.add_argument("--episode-steps", type=int, default=200, help="truncation: steps per episode, training and evaluation")
    p.add_argument("--eval-episodes", type=int, default=128, help="evaluation episodes on the true maze per agent and seed")
    p.add_argument("--eval-seed", type=int, default=1_000_000, help="evaluation episode i resets with seed eval_seed + i")
    p.add_argument("--device", default="auto", help="world model, true maze and policy: auto, cpu, cuda, ...")
    p.add_argument("--sampling-steps", type=int, default=None, help="world model sampler steps (default: the checkpoint's)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="world model matmul precision")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the world model's steps: ~1.3x on a GPU at 256 envs, after minutes of compiling")
    p.add_argument("--cnn", default="nature", choices=["nature", "small"],
                   help=f"features extractor: SB3's NatureCNN (frames >= {NATURE_CNN_MIN_SIZE}) or a small CNN for tiny frames")
    p.add_argument("--n-steps", type=int, default=32,
                   help="PPO rollout length per env: short, so that many envs still leave many updates")
    p.add_argument("--batch-size", type=int, default=1024, help="PPO minibatch size")
    p.add_argument("--n-epochs", type=int, default=4, help="PPO epochs per rollout")
    p.add_argument("--learning-rate", type=float, default=2.5e-4)
    p.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=False,
                   help="evaluate PPO with its most likely action instead of sampling (a greedy policy "
                        "can stall against a wall forever)")
    p.add_argument("--out", default="rl_in_imagination", help="directory for results.json and results.md")
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    command = "python examples/rl_in_imagination.py " + shlex.join(sys.argv[1:] if argv is None else argv)

    checkpoint = resolve(a.checkpoint)
    config = load_config(checkpoint)
    source = config["source"]
    spaces = []
    for probe in (make_imagination(a, 1), make_real(a, source, 1)):
        spaces.append((probe.single_observation_space, probe.single_action_space))
        probe.close()
    if spaces[0] != spaces[1]:
        p.error(f"the world model's spaces {spaces[0]} differ from its source env's {spaces[1]}: "
                "a policy could not move from one to the other")
    if a.cnn == "nature" and min(spaces[0][0].shape[:2]) < NATURE_CNN_MIN_SIZE:
        p.error(f"frames of {spaces[0][0].shape} are too small for NatureCNN: pass --cnn small")

    results = {"command": command, "settings": {**vars(a), "seeds": seeds}, "checkpoint": str(checkpoint),
               "source": source, "eval_seeds": [a.eval_seed + i for i in range(a.eval_episodes)],
               "agents": {key: [] for key in AGENTS}}
    training_envs = {"ppo_imagination": lambda: make_imagination(a, a.num_envs),
                     "ppo_real": lambda: make_real(a, source, a.num_envs)}
    for seed in seeds:
        for key, make in training_envs.items():
            model, stats = train(a, make(), seed)
            episodes = evaluate(a, source, lambda obs: model.predict(obs, deterministic=a.deterministic)[0])
            results["agents"][key].append({"seed": seed, "return": float(np.mean(episodes)),
                                           "episode_returns": episodes, **stats})
            print(f"seed {seed} {AGENTS[key]}: {stats['train_steps']} steps in {stats['train_seconds']:.0f} s "
                  f"({stats['train_steps'] / stats['train_seconds']:.0f} steps/s), training return "
                  f"{stats['train_return']}, return on {source['env_id']} {np.mean(episodes):.3f}", flush=True)
        space = spaces[0][1]  # the random policy: uniform actions, seeded by the training seed
        space.seed(seed)
        episodes = evaluate(a, source, lambda obs: np.stack([space.sample() for _ in obs]))
        results["agents"]["random"].append({"seed": seed, "return": float(np.mean(episodes)), "episode_returns": episodes})
        print(f"seed {seed} {AGENTS['random']}: return on {source['env_id']} {np.mean(episodes):.3f}", flush=True)
        markdown = save(results, Path(a.out))  # after every seed: a run cut short keeps the seeds it finished

    print(markdown)
    print(f"\ncommand: {command}\nresults in {a.out}/results.json and results.md")
    return results


if __name__ == "__main__":
    main()
