"""What the batched vector envs (LSSVWM-v0's and the maze's) share: how a reset's seeds and mask
are read, and the episode bookkeeping of Gymnasium's NEXT_STEP autoreset mode."""

from __future__ import annotations

from typing import Callable

import numpy as np


def split_seeds(seed: int | list[int | None] | None, num_envs: int) -> list[int | None]:
    """reset(seed=...) per env: an int s gives env i the seed s + i (as SyncVectorEnv), a list
    gives one per env (None keeps that env's generator), None keeps them all."""
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + i for i in range(num_envs)]
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"reset got {len(seeds)} seeds for {num_envs} envs")
    return seeds


def check_reset_mask(mask, num_envs: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != (num_envs,) or not mask.any():
        raise ValueError(f"options['reset_mask'] must be a bool array of shape ({num_envs},) with at "
                         f"least one True, got {mask.dtype} {mask.shape}")
    return mask


class Episodes:
    """Steps per env and which envs ended last step. NEXT_STEP autoreset: the step after an env's
    episode ends ignores its action and returns the first frame of the next episode, with reward 0
    and terminated = truncated = False."""

    def __init__(self, num_envs: int, max_episode_steps: int | None):
        self.max_episode_steps = max_episode_steps
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.ended = np.zeros(num_envs, dtype=np.bool_)

    def start(self, index) -> None:
        self.steps[index] = 0
        self.ended[index] = False

    def finish_step(self, reward: np.ndarray, terminated: np.ndarray,
                    restart: Callable[[np.ndarray], object]) -> np.ndarray:
        """After every env stepped: restart (through `restart(index)`, which must call `start`) the
        envs that had ended, zero their reward and flags in place, and return `truncated`."""
        self.steps += 1
        truncated = (np.zeros_like(self.ended) if self.max_episode_steps is None
                     else self.steps >= self.max_episode_steps)
        index = np.flatnonzero(self.ended)
        if index.size:
            restart(index)  # the frame just made for them, from an ignored action, is replaced
            reward[index] = 0.0
            terminated[index] = False
            truncated[index] = False
        self.ended = terminated | truncated
        return truncated
