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
from gymnasium import spaces
from PIL import Image

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


def make_env(env_id: str, **kwargs) -> gym.Env:
    """gym.make with render_mode="rgb_array" (frames of envs whose observations are not images),
    or without a render mode for envs that take none."""
    try:
        return gym.make(env_id, render_mode="rgb_array", **kwargs)
    except TypeError:  # the env's constructor has no render_mode argument
        return gym.make(env_id, **kwargs)


def is_image_space(space) -> bool:
    shape = getattr(space, "shape", None) or ()
    return (isinstance(space, spaces.Box) and space.dtype == np.uint8 and
            (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))))


def to_frame(image, size: int) -> np.ndarray:
    """An RGB(A)/grey uint8 image as uint8 [size, size, 3]: PIL bilinear with antialiasing,
    stretched, not cropped -- the one resize of recorded training frames and of starting frames."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected a uint8 image [H, W], [H, W, 1|3|4], got {image.dtype} {image.shape}")
    if image.ndim == 2:
        image = image[..., None]
    image = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]
    if image.shape[:2] != (size, size):
        image = np.array(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))  # writable
    return np.ascontiguousarray(image)


def env_frame(env: gym.Env, observation, size: int) -> np.ndarray:
    """The frame of an env's step: its observation when that is an image, else env.render()."""
    if is_image_space(env.observation_space):
        return to_frame(observation, size)
    if env.render_mode != "rgb_array":
        raise ValueError(f"{env.spec.id if env.spec else env} has neither image observations nor an rgb_array render mode")
    return to_frame(env.render(), size)


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
                self._env = make_env(self.env_id, **self.source.get("env_kwargs", {})).unwrapped
            except (gym.error.Error, ImportError) as e:
                raise ValueError(f"cannot make the checkpoint's source env {self.env_id!r} ({e}); pass the "
                                 "starting frames with reset(options={'frames': ...}) instead") from None
        return self._env

    def observation(self, obs) -> np.ndarray:
        """A source step's frame, model-sized uint8 [S, S, 3], made as `worldsim record` made the training frames."""
        return env_frame(self.env, obs, self.image_size)

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
