"""LSSVWM-v0 vectorised: N world-model envs generated as one batch by one simulator.

    envs = gym.make_vec("LSSVWM-v0", num_envs=64)        # vector_entry_point is the default mode
    obs, info = envs.reset(seed=0)                       # env i starts like LSSVWMEnv reset(seed=0 + i)
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())

All N envs share the model and step together: one batched denoising pass per sampler step, so
throughput grows with N until the device is busy. Env i with seed s + i and the same actions gives
the same frames as a single `LSSVWMEnv` reset with seed s + i (each env draws its episode seeds from
its own generator exactly as the single env does).

Autoreset: `AutoresetMode.NEXT_STEP`, Gymnasium's default (the mode of `SyncVectorEnv`, so code
written for `vectorization_mode="sync"` works unchanged). When env i ends (terminated or
truncated) at step t, step t + 1 ignores its action and returns the first frame of its next
episode, with reward 0 and terminated = truncated = False. Why this mode: the final frame is
returned as an ordinary observation, with no copy of it to stash in `info` (SAME_STEP's
"final_obs"). The restart goes through `Simulator.reset_indices`: only the envs that restart are
prefilled; the others' memory is untouched.

Truncation: after `max_episode_steps` steps per env (1000 through `gym.make_vec`, which passes the
registered value; None when the class is built directly = no limit).

Info: `frame_index` [N] with its `_frame_index` mask (the vector info convention); on reset also
`source_seed` [N] (-1 when started from `options["frames"]`). The batch's generation time is
`last_step_seconds` (an attribute, as in the single env: info stays deterministic).

`reset(options={"frames": uint8 [N, T, S, S, 3], "actions": [N, T - 1]})` starts every env from
given context frames; `reset(options={"reset_mask": bool [N]})` restarts only the masked envs (as
SyncVectorEnv). `get_state()` / `set_state()` snapshot the whole batch; `branch(state)` puts all N
envs in copies of one single env's snapshot (look-ahead planning, `examples/branching_planner.py`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.batched import Episodes, check_reset_mask, split_seeds
from envs.lssvwm import EnvState, check_context, draw_seeds, make_simulator
from worldsim.simulator import SimulatorState
from worldsim.sources import SourceEnv, action_space, check_action


@dataclass(frozen=True)
class VectorEnvState:
    """A snapshot of all N envs: simulator state, last observations, step counts, autoreset flags."""

    simulator: SimulatorState
    observations: np.ndarray
    episode_steps: np.ndarray
    autoreset: np.ndarray
    rngs: tuple[dict, ...]  # each env's np_random state: later autoresets draw the same seeds


class LSSVWMVectorEnv(VectorEnv):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 15, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, checkpoint: str | os.PathLike | None = None, device: str = "auto",
                 sampling_steps: int | None = None, dtype: str = "float32", context_noise: float | None = None,
                 commit_in_sampler: bool | None = None, cuda_graph: bool | None = None, compile: bool = False,
                 schedule_power: float | None = None, render_mode: str | None = None,
                 max_episode_steps: int | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.simulator, self.config = make_simulator(
            checkpoint, device, dtype, sampling_steps=sampling_steps, context_noise=context_noise,
            commit_in_sampler=commit_in_sampler, cuda_graph=cuda_graph, compile=compile, schedule_power=schedule_power)
        cfg = self.simulator.cfg
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.config.get("source", {}).get("render_fps", 15)}
        self.source = SourceEnv(self.config.get("source", {}), cfg.image_size)
        self.single_observation_space = spaces.Box(0, 255, (cfg.image_size, cfg.image_size, cfg.channels), np.uint8)
        self.single_action_space = action_space(self.config)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs: list[np.random.Generator] | None = None
        self._obs: np.ndarray | None = None
        self.episodes = Episodes(num_envs, max_episode_steps)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """seed: an int s (env i gets s + i, as SyncVectorEnv), a list of N seeds (None entries
        keep that env's generator), or None. options: "frames" / "actions" (all envs start from
        given context), or "reset_mask" (bool [N]: reset only those envs, from the source env)."""
        seeds = split_seeds(seed, self.num_envs)
        options = dict(options or {})
        unknown = set(options) - {"frames", "actions", "reset_mask"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; LSSVWM-v0 takes 'frames', 'actions', 'reset_mask'")
        if "actions" in options and "frames" not in options:
            raise ValueError("options['actions'] given without options['frames']")
        if "reset_mask" in options:
            return self._reset_some(options, seeds)
        # like single envs: a None seed keeps an env's generator (a fresh one on the first reset)
        self._rngs = [seeding.np_random(s)[0] if s is not None or self._rngs is None else self._rngs[i]
                      for i, s in enumerate(seeds)]
        from_source = "frames" not in options
        drawn = [draw_seeds(rng, s, from_source) for rng, s in zip(self._rngs, seeds)]
        if from_source:
            frames = torch.from_numpy(np.stack([self.source.reset(s) for s, _ in drawn]))[:, None]
            actions = None
        else:
            frames, actions = check_context(options["frames"], options.get("actions"),
                                            self.single_observation_space.shape[0], self.single_action_space,
                                            batch=self.num_envs)
        self._obs = self.simulator.reset(frames, actions, [n for _, n in drawn]).numpy().copy()
        self.episodes.start(slice(None))
        source_seeds = np.array([-1 if s is None else s for s, _ in drawn], dtype=np.int64)
        info = {"frame_index": self.simulator.frame_index.cpu().numpy(), "source_seed": source_seeds}
        return self._obs.copy(), self._with_masks(info, np.ones(self.num_envs, np.bool_))

    def _reset_some(self, options: dict, seeds: list):
        mask = check_reset_mask(options["reset_mask"], self.num_envs)
        if "frames" in options:
            raise ValueError("options['reset_mask'] restarts envs from the source env: it cannot take 'frames'")
        if self._obs is None:
            raise RuntimeError("reset() all envs once before resetting some with options['reset_mask']")
        index = np.flatnonzero(mask)
        source_seeds = np.full(self.num_envs, -1, dtype=np.int64)
        source_seeds[index] = self._restart(index, [seeds[i] for i in index])
        info = {"frame_index": self.simulator.frame_index.cpu().numpy(), "source_seed": source_seeds}
        return self._obs.copy(), self._with_masks(info, mask)

    def _restart(self, index: np.ndarray, seeds: list) -> list[int]:
        """Start new episodes from the source env in envs `index` (the others are untouched).
        Returns their source seeds."""
        for i, s in zip(index, seeds):
            if s is not None:
                self._rngs[i] = seeding.np_random(s)[0]
        drawn = [draw_seeds(self._rngs[i], s, from_source=True) for i, s in zip(index, seeds)]
        starts = np.stack([self.source.reset(s) for s, _ in drawn])
        self.simulator.reset_indices(index.tolist(), torch.from_numpy(starts)[:, None], None, [n for _, n in drawn])
        self._obs[index] = starts
        self.episodes.start(index)
        return [s for s, _ in drawn]

    def step(self, actions):
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        actions = self._check_actions(actions)
        frames, reward, terminated = self.simulator.step(torch.from_numpy(actions))
        # into the env's own buffer: no new 3 MB array (at 256 envs) to allocate and fault in each step
        np.copyto(self._obs, frames.numpy())
        reward, terminated = reward.numpy().astype(np.float64), terminated.numpy().copy()
        truncated = self.episodes.finish_step(reward, terminated,
                                              lambda index: self._restart(index, [None] * index.size))
        info = {"frame_index": self.simulator.frame_index.cpu().numpy()}
        return self._obs.copy(), reward, terminated, truncated, self._with_masks(info, np.ones(self.num_envs, np.bool_))

    def _check_actions(self, actions) -> np.ndarray:
        a = np.asarray(actions)
        want = (self.num_envs,) + self.single_action_space.shape
        if a.shape != want:
            raise ValueError(f"actions must have shape {want} (one per env) for {self.action_space}, got "
                             f"{a.shape} {a.dtype}")
        batch = self._valid_batch(a)
        if batch is not None:
            return batch
        checked = []  # one env at a time, to name the first invalid action
        for i, ai in enumerate(a):
            try:
                checked.append(check_action(self.single_action_space, ai))
            except ValueError as e:
                raise ValueError(f"env {i}: {e}") from None
        return np.stack(checked)

    def _valid_batch(self, a: np.ndarray) -> np.ndarray | None:
        """All N actions as the simulator takes them when every one is valid (one array check instead
        of N calls of `check_action`), else None."""
        if isinstance(self.single_action_space, spaces.Discrete):
            ok = a.dtype.kind in "iu" and self.action_space.contains(a)
            return a.astype(np.int64) if ok else None
        try:
            a = np.asarray(a, dtype=np.float32)
        except (TypeError, ValueError):
            return None
        return a if self.action_space.contains(a) else None

    @staticmethod
    def _with_masks(info: dict, mask: np.ndarray) -> dict:
        """Vector info convention: every key has a boolean `_key` array marking the envs it covers."""
        return {**info, **{f"_{k}": mask.copy() for k in info}}

    @property
    def last_step_seconds(self) -> float:
        """Wall time of the last batched step's generation (all N frames)."""
        return self.simulator.last_step_seconds

    def memory_bytes(self) -> int:
        return self.simulator.memory_bytes()

    def get_state(self) -> VectorEnvState:
        if self._obs is None:
            raise RuntimeError("call reset() before get_state()")
        return VectorEnvState(self.simulator.get_state(), self._obs.copy(), self.episodes.steps.copy(),
                              self.episodes.ended.copy(), tuple(rng.bit_generator.state for rng in self._rngs))

    def set_state(self, state: VectorEnvState) -> None:
        if not isinstance(state, VectorEnvState) or state.observations.shape[0] != self.num_envs:
            raise ValueError(f"set_state takes a VectorEnvState of {self.num_envs} envs from get_state()")
        self.simulator.set_state(state.simulator)
        self._obs = state.observations.copy()
        self.episodes.steps = state.episode_steps.copy()
        self.episodes.ended = state.autoreset.copy()
        self._rngs = [seeding.np_random(0)[0] for _ in state.rngs]
        for rng, s in zip(self._rngs, state.rngs):
            rng.bit_generator.state = s

    def branch(self, state: EnvState) -> np.ndarray:
        """Put every env in a copy of one single env's snapshot (`LSSVWMEnv.get_state()`): N futures
        of one moment, imagined as one batch (a look-ahead planner steps them with N different
        actions). Each copy starts a new episode of 0 steps. Returns the observations [N, S, S, 3]."""
        if not isinstance(state, EnvState) or state.simulator.cache.batch_size != 1:
            raise ValueError(f"branch takes an EnvState from LSSVWMEnv.get_state(), got {type(state).__name__}")
        if state.observation.shape != self.single_observation_space.shape:
            raise ValueError(f"the snapshot's frames are {state.observation.shape}, this env's "
                             f"{self.single_observation_space.shape}: another checkpoint's state")
        self.simulator.set_state(state.simulator.select([0] * self.num_envs))
        self._obs = np.repeat(state.observation[None], self.num_envs, axis=0)
        self.episodes.start(slice(None))
        if self._rngs is None:  # autoresets inside a branch draw their seeds from these
            self._rngs = [seeding.np_random()[0] for _ in range(self.num_envs)]
        return self._obs.copy()

    def render(self):
        if self.render_mode is None or self._obs is None:
            return None
        return tuple(self._obs.copy())

    def close_extras(self, **kwargs):
        self.source.close()
