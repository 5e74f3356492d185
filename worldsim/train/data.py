"""Training data sources: the built-in maze generated on the training device (optionally mixed with
maze plans, e.g. cue recall trajectories), or recorded shards.

A source hands out `TrajectoryBatch` windows of a requested length (the length grows during
training: gradual context extension), describes where its frames come from (written into
checkpoints, so the env can start episodes from the same source) and adapts the model config
to its action space and frame size.
"""

from __future__ import annotations

import dataclasses
import math

import gymnasium
import torch

from worldsim.config import ModelConfig
from worldsim.data.batch import TrajectoryBatch, collate_windows, concat_batches
from worldsim.data.generator import MazeWindowGenerator
from worldsim.data.plans import load_plans, replay
from worldsim.data.shards import ShardWindowDataset, describe_action_space
from worldsim.maze.core import N_ACTIONS

MAZE_ENV_ID = "worldsim/Maze-v0"


class MazeSource:
    """Windows from a pool of `pool_size` mazes stepped in lockstep; consecutive batches take
    consecutive slices of the pool, so a batch's windows are not the previous batch's episodes
    continued (which would correlate successive gradient steps)."""

    def __init__(self, max_batch: int, device, seed: int, maze_size: int, image_size: int, episode_length: int,
                 pool_size: int = 256):
        self.kwargs = dict(batch_size=max(pool_size, max_batch), device=device, maze_size=maze_size,
                           image_size=image_size, episode_length=episode_length)
        self.seed, self.image_size, self.maze_size = seed, image_size, maze_size
        self.restart(0)

    def restart(self, step: int) -> None:
        self.generator = MazeWindowGenerator(window=1, seed=self.seed + 1_000_003 * step, **self.kwargs)
        self.pool, self.cursor = None, 0

    def next(self, window: int, batch: int) -> TrajectoryBatch:
        B = batch
        if self.pool is None or self.pool.frames.shape[1] != window or self.cursor + B > self.pool.frames.shape[0]:
            self.pool = None  # freed before the next is rendered: one pool in memory, not two
            self.pool, self.cursor = self.generator.next_window(window), 0
        part = TrajectoryBatch(**{f.name: getattr(self.pool, f.name)[self.cursor:self.cursor + B]
                                  for f in dataclasses.fields(TrajectoryBatch)})
        self.cursor += B
        return part

    def describe(self) -> dict:
        return {"env_id": MAZE_ENV_ID, "env_kwargs": {"maze_size": self.maze_size, "image_size": self.image_size},
                "action_space": describe_action_space(gymnasium.spaces.Discrete(N_ACTIONS)), "render_fps": 15}

    def adapt_model_config(self, cfg: ModelConfig) -> ModelConfig:
        return dataclasses.replace(cfg, action_type="discrete", num_actions=N_ACTIONS)


class PlanSource:
    """Windows cut at random offsets from maze plans (worldsim.data.plans), rendered on the training
    device `pool_size` plans at a time; each plan of a pool gives one window."""

    def __init__(self, path: str, device, seed: int, pool_size: int = 64):
        self.path, self.plans, self.device, self.pool_size, self.seed = path, load_plans(path), device, pool_size, seed
        self.generator = torch.Generator()
        self.restart(0)

    def restart(self, step: int) -> None:
        self.generator.manual_seed(self.seed + 1_000_003 * step)
        self.pool, self.cursor = None, 0

    def next(self, window: int, batch: int) -> TrajectoryBatch:
        L = self.plans.length
        if window > L:
            raise ValueError(f"training window {window} is longer than the plans' {L} frames")
        parts = []
        while batch:
            if self.pool is None or self.cursor == self.pool.frames.shape[0]:
                self.pool = None  # one pool in memory, not two
                n = min(self.pool_size, len(self.plans))
                indices = torch.randperm(len(self.plans), generator=self.generator)[:n].tolist()
                self.pool, self.cursor = replay(self.plans, indices, self.device)[0], 0
            pool, take = self.pool, min(batch, self.pool.frames.shape[0] - self.cursor)
            starts = torch.randint(L - window + 1, (take,), generator=self.generator).tolist()
            cut = lambda x: torch.stack([x[self.cursor + i, s:s + window] for i, s in enumerate(starts)])
            parts.append(TrajectoryBatch(cut(pool.frames), cut(pool.actions), cut(pool.rewards), cut(pool.terminated),
                                         torch.tensor([s == 0 for s in starts], device=pool.first.device)))
            self.cursor += take
            batch -= take
        return concat_batches(parts)


class MixedSource:
    """A batch's windows drawn from `plans` with probability `fraction` each, the rest from `base`."""

    def __init__(self, base, plans: PlanSource, fraction: float, seed: int):
        self.base, self.plans, self.fraction, self.seed = base, plans, fraction, seed
        self.generator = torch.Generator()
        self.restart(0)

    def restart(self, step: int) -> None:
        self.generator.manual_seed(self.seed + 1_000_003 * step)
        self.base.restart(step)
        self.plans.restart(step)

    def next(self, window: int, batch: int) -> TrajectoryBatch:
        n = int((torch.rand(batch, generator=self.generator) < self.fraction).sum())
        parts = ([self.plans.next(window, n)] if n else []) + ([self.base.next(window, batch - n)] if n < batch else [])
        return concat_batches(parts)

    def describe(self) -> dict:
        return {**self.base.describe(), "plans": str(self.plans.path), "plans_fraction": self.fraction}

    def adapt_model_config(self, cfg: ModelConfig) -> ModelConfig:
        return self.base.adapt_model_config(cfg)


class ShardSource:
    """Random windows from a directory of shards (see worldsim.data.shards)."""

    def __init__(self, directory: str, seed: int):
        self.directory, self.seed = directory, seed
        self.datasets: dict[int, ShardWindowDataset] = {}
        self.generator = torch.Generator()
        self.restart(0)
        self.info = self.dataset(1).episodes[0][0]  # ShardInfo: env id, frame size, action space (checked alike)

    def dataset(self, window: int) -> ShardWindowDataset:
        if window not in self.datasets:
            self.datasets[window] = ShardWindowDataset(self.directory, window)
        return self.datasets[window]

    def restart(self, step: int) -> None:
        self.generator.manual_seed(self.seed + 1_000_003 * step)

    def next(self, window: int, batch: int) -> TrajectoryBatch:
        ds = self.dataset(window)
        idx = torch.randint(len(ds), (batch,), generator=self.generator).tolist()
        return collate_windows([ds[i] for i in idx])

    def describe(self) -> dict:
        return {"env_id": self.info.env_id, "env_kwargs": {}, "action_space": self.info.action_space,
                "render_fps": 15, "data": str(self.directory)}

    def adapt_model_config(self, cfg: ModelConfig) -> ModelConfig:
        space, size = self.info.action_space, self.info.frame_size
        if space["type"] == "Discrete":
            return dataclasses.replace(cfg, image_size=size, action_type="discrete", num_actions=int(space["n"]))
        return dataclasses.replace(cfg, image_size=size, action_type="continuous", action_dim=math.prod(space["shape"]))


def make_source(cfg, device, rank: int = 0):
    seed = cfg.seed * 1009 + rank
    if cfg.data != "maze":
        return ShardSource(cfg.data, seed)
    maze = MazeSource(cfg.max_batch(), device, seed, cfg.maze_size, cfg.model.image_size, cfg.episode_length,
                      cfg.maze_pool)
    if not cfg.plans:
        return maze
    plans = PlanSource(cfg.plans, device, seed)
    if (plans.plans.maze_size, plans.plans.image_size) != (cfg.maze_size, cfg.model.image_size):
        raise ValueError(f"{cfg.plans}: plans of {plans.plans.maze_size}x{plans.plans.maze_size} mazes at "
                         f"{plans.plans.image_size} px, but training uses maze_size {cfg.maze_size} at "
                         f"{cfg.model.image_size} px")
    return MixedSource(maze, plans, cfg.plans_fraction, seed)
