"""LSSVWM-v0: a learned video world model, played as a Gymnasium environment.

## Description
Every `step(action)` generates the next frame with a Long-Context State-Space Video World Model
(LSSVWM): the model denoises the frame in `sampling_steps` passes that read its memory, then
commits it. The memory (one SSM state per spatial block per layer + a ring of the last few frames'
attention keys/values) has a fixed size, so frame 10,000 costs what frame 100 costs and the model
can still recall what it showed hundreds of frames ago.

The checkpoint decides what world is simulated: by default the shipped "maze" checkpoint, a
world model of the built-in 3D maze `worldsim/Maze-v0`.

## Action Space
The checkpoint's source env's (config.json "source.action_space"). For the maze, `Discrete(6)`:

| Num | Action        |
|-----|---------------|
| 0   | noop          |
| 1   | forward       |
| 2   | turn left     |
| 3   | turn right    |
| 4   | forward+left  |
| 5   | forward+right |

A continuous-action checkpoint has a `Box` of float32. An action outside the space (wrong value,
shape or type) raises a ValueError that says what is wrong.

## Observation Space
`Box(0, 255, (S, S, 3), uint8)`: the generated RGB frame, S the model's image size (64 for the maze).

## Rewards
The model's reward head: the reward the source env would give for the step, as predicted.

## Starting State
`reset(seed=s)` resets the source env with seed s and starts from its first observation
(resized to S x S if needed): the world model begins where the real env begins. Without a seed, the
source seed is drawn from the env's `np_random`; it is returned in `info["source_seed"]`.
`reset(options={"frames": uint8 [T, S, S, 3], "actions": [T - 1]})` starts from your own context
instead (actions[t] was taken after frames[t]); all T frames are read in one parallel pass.
The sampler's noise is seeded from `np_random`, so the same seed and actions give the same frames.

## Episode End
Terminated: the model's termination head predicts the episode ends (logit > 0).
Truncated: after `max_episode_steps` steps (1000 for `gym.make("LSSVWM-v0")`, set by TimeLimit).

## Info
`frame_index`: frames in the model's memory (context included); on reset also `source_seed` (None
when started from `options["frames"]`). Info is deterministic (check_env requires the same info
for the same seed and actions), so the wall time of the last step's generation is an attribute,
`env.unwrapped.last_step_seconds`, not an info key.

## Snapshot / restore
`env.unwrapped.get_state()` copies the simulator's memory, noise generators and last frame;
`set_state(state)` restores it: the same actions then give the same frames (branching, planning).
The TimeLimit wrapper's step count is not part of the state.

## Arguments
```python
import gymnasium as gym, worldsim
env = gym.make("LSSVWM-v0", checkpoint="maze", device="auto", sampling_steps=None,
               dtype="float32", context_noise=None, commit_in_sampler=None, cuda_graph=None,
               compile=False, schedule_power=None, render_mode=None)
```
* `checkpoint`: a checkpoint directory, a training run directory, or a shipped name (default "maze").
* `device`: "auto" (CUDA if available), "cpu", "cuda", "cuda:1", ...
* `sampling_steps`, `context_noise`, `commit_in_sampler`, `schedule_power`: sampler settings (default: the checkpoint's
  "sampling"; `worldsim.diffusion.SamplerSettings` explains them).
* `dtype`: "float32" or "bfloat16".
* `cuda_graph`: replay each step from a CUDA graph (`worldsim.step_graph`): on a GPU one launch
  instead of thousands of small kernels (None, the default: on when the device is CUDA). The
  memory then lives in fixed buffers updated in place; `get_state()` copies it as always.
* `compile`: `torch.compile` the model for generation steps (`Simulator` explains when it pays).
* `render_mode`: "rgb_array" (the frame) or "human" (an upscaled pygame window).

Vectorised: `gym.make_vec("LSSVWM-v0", num_envs=N)` generates all N envs as one batch (envs/lssvwm_vector.py).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from worldsim.checkpoint import load_model
from worldsim.simulator import Simulator, SimulatorState
from worldsim.sources import SOURCE_SEED_LIMIT, SourceEnv, action_space, check_action, keys_to_action

WINDOW_PIXELS = 512  # "human" render mode: frames are upscaled to about this size


def make_simulator(checkpoint, device, dtype, **options) -> tuple[Simulator, dict]:
    """The simulator of a checkpoint with the checkpoint's sampler settings unless `options`
    (`Simulator.for_checkpoint`'s keywords) override them."""
    model, config = load_model(checkpoint, device="cpu")
    return Simulator.for_checkpoint(model, config, device=device, dtype=dtype, **options), config


def draw_seeds(np_random: np.random.Generator, seed: int | None, from_source: bool) -> tuple[int | None, int]:
    """(source env seed, sampler noise seed) of an episode. The single and the vector env both
    draw them this way, so a vector env with seed s + i matches a single env with seed s + i."""
    source_seed = None
    if from_source:
        source_seed = int(seed) if seed is not None else int(np_random.integers(SOURCE_SEED_LIMIT))
    return source_seed, int(np_random.integers(2**63))


def check_context(frames, actions, image_size: int, space: spaces.Space, batch: int | None = None):
    """User context -> (frames uint8 tensor [(B,) T, S, S, 3], actions tensor [(B,) T - 1] or None).
    `batch` is None for one env, else the number of envs (a leading dimension)."""
    lead = () if batch is None else (batch,)
    frames = np.asarray(frames)
    want = f"uint8 [{', '.join(map(str, lead + ('T',)))}, {image_size}, {image_size}, 3]"
    if frames.dtype != np.uint8 or frames.ndim != len(lead) + 4 or frames.shape[:len(lead)] != lead \
            or frames.shape[-3:] != (image_size, image_size, 3) or frames.shape[len(lead)] < 1:
        raise ValueError(f"options['frames'] must be {want} (the model's image size is {image_size}), "
                         f"got {frames.dtype} {frames.shape}")
    T = frames.shape[len(lead)]
    if actions is None and T > 1:
        raise ValueError(f"options['frames'] holds {T} frames: options['actions'] must give the {T - 1} actions between them")
    if actions is not None and np.shape(actions) != lead + (T - 1,) + space.shape:
        raise ValueError(f"options['actions'] must have shape {lead + (T - 1,) + space.shape} for {T} frames, "
                         f"got {np.shape(actions)}")
    if T == 1:
        return torch.from_numpy(frames.copy()), None
    actions = np.asarray(actions)
    checked = []
    for i, a in enumerate(actions.reshape((-1,) + space.shape)):
        try:
            checked.append(check_action(space, a))
        except ValueError as e:
            raise ValueError(f"options['actions'] entry {i}: {e}") from None
    return torch.from_numpy(frames.copy()), torch.from_numpy(np.stack(checked).reshape(actions.shape))


@dataclass(frozen=True)
class EnvState:
    """A snapshot of an LSSVWMEnv: the simulator state and the last observation."""

    simulator: SimulatorState
    observation: np.ndarray

    @property
    def frame_index(self) -> int:
        return int(self.simulator.frame_index[0])


class LSSVWMEnv(gym.Env):
    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 15}

    def __init__(self, checkpoint: str | os.PathLike | None = None, device: str = "auto",
                 sampling_steps: int | None = None, dtype: str = "float32", context_noise: float | None = None,
                 commit_in_sampler: bool | None = None, cuda_graph: bool | None = None, compile: bool = False,
                 schedule_power: float | None = None, render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.simulator, self.config = make_simulator(
            checkpoint, device, dtype, sampling_steps=sampling_steps, context_noise=context_noise,
            commit_in_sampler=commit_in_sampler, cuda_graph=cuda_graph, compile=compile, schedule_power=schedule_power)
        cfg = self.simulator.cfg
        self.source = SourceEnv(self.config.get("source", {}), cfg.image_size)
        self.observation_space = spaces.Box(0, 255, (cfg.image_size, cfg.image_size, cfg.channels), np.uint8)
        self.action_space = action_space(self.config)
        self.metadata = {**self.metadata, "render_fps": self.config.get("source", {}).get("render_fps", 15)}
        self.render_mode = render_mode
        self._obs: np.ndarray | None = None
        self._window = None
        self._clock = None

    @property
    def sampling_steps(self) -> int:
        return self.simulator.sampler.steps

    @sampling_steps.setter
    def sampling_steps(self, steps: int) -> None:
        self.simulator.sampler = dataclasses.replace(self.simulator.sampler, steps=int(steps))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"frames", "actions"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; LSSVWM-v0 takes 'frames' and 'actions'")
        if "actions" in options and "frames" not in options:
            raise ValueError("options['actions'] given without options['frames']")
        from_source = "frames" not in options
        source_seed, noise_seed = draw_seeds(self.np_random, seed, from_source)
        if from_source:
            frames, actions = torch.from_numpy(self.source.reset(source_seed))[None], None
        else:
            frames, actions = check_context(options["frames"], options.get("actions"),
                                            self.observation_space.shape[0], self.action_space)
        first = self.simulator.reset(frames[None], None if actions is None else actions[None], [noise_seed])
        self._obs = first[0].numpy().copy()
        if self.render_mode == "human":
            self.render()
        return self._obs.copy(), {"frame_index": self.frame_index, "source_seed": source_seed}

    def step(self, action):
        a = check_action(self.action_space, action)
        frames, reward, terminated = self.simulator.step(torch.from_numpy(a)[None])
        self._obs = frames[0].numpy().copy()
        if self.render_mode == "human":
            self.render()
        return self._obs.copy(), float(reward[0]), bool(terminated[0]), False, {"frame_index": self.frame_index}

    @property
    def frame_index(self) -> int:
        """Frames in the model's memory: the context frames plus the steps since reset."""
        return int(self.simulator.frame_index[0])

    @property
    def last_step_seconds(self) -> float:
        """Wall time of the last step's generation (sampler passes + commit)."""
        return self.simulator.last_step_seconds

    def memory_bytes(self) -> int:
        """Bytes of the model's memory (fixed for LSSVWM, growing for a full-attention baseline)."""
        return self.simulator.memory_bytes()

    def get_state(self) -> EnvState:
        if self._obs is None:
            raise RuntimeError("call reset() before get_state()")
        return EnvState(self.simulator.get_state(), self._obs.copy())

    def set_state(self, state: EnvState) -> None:
        if not isinstance(state, EnvState) or state.simulator.cache.batch_size != 1:
            raise ValueError(f"set_state takes an EnvState from LSSVWMEnv.get_state(), got {type(state).__name__}")
        self.simulator.set_state(state.simulator)
        self._obs = state.observation.copy()

    def get_keys_to_action(self) -> dict[tuple[int, ...], object]:
        """Key combinations -> action for `gymnasium.utils.play.play`: for the maze, WASD or the
        arrows, q / e (or forward + a turn key) for forward+left / forward+right."""
        return keys_to_action(self.source, self.action_space)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode: pass render_mode='rgb_array' or 'human' "
                            "to gym.make('LSSVWM-v0', ...)")
            return None
        if self._obs is None:
            return None
        if self.render_mode == "rgb_array":
            return self._obs.copy()
        self._show(self._obs)
        return None

    def _show(self, frame: np.ndarray) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        if self._window is None:
            pygame.display.init()
            scale = max(1, WINDOW_PIXELS // max(frame.shape[:2]))
            self._window = pygame.display.set_mode((frame.shape[1] * scale, frame.shape[0] * scale))
            pygame.display.set_caption("LSSVWM-v0")
            self._clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(frame.swapaxes(0, 1))
        self._window.blit(pygame.transform.scale(surface, self._window.get_size()), (0, 0))
        pygame.event.pump()  # keeps the window responsive
        pygame.display.flip()
        self._clock.tick(self.metadata["render_fps"])

    def close(self):
        self.source.close()
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = None
