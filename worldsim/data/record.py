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
from PIL import Image
from tqdm import tqdm

from worldsim.data.shards import ShardWriter
from worldsim.maze.core import MazeWorld
from worldsim.maze.policies import ExplorePolicy, PersistentRandomPolicy


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
    except (ValueError, gym.error.Error) as e:
        print(f"worldsim record: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} shard files to {args.out}")
    return 0


def record(env_id: str, episodes: int, steps: int, out, *, policy: str = "random", size: int = 64,
           seed: int = 0, progress: bool = True) -> list:
    """Record `episodes` episodes of at most `steps` steps into shards in `out`; returns the files."""
    if episodes < 1 or steps < 1 or size < 8:
        raise ValueError(f"need episodes >= 1, steps >= 1, size >= 8; got {episodes}, {steps}, {size}")
    import worldsim  # noqa: F401  registers the worldsim ids before gym.make

    env = _make(env_id, steps)
    use_observation = _is_image_space(env.observation_space)
    if not use_observation and env.render_mode != "rgb_array":
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
                frames.append(to_frame(observation if use_observation else env.render(), size))
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


def _make(env_id: str, steps: int) -> gym.Env:
    """gym.make with render_mode="rgb_array", or without a render mode for envs that take none."""
    try:
        return gym.make(env_id, render_mode="rgb_array", max_episode_steps=steps)
    except TypeError:  # the env's constructor has no render_mode argument
        return gym.make(env_id, max_episode_steps=steps)


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


def _is_image_space(space) -> bool:
    shape = getattr(space, "shape", None) or ()
    return (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and
            (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))))


def to_frame(image, size: int) -> np.ndarray:
    """An RGB(A)/grey uint8 image as uint8 [size, size, 3]."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected a uint8 image [H, W], [H, W, 1|3|4], got {image.dtype} {image.shape}")
    if image.ndim == 2:
        image = image[..., None]
    image = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]
    if image.shape[:2] != (size, size):
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    return np.ascontiguousarray(image)
