"""Training data sources: the built-in maze generated on the training device, or recorded shards.

A source hands out `TrajectoryBatch` windows of a requested length (the length grows during
training: gradual context extension), describes where its frames come from (written into
checkpoints, so the env can start episodes from the same source) and adapts the model config
to its action space and frame size.
"""

from __future__ import annotations

import dataclasses

import torch

from worldsim.config import ModelConfig
from worldsim.data.generator import MazeWindowGenerator, TrajectoryBatch
from worldsim.data.shards import ShardWindowDataset

MAZE_ENV_ID = "worldsim/Maze-v0"


class MazeSource:
    def __init__(self, batch_size: int, device, seed: int, maze_size: int, image_size: int, episode_length: int):
        self.kwargs = dict(batch_size=batch_size, device=device, maze_size=maze_size, image_size=image_size,
                           episode_length=episode_length)
        self.seed, self.image_size, self.maze_size = seed, image_size, maze_size
        self.generator = None
        self.restart(0)

    def restart(self, step: int) -> None:
        self.generator = MazeWindowGenerator(window=1, seed=self.seed + 1_000_003 * step, **self.kwargs)

    def next(self, window: int) -> TrajectoryBatch:
        return self.generator.next_window(window)

    def describe(self) -> dict:
        return {"env_id": MAZE_ENV_ID, "env_kwargs": {"maze_size": self.maze_size, "image_size": self.image_size},
                "action_space": {"type": "discrete", "n": 6}, "render_fps": 15}

    def adapt_model_config(self, cfg: ModelConfig) -> ModelConfig:
        return dataclasses.replace(cfg, action_type="discrete", num_actions=6)


class ShardSource:
    """Random windows from a directory of shards (see worldsim.data.shards)."""

    def __init__(self, directory: str, batch_size: int, seed: int):
        self.directory, self.batch_size, self.seed = directory, batch_size, seed
        self.datasets: dict[int, ShardWindowDataset] = {}
        self.generator = torch.Generator()
        self.restart(0)
        self.meta = self.dataset(1).metadata

    def dataset(self, window: int) -> ShardWindowDataset:
        if window not in self.datasets:
            self.datasets[window] = ShardWindowDataset(self.directory, window)
        return self.datasets[window]

    def restart(self, step: int) -> None:
        self.generator.manual_seed(self.seed + 1_000_003 * step)

    def next(self, window: int) -> TrajectoryBatch:
        ds = self.dataset(window)
        idx = torch.randint(len(ds), (self.batch_size,), generator=self.generator).tolist()
        items = [ds[i] for i in idx]
        return TrajectoryBatch(**{f.name: torch.stack([torch.as_tensor(getattr(it, f.name)) for it in items])
                                  for f in dataclasses.fields(TrajectoryBatch)})

    def describe(self) -> dict:
        return {"env_id": self.meta["env_id"], "env_kwargs": self.meta.get("env_kwargs", {}),
                "action_space": self.meta["action_space"], "render_fps": self.meta.get("render_fps", 15)}

    def adapt_model_config(self, cfg: ModelConfig) -> ModelConfig:
        space = self.meta["action_space"]
        size = int(self.meta["frame_size"][0])
        if space["type"] == "discrete":
            return dataclasses.replace(cfg, image_size=size, action_type="discrete", num_actions=int(space["n"]))
        dim = int(torch.tensor(space["shape"]).prod())
        return dataclasses.replace(cfg, image_size=size, action_type="continuous", action_dim=dim)


def make_source(cfg, device, rank: int = 0):
    seed = cfg.seed * 1009 + rank
    if cfg.data == "maze":
        return MazeSource(cfg.batch_size, device, seed, cfg.maze_size, cfg.model.image_size, cfg.episode_length)
    return ShardSource(cfg.data, cfg.batch_size, seed)
