"""Training data on the fly: windows of T frames from B mazes stepped in parallel on one device.

Alignment convention (Gym's, used everywhere in worldsim): `actions[:, t]` is the action taken
after observing `frames[:, t]`; `rewards[:, t]` and `terminated[:, t]` are what that step
returned; so `frames[:, t + 1]` results from `actions[:, t]`.

Episodes continue across windows: the first frame of a window is the observation that followed
the previous window's last action, so consecutive windows tile the episode without gaps or
repeats. A new episode starts only at a window boundary: when fewer than T steps of the current
episode remain, the next window starts a new episode (its `first` is True, telling the trainer to
reset carried state), so a window never straddles two episodes. The B mazes run in lockstep, so
they start episodes together. T may change from call to call (gradual context extension).

Episode seeds are drawn from a Generator seeded with `seed`, in the training range
[0, TRAIN_SEED_LIMIT): evaluation episodes (worldsim.maze.episodes) never occur in training.
"""

import gymnasium
import numpy as np
import torch

from worldsim.data.batch import TrajectoryBatch
from worldsim.maze.core import N_ACTIONS, TRAIN_SEED_LIMIT, MazeWorld
from worldsim.maze.policies import ExplorePolicy, PersistentRandomPolicy

POLICIES = ("explore", "random")


class MazeWindowGenerator:
    """Endless windows of maze trajectories: `next_window(T)` -> TrajectoryBatch on `device`."""

    def __init__(self, batch_size: int, window: int, device="cpu", seed: int = 0, *, maze_size: int = 9,
                 image_size: int = 64, policy: str = "explore", episode_length: int = 2000):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if not 1 <= window <= episode_length:
            raise ValueError(f"need 1 <= window <= episode_length, got window={window}, episode_length={episode_length}")
        self.window, self.episode_length = window, episode_length
        self.world = MazeWorld(batch_size, maze_size, image_size, device, seed=seed)
        self.episode_seeds = np.random.default_rng(seed)
        if policy == "explore":
            self.policy = ExplorePolicy(self.world)
        else:
            self.policy = PersistentRandomPolicy(gymnasium.spaces.Discrete(N_ACTIONS), batch_size, seed=seed)
        self.steps_done = episode_length  # steps taken in the current episode; forces a reset first
        self.observation = None  # uint8 [B, H, W, 3], the frame the next window starts from

    def _act(self) -> torch.Tensor:
        action = self.policy.act()
        return action if isinstance(action, torch.Tensor) else torch.from_numpy(action).to(self.world.device)

    @torch.no_grad()
    def next_window(self, window: int | None = None) -> TrajectoryBatch:
        """The next T = window (default: the constructor's) steps of every maze."""
        T = self.window if window is None else window
        if not 1 <= T <= self.episode_length:
            raise ValueError(f"window must be in [1, episode_length={self.episode_length}], got {T}")
        B, H, dev = self.world.batch_size, self.world.image_size, self.world.device
        first = self.steps_done + T > self.episode_length
        if first:
            seeds = self.episode_seeds.integers(0, TRAIN_SEED_LIMIT, size=B).tolist()
            self.observation = self.world.reset(seeds=seeds)
            self.policy.reset()
            self.steps_done = 0
        frames = torch.empty(B, T, H, H, 3, dtype=torch.uint8, device=dev)
        actions = torch.empty(B, T, dtype=torch.int64, device=dev)
        rewards = torch.empty(B, T, dtype=torch.float32, device=dev)
        terminated = torch.empty(B, T, dtype=torch.bool, device=dev)
        for t in range(T):
            frames[:, t] = self.observation
            actions[:, t] = self._act()
            self.observation, rewards[:, t], terminated[:, t] = self.world.step(actions[:, t])
        self.steps_done += T
        return TrajectoryBatch(frames, actions, rewards, terminated, torch.full((B,), first, device=dev))
