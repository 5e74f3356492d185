"""The ground-truth env a checkpoint simulates: its action space, starting frames and key map.

A checkpoint's config.json names its source under "source":

    {"env_id": "worldsim/Maze-v0", "env_kwargs": {"maze_size": 9}, "render_fps": 15,
     "action_space": {"type": "discrete", "n": 6}}       # or {"type": "box", "shape": [3], "low": .., "high": ..}

The envs start episodes from the source env's first observation (so `reset(seed=s)` of the world
model begins where `reset(seed=s)` of the real env begins), the viewer and `worldsim rollout` run
it beside the model (twin view), and the keyboard map comes from here.
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from worldsim.checkpoint import CheckpointError

MAZE_ID = "worldsim/Maze-v0"
SOURCE_SEED_LIMIT = 2**31  # seeds drawn for the source env: many envs take 32-bit seeds only


def action_space(config: dict) -> spaces.Space:
    """The action space of a checkpoint, from "source.action_space" (or, for a discrete model
    without one, the model's own number of actions)."""
    model = config["model"]
    spec = config.get("source", {}).get("action_space")
    where = f"{config.get('path', 'checkpoint')}/config.json"
    if spec is None:
        if model.get("action_type", "discrete") != "discrete":
            raise CheckpointError(f"{where}: a continuous-action model needs source.action_space (shape, low, high)")
        return spaces.Discrete(model.get("num_actions", 6))
    kind = str(spec.get("type")).lower()  # "discrete" / "box", or the gymnasium class names the trainer writes
    if kind == "discrete":
        if spec.get("start", 0) != 0:
            raise CheckpointError(f"{where}: source.action_space Discrete start={spec['start']}: only start=0 is supported")
        if spec.get("n") != model.get("num_actions", 6):
            raise CheckpointError(f"{where}: source.action_space has n={spec.get('n')} but the model "
                                  f"has num_actions={model.get('num_actions', 6)}")
        return spaces.Discrete(int(spec["n"]))
    if kind == "box":
        try:
            space = spaces.Box(np.asarray(spec["low"], np.float32), np.asarray(spec["high"], np.float32),
                               shape=tuple(spec["shape"]), dtype=np.float32)
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{where}: bad box source.action_space {spec} ({e})") from None
        if space.shape != (model.get("action_dim"),):
            raise CheckpointError(f"{where}: source.action_space shape {space.shape} does not match the "
                                  f"model's action_dim {model.get('action_dim')}")
        return space
    raise CheckpointError(f"{where}: source.action_space type must be 'discrete' or 'box', got {spec.get('type')!r}")


def check_action(space: spaces.Space, action) -> np.ndarray:
    """`action` as an array the simulator takes, or a ValueError that says what is wrong with it."""
    if isinstance(space, spaces.Discrete):
        a = np.asarray(action)
        if a.shape != () or a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"invalid action {action!r} ({type(action).__name__}): expected one integer "
                             f"in [0, {space.n}) for {space}")
        if not space.contains(a):
            raise ValueError(f"invalid action {action!r}: out of range for {space} (valid: 0 to {space.n - 1})")
        return a.astype(np.int64)
    try:
        a = np.asarray(action, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"invalid action {action!r} ({type(action).__name__}): expected a float array "
                         f"of shape {space.shape} for {space}") from None
    if a.shape != space.shape:
        raise ValueError(f"invalid action: shape {a.shape}, expected {space.shape} for {space}")
    if not space.contains(a):
        raise ValueError(f"invalid action {a.tolist()}: outside the bounds of {space} (or not finite)")
    return a


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 [..., H, W, 3] -> uint8 [..., size, size, 3] (area-averaged when shrinking)."""
    if frames.shape[-3:-1] == (size, size):
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames)).reshape(-1, *frames.shape[-3:]).movedim(-1, 1).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    out = x.round().clamp(0, 255).to(torch.uint8).movedim(1, -1).numpy()
    return out.reshape(*frames.shape[:-3], size, size, frames.shape[-1])


class SourceEnv:
    """The checkpoint's ground-truth env, made on first use (a checkpoint can be run from user
    frames without its source installed)."""

    def __init__(self, source: dict, image_size: int):
        self.source, self.image_size = source, image_size
        self._env: gym.Env | None = None

    @property
    def env_id(self) -> str | None:
        return self.source.get("env_id")

    @property
    def env(self) -> gym.Env:
        if self._env is None:
            if self.env_id is None:
                raise ValueError("the checkpoint names no source env (config.json source.env_id): pass the "
                                 "starting frames with reset(options={'frames': uint8 [T, H, W, 3]})")
            try:  # unwrapped: as a twin it runs as long as the model does (no TimeLimit)
                self._env = gym.make(self.env_id, **self.source.get("env_kwargs", {})).unwrapped
            except (gym.error.Error, ImportError) as e:
                raise ValueError(f"cannot make the checkpoint's source env {self.env_id!r} ({e}); pass the "
                                 "starting frames with reset(options={'frames': ...}) instead") from None
        return self._env

    def observation(self, obs) -> np.ndarray:
        """A source observation as a model-sized frame uint8 [S, S, 3]."""
        obs = np.asarray(obs)
        if obs.dtype != np.uint8 or obs.ndim != 3 or obs.shape[-1] != 3:
            raise ValueError(f"source env {self.env_id!r} observations are {obs.dtype} {obs.shape}, "
                             "not RGB frames uint8 [H, W, 3]")
        return resize_frames(obs, self.image_size)

    def reset(self, seed: int) -> np.ndarray:
        """The first frame of the source env's episode with this seed, model-sized."""
        obs, _ = self.env.reset(seed=int(seed))
        return self.observation(obs)

    def step(self, action) -> tuple[np.ndarray, float, bool, bool]:
        obs, reward, terminated, truncated, _ = self.env.step(action)
        return self.observation(obs), float(reward), bool(terminated), bool(truncated)

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


def keys_to_action(source: SourceEnv, action_space: spaces.Space) -> dict[tuple[int, ...], object]:
    """Key combinations (pygame key codes) -> action, in `gymnasium.utils.play.play`'s format."""
    if source.env_id == MAZE_ID:
        return maze_keys()
    if hasattr(source.env, "get_keys_to_action"):
        return source.env.get_keys_to_action()
    raise ValueError(f"no keyboard map for source env {source.env_id!r} ({action_space}): "
                     "it has no get_keys_to_action()")


def maze_keys() -> dict[tuple[int, ...], int]:
    """The Memory Maze action set on WASD or the arrows; q/e (or forward + a turn key) move
    forward while turning. No key held = noop (action 0)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    forward, left, right = (ord("w"), pygame.K_UP), (ord("a"), pygame.K_LEFT), (ord("d"), pygame.K_RIGHT)
    keys: dict[tuple[int, ...], int] = {(ord("q"),): 4, (ord("e"),): 5}
    for f in forward:
        keys[(f,)] = 1
        for turn, combined in ((left, 4), (right, 5)):
            for t in turn:
                keys[tuple(sorted((f, t)))] = combined
    for t in left:
        keys[(t,)] = 2
    for t in right:
        keys[(t,)] = 3
    return keys
