"""A fixed, tiny set of trajectories for trainer tests: independent of the maze renderer."""

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from worldsim.config import ModelConfig


class FixedSource:
    """Windows cut from a few fixed synthetic trajectories: a bright square moved by the actions."""

    def __init__(self, episodes=4, length=24, size=16, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.size = size
        self.actions = torch.randint(0, 6, (episodes, length), generator=g)
        pos = torch.randint(2, size - 6, (episodes, 2), generator=g)
        moves = torch.tensor([[0, 0], [0, 1], [1, 0], [-1, 0], [1, 1], [-1, 1]])
        frames = torch.zeros(episodes, length, size, size, 3, dtype=torch.uint8)
        for t in range(length):
            for e in range(episodes):
                y, x = pos[e].tolist()
                frames[e, t, y:y + 4, x:x + 4] = torch.tensor([220, 60 + 20 * e, 30])
            pos = (pos + moves[self.actions[:, t]]).clamp(0, size - 4)
        self.frames = frames
        self.rewards = (self.actions == 1).float()
        self.terminated = torch.zeros(episodes, length, dtype=torch.bool)
        self.g = torch.Generator().manual_seed(seed + 1)

    def next(self, window, batch):
        E, L = self.actions.shape
        ep = torch.randint(E, (batch,), generator=self.g)
        st = torch.randint(L - window + 1, (batch,), generator=self.g)
        cut = lambda x: torch.stack([x[e, s:s + window] for e, s in zip(ep.tolist(), st.tolist())])
        return SimpleNamespace(frames=cut(self.frames), actions=cut(self.actions), rewards=cut(self.rewards),
                               terminated=cut(self.terminated), first=st == 0)

    def restart(self, step):
        self.g.manual_seed(1000 + step)

    def describe(self):
        return {"env_id": "synthetic-squares", "env_kwargs": {}, "action_space": {"type": "Discrete", "n": 6, "start": 0},
                "render_fps": 15}

    def adapt_model_config(self, cfg: ModelConfig) -> ModelConfig:
        return dataclasses.replace(cfg, image_size=self.size, num_actions=6)


@pytest.fixture
def fixed_source():
    return FixedSource()
