"""EpisodeNoise: each episode's sampler noise from its own generator, drawn a step ahead.

A generation step needs fresh Gaussian noise per episode: the sampler's initial noise and the
noise its commit adds (two frames' worth). Each episode draws from its own CPU generator, seeded
at its reset, so its frames depend on its seed and actions only -- not on the batch it runs in,
nor on the device.

Drawing is serial host work: 19 ms for 256 episodes on an H100's host, beside 62 ms of GPU work in
a bfloat16 step (BENCHMARKS.md, "Batched generation on the H100"), and the GPU waited for it. So
the simulator asks for the next step's noise right after it has launched this step's GPU work, and
the host draws while the GPU computes. Drawn ahead or not, each generator yields the same numbers
in the same order; `rng_states()` reports the generators as they stood before the draw ahead, so a
saved state resumes exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor


class EpisodeNoise:
    def __init__(self, seeds: list[int], frame_shape: tuple[int, ...], draws: int = 2, device="cpu"):
        """`device`: where `next()` delivers the noise. For a CUDA device it is drawn into pinned host
        memory, so its copy runs without the host waiting on it."""
        self.frame_shape, self.draws, self.device = tuple(frame_shape), draws, torch.device(device)
        self.pin_memory = self.device.type == "cuda"
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self._ahead: Tensor | None = None  # [B, draws, *frame_shape]: the next step's noise
        self._states_before: list[Tensor | None] = []  # the generators' states before `_ahead` was drawn

    @classmethod
    def from_states(cls, states: list[Tensor], frame_shape: tuple[int, ...], draws: int = 2,
                    device="cpu") -> "EpisodeNoise":
        noise = cls([0] * len(states), frame_shape, draws, device)
        for g, s in zip(noise.generators, states):
            g.set_state(s)
        return noise

    def __len__(self) -> int:
        return len(self.generators)

    def _draw_into(self, i: int) -> None:
        self._states_before[i] = self.generators[i].get_state()
        torch.randn(self.draws, *self.frame_shape, generator=self.generators[i], out=self._ahead[i])

    def draw_ahead(self) -> None:
        """Draw the next step's noise now (a no-op when it is already drawn)."""
        if self._ahead is None:
            self._ahead = torch.empty(len(self), self.draws, *self.frame_shape, pin_memory=self.pin_memory)
            self._states_before = [None] * len(self)
            for i in range(len(self)):
                self._draw_into(i)

    def next(self) -> Tensor:
        """This step's noise [draws, B, *frame_shape] on the device."""
        self.draw_ahead()
        noise, self._ahead = self._ahead, None
        return noise.to(self.device, non_blocking=self.pin_memory).transpose(0, 1).contiguous()

    def reseed(self, index: list[int], seeds: list[int]) -> None:
        """Restart the generators of episodes `index` from `seeds` (their noise drawn ahead with them)."""
        for i, s in zip(index, seeds):
            self.generators[i] = torch.Generator().manual_seed(int(s))
            if self._ahead is not None:
                self._draw_into(i)

    def rng_states(self) -> list[Tensor]:
        """Each generator's state, as it stood before any draw ahead."""
        if self._ahead is not None:
            return [s.clone() for s in self._states_before]
        return [g.get_state() for g in self.generators]
