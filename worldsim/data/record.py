"""`worldsim record`: run any Gymnasium env with pixels and save its trajectories as shards.

    worldsim record --env CartPole-v1 --episodes 20 --steps 500 --out data/cartpole
    worldsim record --env worldsim/Maze-v0 --episodes 10 --steps 2000 --out data/maze --policy explore

Frames: the observation when it is an image (uint8 [H, W, 3], [H, W, 1] or [H, W]), otherwise
`env.render()` of an env made with render_mode="rgb_array". They are resized to size x size with
PIL (bilinear with antialiasing; stretched, not cropped). Actions: Discrete or Box spaces.
Policies: `random` holds random actions for a few steps (any env); `explore` is the maze's
travel-and-return explorer for worldsim/Maze-v0 and falls back to `random` elsewhere.

An episode ends when the env terminates or truncates, or after --steps steps (also passed to
gym.make as max_episode_steps, so a registered time limit doesn't cut it shorter). The first reset
uses --seed, the later ones continue the env's RNG, so a command line always records the same data.
The shard format is documented in worldsim/data/shards.py.
"""

import sys

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from worldsim.data.shards import ShardWriter
from worldsim.maze.core import MazeWorld
from worldsim.maze.policies import ExplorePolicy, PersistentRandomPolicy
from worldsim.sources import env_frame, is_image_space, make_env


def add_arguments(parser):
    parser.add_argument("--env", required=True, help="Gymnasium id, e.g. CartPole-v1 or worldsim/Maze-v0")
    parser.add_argument("--episodes", type=int, required=True, help="number of episodes")
    parser.add_argument("--steps", type=int, required=True, help="at most this many steps per episode")
    parser.add_argument("--out", required=True, help="shard directory (created; new episodes are appended)")
    parser.add_argument("--policy", choices=("random", "explore"), default="random",
                        help="random: held random actions; explore: the maze explorer (maze only)")
    parser.add_argument("--size", type=int, default=64, help="frames are resized to size x size (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first reset and of the policy")


def run(args) -> int:
    try:
        paths = record(args.env, args.episodes, args.steps, args.out, policy=args.policy, size=args.size, seed=args.seed)
    except gym.error.Error as e:  # an unknown env id or the like: bad input like any other
        raise ValueError(str(e)) from None
    print(f"wrote {len(paths)} shard files to {args.out}")
    return 0


def record(env_id: str, episodes: int, steps: int, out, *, policy: str = "random", size: int = 64,
           seed: int = 0, progress: bool = True) -> list:
    """Record `episodes` episodes of at most `steps` steps into shards in `out`; returns the files."""
    if episodes < 1 or steps < 1 or size < 8:
        raise ValueError(f"need episodes >= 1, steps >= 1, size >= 8; got {episodes}, {steps}, {size}")
    import worldsim  # noqa: F401  registers the worldsim ids before gym.make

    env = make_env(env_id, max_episode_steps=steps)  # a registered time limit must not cut episodes shorter
    if not is_image_space(env.observation_space) and env.render_mode != "rgb_array":
        raise ValueError(f"{env_id} has neither image observations nor an rgb_array render mode")
    act, reset_policy = _policy(env, policy, seed)
    paths = []
    with ShardWriter(out, env_id=env_id, action_space=env.action_space, frame_size=size) as writer, \
            tqdm(total=episodes * steps, unit="step", desc=f"record {env_id}", disable=not progress) as bar:
        for episode in range(episodes):
            observation, _ = env.reset(seed=seed if episode == 0 else None)
            reset_policy()
            frames, actions, rewards, terminated = [], [], [], []
            for _ in range(steps):
                frames.append(env_frame(env, observation, size))
                action = act()
                observation, reward, term, trunc, _ = env.step(action)
                actions.append(action)
                rewards.append(reward)
                terminated.append(term)
                bar.update()
                if term or trunc:
                    break
            bar.total -= steps - len(frames)  # the episode ended early
            bar.refresh()
            paths += writer.write_episode(np.stack(frames), np.asarray(actions), rewards, terminated)
    env.close()
    return paths


def _policy(env: gym.Env, name: str, seed: int):
    """(act() -> action, reset()) for the policy `name` on this env."""
    world = getattr(env.unwrapped, "world", None)
    if name == "explore" and isinstance(world, MazeWorld):
        explorer = ExplorePolicy(world)
        return (lambda: int(explorer.act()[0])), explorer.reset
    if name == "explore":
        print(f"worldsim record: the explore policy needs the maze; using random for {env.spec.id}", file=sys.stderr)
    random = PersistentRandomPolicy(env.action_space, seed=seed)
    return (lambda: random.act()[0]), random.reset
