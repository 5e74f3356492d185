"""Simulator: the world-model engine under the envs, the viewer and the evaluation.

It owns the model's memory (an `InferenceCache`, batch-leading, fixed size for LSSVWM) and a
noise generator per batch element:

    sim.reset(frames, actions, seeds)   prefill the memory from real context frames, one parallel pass
    sim.step(actions)                   denoise the next frame in `sim.sampler.steps` passes (at
                                        the noise levels of `SamplerSettings.levels`); the
                                        first also commits the previous frame to the memory, so
                                        the new frame's commit waits for the next step (with
                                        `commit_in_sampler`, the sampler's pass at the
                                        context-noise level commits it instead)
    sim.get_state() / sim.set_state()   copy the whole simulator state (branching, planning)

Each batch element draws its noise from its own CPU generator, seeded at reset, so a batch of N
generates the same frames as N single simulators given the same seeds and actions
(`worldsim.episode_noise`: the next step's noise is drawn while the GPU runs this one).

On a CUDA device (`cuda_graph`, on there by default), a step after the first of an episode replays
a CUDA graph of the whole step (`worldsim.step_graph`), the same frames without thousands of kernel
launches: 13x the frames/s at batch 1 on an H200 (BENCHMARKS.md, "Engine on the H100"). The memory
then lives in that graph's buffers and later steps overwrite it in place: keep `get_state()` or
`cache.snapshot()` copies, not references.

With `compile`, the model's forward in a step's sampler passes runs through `torch.compile`, which
fuses the step's many small elementwise kernels and copies: 1.34x the frames/s at 256 episodes on an
H100 in bfloat16 (5,357 frames/s), after about two minutes of compiling at the first steps
(BENCHMARKS.md, "Batched generation on the H100"). Off by default: it pays for long batched rollouts,
not for play. Prefill and the other commits run the plain model, so context lengths never recompile.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from worldsim.diffusion import PendingCommit, SamplerSettings, prev_actions, sample_next_frame, to_model_space, to_uint8
from worldsim.episode_noise import EpisodeNoise
from worldsim.model import LSSVWM, InferenceCache
from worldsim.step_graph import StepGraph


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device (use 'cpu' or 'auto')")
    return torch.device(device)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def add_sampling_arguments(parser) -> None:
    """The sampler options of every command that generates frames; None keeps the checkpoint's."""
    parser.add_argument("--sampling-steps", type=int, default=None, help="sampler steps (default: the checkpoint's)")
    parser.add_argument("--context-noise", type=float, default=None,
                        help="noise level generated frames are committed at (default: the checkpoint's)")
    parser.add_argument("--commit-in-sampler", action=argparse.BooleanOptionalAction, default=None,
                        help="commit each frame from the sampler's pass at the context-noise level, saving a "
                             "model pass per frame (default: the checkpoint's)")
    parser.add_argument("--schedule-power", type=float, default=None,
                        help="sampler pass i of n runs at noise level (1 - i/n) ** POWER; above 1 the later passes "
                             "start less noisy (default: the checkpoint's)")
    parser.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                        help="replay each generation step from a CUDA graph, one launch instead of thousands "
                             "(default: on a CUDA device)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model for generation steps: faster batched steps on a GPU after "
                             "minutes of compiling at the first steps")


def sampling_options(args) -> dict:
    """The `Simulator.for_checkpoint` (and env) keyword arguments of `add_sampling_arguments`' options."""
    return {"sampling_steps": args.sampling_steps, "context_noise": args.context_noise,
            "commit_in_sampler": args.commit_in_sampler, "schedule_power": args.schedule_power,
            "cuda_graph": args.cuda_graph, "compile": args.compile}


@dataclass
class SimulatorState:
    cache: InferenceCache
    pending: PendingCommit | None  # the latest generated frame, when not yet in `cache`
    frames: Tensor  # [B, H, W, 3] uint8, the latest frame of each element
    rng: list[Tensor]  # per-element generator states

    @property
    def frame_index(self) -> Tensor:
        """[B] frames so far (context included)."""
        return self.cache.t + (self.pending is not None)

    def select(self, index: list[int]) -> "SimulatorState":
        """Batch elements `index` as a state of their own; an index may repeat, so [0] * N gives
        N copies of element 0 (N branches of one moment, as one batch)."""
        index = list(index)
        # indexing with a list copies, so cache and frames are already the new state's own
        pending = None if self.pending is None else self.pending.map(lambda x: x[index])
        return SimulatorState(self.cache.select(index), pending, self.frames[index], [self.rng[i].clone() for i in index])


class Simulator:
    # Frames per parallel pass when committing context: the memory carries exactly from one
    # segment to the next (tests/model), and activations stay bounded (16 episodes x 576 context
    # frames in one pass took more than 24 GiB on a CPU).
    prefill_segment = 64

    def __init__(self, model: LSSVWM, sampler: SamplerSettings = SamplerSettings(), device="auto",
                 dtype: str | torch.dtype = "float32", cuda_graph: bool | None = None, compile: bool = False):
        if not isinstance(sampler, SamplerSettings):  # e.g. a step count where the settings go
            raise TypeError(f"sampler must be a SamplerSettings, e.g. SamplerSettings(steps=2), got {sampler!r}")
        if isinstance(dtype, str) and dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        self.device = pick_device(device) if isinstance(device, str) else device
        self.dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
        # Weights, inputs and SSM states stay float32; a lower `dtype` runs the matmuls under
        # autocast, as training does (the model's own float32 parts, e.g. its noise-level embedding
        # and the SSD scan, cannot run on weights cast to bfloat16). The memory's attention keys and
        # values and conv tails are kept in `dtype`: attention reads them in it anyway, and a step
        # then moves half the bytes.
        self.model = model.to(self.device).eval()
        # The sampler's passes only: their shapes are fixed per batch size, so the compiled graphs
        # are few (`dynamic=False`: one per pass shape), where prefill would add one per context length.
        self.step_model = torch.compile(self.model, dynamic=False) if compile else self.model
        self.cfg = model.cfg
        self.sampler = sampler  # settable between steps: `dataclasses.replace(sim.sampler, steps=4)`
        # Replay the steady-state step from a CUDA graph (`StepGraph`) where it has fixed shapes:
        # not while the memory grows (full causal attention) nor when the sampler commits. None: on a
        # GPU, where it pays (13x at batch 1); on a CPU the same buffers run eagerly and gain nothing.
        self.cuda_graph = self.device.type == "cuda" if cuda_graph is None else cuda_graph
        self._graph: StepGraph | None = None
        self._graph_key: tuple | None = None  # the settings self._graph was captured with
        self._cache: InferenceCache | None = None  # the memory of the frames so far but `pending`
        self.pending: PendingCommit | None = None  # the latest generated frame, until the next step commits it
        self.frames: Tensor | None = None
        self.noise: EpisodeNoise | None = None  # each element's noise generator, from reset()
        self.last_step_seconds = 0.0

    @classmethod
    def for_checkpoint(cls, model: LSSVWM, config: dict, sampling_steps: int | None = None,
                       context_noise: float | None = None, device="auto", dtype="float32",
                       commit_in_sampler: bool | None = None, cuda_graph: bool | None = None,
                       compile: bool = False, schedule_power: float | None = None) -> "Simulator":
        """A simulator of a loaded checkpoint (`checkpoint.load_model`) with the sampler settings
        its config.json ships, except those given here (None = the checkpoint's; the keywords of
        the envs and of `sampling_options`)."""
        sampler = SamplerSettings.from_config(config, steps=sampling_steps, context_noise=context_noise,
                                              commit_in_sampler=commit_in_sampler, schedule_power=schedule_power)
        return cls(model, sampler, device=device, dtype=dtype, cuda_graph=cuda_graph, compile=compile)

    @property
    def cache(self) -> InferenceCache | None:
        """The memory of every frame so far; reading it commits a pending generated frame first."""
        if self.pending is not None:
            with torch.no_grad(), self._autocast():
                self._cache = self.pending.commit(self.model, self._cache)
            self.pending = None
        return self._cache

    @cache.setter
    def cache(self, cache: InferenceCache | None) -> None:
        self._cache, self.pending = cache, None

    @property
    def batch_size(self) -> int:
        return 0 if self._cache is None else self._cache.batch_size

    @property
    def frame_index(self) -> Tensor:
        """[B] frames so far (context included)."""
        return self._cache.t + (self.pending is not None)

    def check_frames(self, frames: Tensor) -> None:
        s = self.cfg.image_size
        if frames.dim() != 5 or tuple(frames.shape[2:]) != (s, s, self.cfg.channels) or frames.dtype != torch.uint8:
            raise ValueError(f"context frames must be uint8 [B, T, {s}, {s}, {self.cfg.channels}], "
                             f"got {tuple(frames.shape)} {frames.dtype}")

    @torch.no_grad()
    def prefill(self, frames: Tensor, actions: Tensor | None = None) -> InferenceCache:
        """Memory after real context frames uint8 [B, T, H, W, 3]; actions [B, T-1] (Gym-aligned:
        actions[:, t] was taken after frames[:, t]) or None for a single frame."""
        return self._commit(frames, self._producing_actions(frames, actions), cache=None)

    def _producing_actions(self, frames: Tensor, actions: Tensor | None) -> Tensor:
        """The action that produced each context frame [B, T] (see `prefill`), checked."""
        self.check_frames(frames)
        B, T = frames.shape[:2]
        shape = (B, T) + ((self.cfg.action_dim,) if self.cfg.action_type == "continuous" else ())
        if actions is None:
            if T != 1:
                raise ValueError(f"{T} context frames need the {T - 1} actions between them")
            actions = torch.zeros(shape, dtype=torch.float32 if self.cfg.action_type == "continuous" else torch.long)
        else:
            actions = torch.as_tensor(actions)
            pad = torch.zeros((B, 1) + shape[2:], dtype=actions.dtype)
            if actions.shape[:2] != (B, T - 1):
                raise ValueError(f"context actions must have shape [{B}, {T - 1}], got {tuple(actions.shape)}")
            actions = torch.cat([actions, pad], 1)  # the last action follows the context: unused
        return prev_actions(actions)

    def _commit(self, frames: Tensor, produced: Tensor, cache: InferenceCache | None) -> InferenceCache:
        """Memory after real frames uint8 [B, T, H, W, 3], produced by `produced` [B, T], committed
        clean (noise level 0) after `cache`."""
        produced = produced.to(self.device)
        if cache is None:
            cache = self.model.init_cache(frames.shape[0], self.device, self.dtype)
        for s in range(0, frames.shape[1], self.prefill_segment):
            x = to_model_space(frames[:, s:s + self.prefill_segment].to(self.device))
            levels = torch.zeros(x.shape[:2], device=self.device)
            with self._autocast():
                cache = self.model(x, levels, produced[:, s:s + self.prefill_segment], cache=cache,
                                   update_cache=True).cache
        return cache

    @torch.no_grad()
    def observe(self, frames: Tensor, actions: Tensor) -> None:
        """Teacher forcing: append true frames uint8 [B, T, H, W, 3], which `actions` [B, T] produced,
        to the memory, committed clean as context is."""
        frames = torch.as_tensor(frames)
        self.check_frames(frames)
        self.cache = self._commit(frames, torch.as_tensor(actions), self.cache)
        self.frames = frames[:, -1].clone()

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def reset(self, frames: Tensor | list[Tensor], actions: Tensor | list[Tensor] | None = None,
              seeds: list[int] | None = None) -> Tensor:
        """Start B episodes from context frames uint8 [B, T, H, W, 3] and actions [B, T-1] (see
        `prefill`), or from contexts of different lengths: lists of B frames [T_i, H, W, 3] and
        actions [T_i - 1], prefilled a length at a time into one batch. Returns the latest frames
        uint8 [B, H, W, 3]."""
        if isinstance(frames, (list, tuple)):
            by_length: dict[int, list[int]] = {}
            for j, f in enumerate(frames):
                by_length.setdefault(len(f), []).append(j)
            cache = None
            for idx in by_length.values():
                part = self.prefill(torch.stack([torch.as_tensor(frames[j]) for j in idx]),
                                    None if actions is None else torch.stack([torch.as_tensor(actions[j]) for j in idx]))
                cache = part.select([0] * len(frames)) if cache is None else cache  # B slots, all overwritten
                cache.put(idx, part)
            self.cache, self.frames = cache, torch.stack([torch.as_tensor(f[-1]) for f in frames])
        else:
            frames = torch.as_tensor(frames)
            self.cache, self.frames = self.prefill(frames, actions), frames[:, -1].clone()
        seeds = list(range(len(frames))) if seeds is None else list(seeds)
        self.noise = EpisodeNoise(seeds, self._frame_shape, device=self.device)
        return self.frames

    @torch.no_grad()
    def reset_indices(self, index: list[int], frames: Tensor, actions: Tensor | None, seeds: list[int]) -> None:
        """Restart the episodes of some batch elements (vector env autoreset), the others untouched.

        While the others' latest frames wait for the next step to commit them, the restarted
        elements' last context frame waits with them, at noise level 0: the next step's first pass
        commits it as a prefill would, and no pass over the whole batch runs here."""
        frames = torch.as_tensor(frames)
        produced = self._producing_actions(frames, actions)
        if self.pending is None:
            self.cache.put(index, self._commit(frames, produced, cache=None))
        else:
            n, T = frames.shape[:2]
            if T > 1:
                head = self._commit(frames[:, :-1], produced[:, :-1], None)
            else:
                head = self.model.init_cache(n, self.device, self.dtype)
            self._cache.put(index, head)
            last = PendingCommit(to_model_space(frames[:, -1:].to(self.device)), torch.zeros(n, 1, device=self.device),
                                 produced[:, -1:].to(self.device))
            self.pending = self.pending.put(index, last)
        self.frames = self.frames.clone()  # step() returned the old tensor: callers keep their frames
        self.frames[index] = frames[:, -1]
        self.noise.reseed(index, seeds)

    @property
    def _frame_shape(self) -> tuple[int, int, int]:
        return self.cfg.channels, self.cfg.image_size, self.cfg.image_size

    @torch.no_grad()
    def step(self, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Generate the frame that `actions` [B] (or [B, A]) lead to.
        Returns (frames uint8 [B, H, W, 3], reward float32 [B], terminated bool [B]) on the CPU."""
        if self._cache is None:
            raise RuntimeError("call reset() before step()")
        start = time.perf_counter()
        actions = torch.as_tensor(actions).to(self.device)
        if actions.is_floating_point():
            actions = actions.float()
        noise = self.noise.next()  # [2, B, C, H, W]: the sampler's start, the commit's
        if self._graphable():
            x0, reward, term = self._graph_step(actions, noise)
        else:
            with self._autocast():
                x0, reward, term, self._cache, self.pending = sample_next_frame(
                    self.step_model, self._cache, actions, noise[0], self.sampler, noise[1], self.pending)
        self.noise.draw_ahead()  # on a GPU, the host draws the next step's noise while this one runs
        self.frames = to_uint8(x0.float()).cpu()
        self.last_step_seconds = time.perf_counter() - start
        return self.frames, reward.float().cpu(), (term.float() > 0).cpu()

    def _graphable(self) -> bool:
        grows = self.cfg.attention and self.cfg.attn_window is None
        return self.cuda_graph and self.pending is not None and not self.sampler.commit_in_sampler and not grows

    def _graph_step(self, actions: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The step from the StepGraph for these settings (captured anew when they change); the
        memory and the pending commit are then the graph's buffers, updated in place by later steps."""
        key = (self.sampler, self.dtype, tuple(actions.shape), actions.dtype)
        if self._graph is None or self._graph_key != key:
            self._graph = None  # free the old graph's buffers before capturing the new one
            self._graph = StepGraph(self.step_model, self._cache, self.pending, actions, noise, self.sampler,
                                    self.dtype)
            self._graph_key = key
        else:
            self._graph.load(self._cache, self.pending)
        out = self._graph(actions, noise)
        self._cache, self.pending = self._graph.cache, self._graph.pending
        return out

    def get_state(self) -> SimulatorState:
        pending = None if self.pending is None else self.pending.clone()
        return SimulatorState(self._cache.snapshot(), pending, self.frames.clone(), self.noise.rng_states())

    def set_state(self, state: SimulatorState) -> None:
        self.cache = state.cache.snapshot()
        self.pending = None if state.pending is None else state.pending.clone()
        self.frames = state.frames.clone()
        self.noise = EpisodeNoise.from_states(state.rng, self._frame_shape, device=self.device)

    def memory_bytes(self) -> int:
        """Bytes of the memory, the pending frame included."""
        if self._cache is None:
            return 0
        return self._cache.nbytes() + (0 if self.pending is None else self.pending.nbytes)
