"""worldsim/Maze-v0 vectorised: N mazes stepped and rendered as one batch by one `MazeWorld`.

    envs = gym.make_vec("worldsim/Maze-v0", num_envs=256, device="cuda")  # vector_entry_point is the default mode
    obs, info = envs.reset(seed=0)                    # env i starts like MazeEnv reset(seed=0 + i)
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())

Why: `MazeEnv` renders one maze per call, so a SyncVectorEnv of N envs pays the raycaster's
per-call cost (a few hundred small torch ops, ~1-4 ms on a CPU) N times per step; one MazeWorld
of N mazes pays it once, on the CPU or the GPU (BENCHMARKS.md: 168,688 frames/s at N = 1024 on
an H100). RL on the true maze (examples/rl_in_imagination.py) needs that speed.

Env i reset with seed s + i gives the frames, rewards and infos of a `MazeEnv` reset with seed
s + i: each env draws its maze seeds from its own generator exactly as MazeEnv does, and a maze's
frames do not depend on the batch it runs in (worldsim/maze/core.py).

Autoreset: `AutoresetMode.NEXT_STEP`, as SyncVectorEnv and LSSVWM-v0's vector env: the step after
env i ends ignores its action and returns the first frame of its next episode, with reward 0 and
terminated = truncated = False. `reset(options={"reset_mask": bool [N]})` restarts only the masked
envs. Mazes never terminate; truncation comes after `max_episode_steps` steps per env (1000
through `gym.make_vec`, which passes the registered value; None when the class is built directly).

Info: MazeEnv's keys as arrays over the envs, each with its `_key` mask: `target` [N],
`target_colour` [N, 3], `position` [N, 2], `heading` [N], `maze_seed` [N].
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.batched import Episodes, check_reset_mask, split_seeds
from worldsim.maze.core import N_ACTIONS, TRAIN_SEED_LIMIT, MazeWorld
from worldsim.simulator import pick_device


class MazeVectorEnv(VectorEnv):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 15, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, maze_size: int = 9, image_size: int = 64,
                 device: str = "cpu", max_episode_steps: int | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.world = MazeWorld(num_envs, maze_size=maze_size, image_size=image_size, device=pick_device(device))
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.max_episode_steps = max_episode_steps
        self.single_observation_space = spaces.Box(0, 255, (image_size, image_size, 3), dtype=np.uint8)
        self.single_action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        self._obs: np.ndarray | None = None
        self.episodes = Episodes(num_envs, max_episode_steps)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """seed: an int s (env i gets s + i, as SyncVectorEnv), a list of N seeds (None entries
        keep that env's generator), or None. options: "reset_mask" (bool [N]: reset only those envs)."""
        seeds = split_seeds(seed, self.num_envs)
        options = dict(options or {})
        if set(options) - {"reset_mask"}:
            raise ValueError(f"unknown reset options {sorted(set(options) - {'reset_mask'})}; "
                             "worldsim/Maze-v0 takes 'reset_mask'")
        mask = check_reset_mask(options.get("reset_mask", np.ones(self.num_envs, dtype=np.bool_)), self.num_envs)
        if self._obs is None and not mask.all():
            raise RuntimeError("reset() all envs once before resetting some with options['reset_mask']")
        self._restart(np.flatnonzero(mask), seeds)
        return self._obs.copy(), self._info(mask)

    def _restart(self, index: np.ndarray, seeds: list) -> None:
        """New episodes in envs `index`, as MazeEnv.reset: a maze seed drawn from the env's generator
        (made from its seed when given one, or on the first reset)."""
        for i in index:
            if seeds[i] is not None or self._rngs[i] is None:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
        maze_seeds = [int(self._rngs[i].integers(TRAIN_SEED_LIMIT)) for i in index]
        self._obs = self.world.reset(seeds=maze_seeds, indices=index.tolist()).cpu().numpy()
        self.episodes.start(index)

    def step(self, actions):
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        # MazeWorld checks the actions (shape, integer dtype, range) and names a bad one
        frames, reward, terminated = self.world.step(torch.as_tensor(np.asarray(actions)))
        self._obs = frames.cpu().numpy()
        reward, terminated = reward.cpu().numpy().astype(np.float64), terminated.cpu().numpy()
        truncated = self.episodes.finish_step(reward, terminated,
                                              lambda index: self._restart(index, [None] * self.num_envs))
        return self._obs.copy(), reward, terminated, truncated, self._info(np.ones(self.num_envs, np.bool_))

    def _info(self, mask: np.ndarray) -> dict:
        w = self.world
        info = {"target": w.target.cpu().numpy(), "target_colour": w.target_colour().cpu().numpy(),
                "position": w.position.cpu().numpy(), "heading": w.heading_radians().cpu().numpy(),
                "maze_seed": w.seed.cpu().numpy()}
        return {**info, **{f"_{k}": mask.copy() for k in info}}

    def render(self):
        if self.render_mode is None or self._obs is None:
            return None
        return tuple(self._obs.copy())
