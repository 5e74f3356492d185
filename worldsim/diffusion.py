"""Diffusion Forcing: per-frame noise levels, the training objective, and the few-step sampler.

Parameterization (documented choice): continuous noise level tau in [0, 1] with the cosine
schedule alpha = cos(pi/2 tau), sigma = sin(pi/2 tau), so z = alpha x0 + sigma eps, and the
network predicts v = alpha eps - sigma x0 (v-prediction, as the Diffusion Forcing video models).
tau = 0 is a clean frame, tau = 1 pure noise.

Training (Diffusion Forcing, Chen et al. 2024): every frame of a window draws its own tau. With
the paper's long-context training, half the windows instead keep a random clean prefix longer
than half the window (tau = 0) and the loss covers only the noised frames after it. Sparse-target
windows (opt-in) noise only a random share of their frames and keep the rest clean, so most of the
frames a target sees are true ones, as in teacher-forced prediction and the simulator's sampler.

Sampling: DDIM, deterministic given the initial noise, from tau = 1 to 0 in a few steps, each
step a read-only pass over the cache; pass i of n runs at tau = (1 - i/n) ** p, evenly spaced at
the schedule power p = 1, and a larger p leaves the later passes less noise to remove. The
finished frame is then committed to the cache at a context-noise level (context stabilization,
as DFoT), which keeps long rollouts from drifting; that commit rides in the next frame's first pass.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

from worldsim.model import LSSVWM, InferenceCache


def alpha_sigma(tau: Tensor) -> tuple[Tensor, Tensor]:
    return torch.cos(0.5 * math.pi * tau), torch.sin(0.5 * math.pi * tau)


def predict_x0(z: Tensor, v: Tensor, tau: Tensor) -> Tensor:
    """The clean frames a v-prediction implies, clamped to [-1, 1]: x0 = alpha z - sigma v.
    z, v [B, T, C, H, W]; tau [B, T]."""
    a, s = alpha_sigma(tau[..., None, None, None])
    return (a * z - s * v).clamp(-1, 1)


def to_model_space(frames: Tensor) -> Tensor:
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [-1, 1]."""
    return frames.movedim(-1, -3).float() / 127.5 - 1.0


def to_uint8(x: Tensor) -> Tensor:
    """float [..., 3, H, W] in [-1, 1] -> uint8 [..., H, W, 3], contiguous: made so on x's device,
    a GPU's frames reach the host in the layout numpy reads fast (the strided copy of 256 frames
    took ~3 ms on a CPU in each vector env step)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).movedim(-3, -1).contiguous()


def add_noise(x0: Tensor, tau: Tensor, eps: Tensor) -> Tensor:
    """x0, eps [B, T, C, H, W]; tau [B, T]."""
    a, s = alpha_sigma(tau)
    return a[..., None, None, None] * x0 + s[..., None, None, None] * eps


@dataclass(frozen=True)
class ObjectiveConfig:
    long_context_prob: float = 0.5  # the paper's long-context training
    reward_weight: float = 1.0
    termination_weight: float = 0.1
    # P(a window is sparse-target: each frame a target with probability sparse_target_rate, the rest clean)
    sparse_target_prob: float = 0.0
    sparse_target_rate: float = 0.25


def sample_noise_levels(batch: int, frames: int, cfg: ObjectiveConfig, generator=None, device=None):
    """Per-frame noise levels and the loss mask [B, T].

    With probability `long_context_prob` a window keeps a clean prefix of more than half its
    frames (at least T//2 + 1, at most T - 1) and only the frames after it count in the loss;
    otherwise every frame draws an independent level (plain Diffusion Forcing).

    With probability `sparse_target_prob` a window instead (whichever of the two it drew) makes
    each frame a target with probability `sparse_target_rate`, its last frame always, and keeps
    the others clean; only the targets count in the loss. Diffusion Forcing's independent levels
    put a target among noised neighbours, but at inference every frame before the one being drawn
    is a committed frame: these windows train that case on most of their targets, not only on the
    first frame after a long-context prefix."""
    levels = torch.rand(batch, frames, generator=generator, device=device)
    tau, mask = levels, torch.ones(batch, frames, device=device)
    if frames >= 3:
        long = torch.rand(batch, generator=generator, device=device) < cfg.long_context_prob
        lo = frames // 2 + 1
        prefix = torch.randint(lo, frames, (batch,), generator=generator, device=device)
        clean = long[:, None] & (torch.arange(frames, device=device)[None] < prefix[:, None])
        tau = torch.where(clean, torch.zeros_like(tau), tau)
        mask = (~clean).float()
    if cfg.sparse_target_prob > 0:  # drawn only when asked for, so runs without it keep their random stream
        sparse = (torch.rand(batch, generator=generator, device=device) < cfg.sparse_target_prob)[:, None]
        target = torch.rand(batch, frames, generator=generator, device=device) < cfg.sparse_target_rate
        target[:, -1] = True
        tau = torch.where(sparse, torch.where(target, levels, torch.zeros_like(levels)), tau)
        mask = torch.where(sparse, target.float(), mask)
    return tau, mask


def diffusion_loss(out_pred: Tensor, x0: Tensor, eps: Tensor, tau: Tensor, mask: Tensor) -> Tensor:
    """Masked v-prediction MSE, averaged over the frames that count."""
    a, s = alpha_sigma(tau)
    v = a[..., None, None, None] * eps - s[..., None, None, None] * x0
    per_frame = (out_pred.float() - v).pow(2).mean(dim=(2, 3, 4))  # [B, T]
    return (per_frame * mask).sum() / mask.sum().clamp(min=1)


def prev_actions(actions: Tensor, first_action=None) -> Tensor:
    """Gym-aligned actions (actions[t] follows frame t) -> the action that produced each frame.

    Frame 0's producing action is unknown inside a window: -1 (discrete) / NaN (continuous),
    the model's "no action" input, unless `first_action` is given."""
    if actions.is_floating_point():
        none = torch.full_like(actions[:, :1], float("nan"))
    else:
        none = torch.full_like(actions[:, :1], -1)
    if first_action is not None:
        none = first_action[:, None].to(actions.dtype)
    return torch.cat([none, actions[:, :-1]], dim=1)


@dataclass(frozen=True)
class SamplerSettings:
    """How a frame is generated and committed to the memory: a checkpoint's config.json "sampling".
    The defaults are what a checkpoint that sets nothing samples with (new training runs write them).
    Frozen: a simulator's CUDA graph is captured for one setting, and a change is a new object."""

    steps: int = 4  # DDIM passes per frame
    # Noise level generated frames are committed at (0 clean, 1 pure noise). 0.5 kept the maze
    # model's rollouts from collapsing and scored best on retrieval among 0.02-1.0 (BENCHMARKS.md,
    # "Context noise").
    context_noise: float = 0.5
    # Commit the frame from the sampler's pass at `context_noise` instead of in the next frame's
    # first pass (`sample_next_frame`); needs a pass at that very level.
    commit_in_sampler: bool = False
    schedule_power: float = 1.0  # pass i of n runs at noise level (1 - i/n) ** power

    def __post_init__(self):
        if not (isinstance(self.steps, numbers.Integral) and self.steps >= 1):  # numpy's ints too
            raise ValueError(f"sampling steps must be an int >= 1, got {self.steps!r}")
        if not 0 <= self.context_noise <= 1:
            raise ValueError("context_noise is a noise level in [0, 1] (0 clean, 1 pure noise), "
                             f"got {self.context_noise}")
        if not self.schedule_power > 0:
            raise ValueError(f"schedule_power must be > 0 (1: evenly spaced noise levels), got {self.schedule_power}")

    @classmethod
    def from_config(cls, config: dict, **overrides) -> "SamplerSettings":
        """A checkpoint config's "sampling" over the defaults, then `overrides` (field names) that
        are not None."""
        given = {**config.get("sampling", {}), **{k: v for k, v in overrides.items() if v is not None}}
        return cls(**given)

    def levels(self) -> list[float]:
        """The noise level of each pass, then 0: [(1 - i / steps) ** schedule_power for i in 0..steps].
        Python floats, so that a step reads no device tensor to find its commit pass."""
        return [(1 - i / self.steps) ** self.schedule_power for i in range(self.steps + 1)]


@dataclass
class PendingCommit:
    """A generated frame not yet in the memory: its commit pass is deferred so that the next frame's
    first sampler pass runs it too (one pass over two frames instead of two passes over one);
    `commit` runs it alone when the memory is needed before that."""
    frame: Tensor  # [B, 1, C, H, W] the model input: the frame noised to `level`
    level: Tensor  # [B, 1]
    action: Tensor  # [B, 1] (or [B, 1, A]) the action that produced it

    def commit(self, model: LSSVWM, cache: InferenceCache) -> InferenceCache:
        return model(self.frame, self.level, self.action, cache=cache, update_cache=True).cache

    def map(self, fn) -> "PendingCommit":
        return PendingCommit(fn(self.frame), fn(self.level), fn(self.action))

    def clone(self) -> "PendingCommit":
        return self.map(lambda x: x.clone())

    def put(self, index: list[int], other: "PendingCommit") -> "PendingCommit":
        """A copy with batch elements `index` replaced by `other`'s."""
        out = self.clone()
        for mine, theirs in zip((out.frame, out.level, out.action), (other.frame, other.level, other.action)):
            mine[index] = theirs.to(mine.device, mine.dtype)
        return out

    @property
    def nbytes(self) -> int:
        return self.frame.nbytes + self.level.nbytes + self.action.nbytes


@torch.no_grad()
def sample_next_frame(model: LSSVWM, cache: InferenceCache, action: Tensor, noise: Tensor, sampler: SamplerSettings,
                      commit_noise: Tensor | None = None, pending: PendingCommit | None = None):
    """Generate one frame per batch element after the frames in `cache` (and `pending`).

    action: [B] (or [B, A]) the action that produces the new frame; noise: [B, C, H, W] initial
    noise (the sampler is deterministic given it); sampler: DDIM steps at the noise levels of
    `sampler.levels()`, read-only cache passes except for what they commit:
      - `pending`, the previous frame's deferred commit, rides along in the first pass, which
        commits it before the new frame reads the memory (the same memory as committing it alone);
      - the new frame is committed at noise level `sampler.context_noise` (with `commit_noise`), by
        the next call's first pass: it comes back as a PendingCommit. With `commit_in_sampler`, when a
        sampler pass runs at that very level (2 steps and context noise 0.5: the second pass), that
        pass commits it instead, from its input: the sampler's estimate at that level -- with 2
        steps the first pass's estimate noised with the initial noise, since at tau = 1 the DDIM
        noise estimate is the initial noise itself -- so the memory holds a frame at the noise
        level of training's context frames, as estimated before the last pass.
    Reward and termination are the last pass's (its input is the least noisy the sampler sees).
    Returns (frame [B, C, H, W] in [-1, 1], reward [B], termination logit [B], new cache,
    the new frame's PendingCommit or None when it was committed).
    """
    B = noise.shape[0]
    steps, context_noise = sampler.steps, sampler.context_noise
    act = action[:, None]
    z = noise[:, None]  # [B, 1, C, H, W]
    # made on the device, not copied from the host list, so that a CUDA graph can capture it
    taus = torch.linspace(1.0, 0.0, steps + 1, device=noise.device).pow(sampler.schedule_power)
    levels = sampler.levels()
    at_level = [i for i in range(steps) if abs(levels[i] - context_noise) < 1e-6] if sampler.commit_in_sampler else []
    commit_pass = at_level[0] if at_level else None
    if pending is not None and commit_pass == 0:  # (context noise 1) the first pass commits its own input
        cache, pending = pending.commit(model, cache), None
    x0, committed = z, None
    for i in range(steps):
        tau = taus[i].expand(B, 1)
        frames, levels, actions = z, tau, act
        if pending is not None:  # the previous frame goes first, is committed, and the new one reads it
            frames, levels = torch.cat([pending.frame, z], 1), torch.cat([pending.level.to(tau.dtype), tau], 1)
            actions = torch.cat([pending.action.to(act.dtype), act], 1)
        commits = (pending is not None) + (i == commit_pass)  # never both: see above
        out = model(frames, levels, actions, cache=cache, update_cache=commits > 0, commit_frames=commits or None)
        if pending is not None:
            cache, pending = out.cache, None
        if i == commit_pass:
            committed = out.cache  # later passes still read the memory without the new frame
        v = out.prediction[:, -1:]
        x0 = predict_x0(z, v, tau)
        a, s = alpha_sigma(tau[..., None, None, None])
        eps = s * z + a * v
        a2, s2 = alpha_sigma(taus[i + 1])
        z = a2 * x0 + s2 * eps
    if committed is not None:
        return x0[:, 0], out.reward[:, -1], out.termination[:, -1], committed, None
    level = torch.full((B, 1), context_noise, device=noise.device)
    pending = PendingCommit(x0 if context_noise == 0 else add_noise(x0, level, commit_noise[:, None]), level, act)
    return x0[:, 0], out.reward[:, -1], out.termination[:, -1], cache, pending
