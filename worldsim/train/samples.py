"""Sample videos during training: the model continues a real window from its first half,
written beside the ground truth."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from worldsim.diffusion import SamplerSettings
from worldsim.simulator import Simulator
from worldsim.video import mp4_writer


def side_by_side(generated: np.ndarray, truth: np.ndarray, scale: int = 4) -> np.ndarray:
    """[T, H, W, 3] x 2 -> [T, H*scale, 2*W*scale, 3] uint8 (model left, ground truth right)."""
    both = np.concatenate([generated, truth], axis=2)
    return both.repeat(scale, axis=1).repeat(scale, axis=2)


@torch.no_grad()
def write_sample_video(path: Path, model, frames: torch.Tensor, actions: torch.Tensor, device, steps: int = 4,
                       context: int | None = None, fps: int = 15) -> Path:
    """frames uint8 [T, H, W, 3], actions [T] (Gym-aligned). Generates frames context..T-1."""
    T = frames.shape[0]
    context = context or max(1, T // 2)
    sim = Simulator(copy.deepcopy(model), SamplerSettings(steps=steps), device=device)
    sim.reset(frames[None, :context].cpu(), actions[None, : context - 1].cpu(), seeds=[0])
    generated = [frames[t].cpu().numpy() for t in range(context)]
    for t in range(context, T):
        generated.append(sim.step(actions[None, t - 1].cpu())[0][0].numpy())
    with mp4_writer(path, fps) as writer:
        for frame in side_by_side(np.stack(generated), frames.cpu().numpy()):
            writer.append_data(frame)
    return path
