"""StepGraph: the simulator's steady-state step on static buffers, captured in a CUDA graph.

At batch 1 a generation step on a GPU is bound by kernel launches, not by the GPU: ~2 model passes
of a few thousand small kernels each (BENCHMARKS.md, "Engine on the H100"). A CUDA graph records
those launches once and replays them with one call. A graph replays on the same memory it was
recorded with, so the step reads and writes fixed buffers:

    inputs   the memory (an InferenceCache), the pending commit of the latest frame, the actions
             and the step's noise (the sampler's initial noise and the commit noise)
    outputs  the frame, reward and termination logit; the memory and the pending commit are
             updated in place

This is the step of `diffusion.sample_next_frame` once the episode has started: a pending commit
rides in the first sampler pass. Everything in it has a fixed shape for a model whose memory does
not grow (every architecture but full causal attention), and nothing reads a device tensor back to
the host, so it can be captured. On a CPU there is nothing to capture: the same code runs eagerly
on the same buffers (which is what the CPU tests check against the plain step).
"""

from __future__ import annotations

import torch
from torch import Tensor

from worldsim.diffusion import PendingCommit, SamplerSettings, sample_next_frame
from worldsim.model import LSSVWM, InferenceCache


def _buffers(cache: InferenceCache, pending: PendingCommit) -> dict[str, Tensor]:
    return {**cache.state_dict(), "pending.frame": pending.frame, "pending.level": pending.level,
            "pending.action": pending.action}


def _copy(dst: dict[str, Tensor], src: dict[str, Tensor]) -> None:
    for name, x in dst.items():
        if src[name] is not x:
            x.copy_(src[name])


class StepGraph:
    def __init__(self, model: LSSVWM, cache: InferenceCache, pending: PendingCommit, actions: Tensor,
                 noise: Tensor, sampler: SamplerSettings, dtype: torch.dtype):
        """Static copies of the memory, the pending commit, the actions [B] (or [B, A]) and the noise
        [2, B, C, H, W] given; captured in a CUDA graph when they are on a CUDA device. `sampler`
        must commit each frame in the next frame's first pass (not `commit_in_sampler`)."""
        if sampler.commit_in_sampler:
            raise ValueError("StepGraph captures the step whose frame the next step's first pass commits; "
                             "with commit_in_sampler a sampler pass commits it and none is left pending")
        self.model, self.sampler, self.dtype = model, sampler, dtype
        self.cache, self.pending = cache.snapshot(), pending.clone()
        self.actions, self.noise = actions.clone(), noise.clone()
        self.outputs: tuple[Tensor, Tensor, Tensor] | None = None  # frame [B, C, H, W], reward [B], termination [B]
        self.graph = None
        if cache.t.is_cuda:
            self._capture()

    def _run(self) -> None:
        device = self.noise.device.type
        # the autocast weight cache would hold casts made during capture outside the graph's memory
        with torch.no_grad(), torch.autocast(device, dtype=self.dtype, enabled=self.dtype != torch.float32,
                                             cache_enabled=False):
            frame, reward, term, cache, pending = sample_next_frame(
                self.model, self.cache, self.actions, self.noise[0], self.sampler, self.noise[1], self.pending)
        _copy(_buffers(self.cache, self.pending), _buffers(cache, pending))
        if self.outputs is None:
            self.outputs = (frame.clone(), reward.clone(), term.clone())
        else:
            for a, b in zip(self.outputs, (frame, reward, term)):
                a.copy_(b)

    def _capture(self) -> None:
        # Warm-up runs (on a side stream, as PyTorch's CUDA-graph notes ask) allocate the outputs and
        # let lazily initialised libraries set up outside the capture; they advance the memory, so
        # it is put back after them.
        start = (self.cache.snapshot(), self.pending.clone())
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self._run()
        torch.cuda.current_stream().wait_stream(side)
        self.load(*start)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._run()

    def load(self, cache: InferenceCache, pending: PendingCommit) -> None:
        """Copy a memory and a pending commit into the static buffers (after an eager step or a
        restored snapshot)."""
        _copy(_buffers(self.cache, self.pending), _buffers(cache, pending))

    def __call__(self, actions: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One step from the static memory; returns the static outputs (overwritten by the next call)."""
        self.actions.copy_(actions)
        self.noise.copy_(noise)
        if self.graph is None:
            self._run()
        else:
            self.graph.replay()
        return self.outputs
