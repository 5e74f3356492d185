"""The training objective over one window: Diffusion Forcing with the long-context prefix, reward
and termination heads, temporal segments and state-reset regularization.

A window of T frames is processed as spans [s, e) carrying the model's memory (InferenceCache)
from one span to the next, which equals one pass (tests/model/test_exactness.py). Two things cut
the window into spans:
  - temporal segments (seed article): every `segment_frames` frames; between segments the memory
    is detached and the loss so far back-propagated, so activation memory is one segment's;
  - state reset (seed article): at a random frame r, the SSM states of the windows chosen with
    probability `state_reset_prob` are zeroed (attention memory kept), teaching the model to
    work from an empty SSM state mid-video.
Blind attention is the converse: in the windows chosen with probability `attention_blind_prob`
the frame-local attention sees each frame alone, so the SSM is the only way to the past there
and cannot leave frame-to-frame memory to the attention.
Own context (`own_context`): in the long-context windows chosen with probability
`own_context_prob`, the clean prefix is replaced by the model's own estimates of those frames,
committed at the context-noise level as the simulator commits the frames it generates, so the
model learns to continue from frames like its own (blurred, a little off) rather than only from
true ones.
`plan_window` decides the spans; `WindowObjective` computes the loss of a group of spans that
share one autograd graph (one DDP forward).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldsim.diffusion import (ObjectiveConfig, add_noise, diffusion_loss, predict_x0, prev_actions,
                                sample_noise_levels, to_model_space)
from worldsim.model import InferenceCache, LSSVWM


@dataclass
class WindowPlan:
    groups: list[list[tuple[int, int]]]  # spans per autograd group; memory detached between groups
    reset_at: int | None  # frame at which the SSM states of `reset_mask` windows are zeroed
    reset_mask: Tensor  # [B] bool
    blind_mask: Tensor | None = None  # [B] bool: windows whose attention sees each frame alone
    own_context_mask: Tensor | None = None  # [B] bool: windows whose clean prefix becomes the model's own estimates

    def rows(self, part: slice) -> "WindowPlan":
        """The plan of the windows in `part` (a micro-batch): the same spans and reset frame."""
        cut = lambda m: None if m is None else m[part]  # noqa: E731
        return dataclasses.replace(self, reset_mask=self.reset_mask[part], blind_mask=cut(self.blind_mask),
                                   own_context_mask=cut(self.own_context_mask))


def plan_window(batch: int, frames: int, segment_frames: int, state_reset_prob: float,
                generator: torch.Generator | None = None, attention_blind_prob: float = 0.0,
                own_context_prob: float = 0.0) -> WindowPlan:
    cuts = set(range(segment_frames, frames, segment_frames)) if segment_frames else set()
    reset_mask = torch.rand(batch, generator=generator) < state_reset_prob
    reset_at = None
    if reset_mask.any() and frames > 1:
        reset_at = int(torch.randint(1, frames, (1,), generator=generator))
    # drawn only when asked for, so runs without them keep their random stream
    blind_mask = torch.rand(batch, generator=generator) < attention_blind_prob if attention_blind_prob > 0 else None
    own_mask = torch.rand(batch, generator=generator) < own_context_prob if own_context_prob > 0 else None
    points = sorted(cuts | ({reset_at} if reset_at is not None else set()))
    bounds = [0, *points, frames]
    groups, current = [], []
    for s, e in zip(bounds[:-1], bounds[1:]):
        if s in cuts and current:
            groups.append(current)
            current = []
        current.append((s, e))
    groups.append(current)
    return WindowPlan(groups, reset_at, reset_mask, blind_mask, own_mask)


@dataclass
class PreparedWindow:
    """A window turned into model inputs and targets (all [B, T, ...] on the training device)."""
    x0: Tensor
    z: Tensor
    eps: Tensor
    tau: Tensor
    loss_mask: Tensor
    produced: Tensor  # the action that produced each frame
    reward: Tensor  # reward of the step into each frame (frame 0: unknown, masked)
    terminated: Tensor
    head_mask: Tensor

    def rows(self, part: slice) -> "PreparedWindow":
        return PreparedWindow(**{f.name: getattr(self, f.name)[part] for f in dataclasses.fields(self)})

    def loss_totals(self) -> tuple[Tensor, Tensor]:
        """What the diffusion and head losses are averaged over: their masks' sums."""
        return self.loss_mask.sum().clamp(min=1), self.head_mask.sum().clamp(min=1)


def prepare_window(frames: Tensor, actions: Tensor, rewards: Tensor, terminated: Tensor,
                   objective: ObjectiveConfig, generator: torch.Generator | None = None) -> PreparedWindow:
    """`generator` lives on the frames' device: the noise is drawn where it is used."""
    x0 = to_model_space(frames)
    B, T = x0.shape[:2]
    tau, mask = sample_noise_levels(B, T, objective, generator=generator, device=x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device)
    shift = lambda v: torch.cat([torch.zeros_like(v[:, :1]), v[:, :-1]], 1)
    head_mask = torch.ones(B, T, device=x0.device)
    head_mask[:, 0] = 0
    return PreparedWindow(x0, add_noise(x0, tau, eps), eps, tau, mask, prev_actions(actions),
                          shift(rewards.float()), shift(terminated.float()), head_mask)


@torch.no_grad()
def own_context(model: LSSVWM, w: PreparedWindow, chosen: Tensor, level: float,
                generator: torch.Generator | None = None) -> PreparedWindow:
    """`w` with the clean prefix of the `chosen` [B] long-context windows replaced by the model's
    own estimates of those frames, committed at noise level `level`.

    With the shipped sampler (2 steps, context noise 0.5) the simulator's last pass denoises a
    frame from that level, reading the frames before it committed at that level, and commits the
    result at that level again. Here one causal parallel pass does the same for every frame of the
    window at once (frame t's estimate reads frames <= t only), from the true frames noised to
    `level` -- so the estimates are somewhat better than the sampler's, which start from its own
    first pass. The loss frames after the prefix keep their targets: the model learns to continue
    the true video from a memory of frames like its own. Other windows are returned as they are;
    no gradient flows through the estimates."""
    rows = (chosen.to(w.loss_mask.device) & (w.loss_mask == 0).any(1)).nonzero().squeeze(1)
    if rows.numel() == 0:
        return w
    x0 = w.x0[rows]
    tau = torch.full(x0.shape[:2], level, device=x0.device)
    z = add_noise(x0, tau, torch.randn(x0.shape, generator=generator, device=x0.device))
    estimate = predict_x0(z, model(z, tau, w.produced[rows]).prediction.float(), tau)
    committed = add_noise(estimate, tau, torch.randn(x0.shape, generator=generator, device=x0.device))
    prefix = w.loss_mask[rows] == 0  # [b, T]
    new_z, new_tau = w.z.clone(), w.tau.clone()
    new_z[rows] = torch.where(prefix[..., None, None, None], committed, w.z[rows])
    new_tau[rows] = torch.where(prefix, tau, w.tau[rows])
    return dataclasses.replace(w, z=new_z, tau=new_tau)


class WindowObjective(nn.Module):
    """Loss of one group of spans. A module so that DDP wraps one forward per group."""

    def __init__(self, model: LSSVWM, objective: ObjectiveConfig):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, w: PreparedWindow, spans: list[tuple[int, int]], cache: InferenceCache | None,
                plan: WindowPlan, last_group: bool, totals: tuple[Tensor, Tensor] | None = None):
        """`totals`: the whole step's `loss_totals()` when `w` is a micro-batch of it, so that the
        parts' losses add up to the step's."""
        total_mask, total_heads = totals or w.loss_totals()
        diff = heads = torch.zeros((), device=w.x0.device)
        blind = None if plan.blind_mask is None else plan.blind_mask.to(w.x0.device)
        for i, (s, e) in enumerate(spans):
            if s == plan.reset_at and cache is not None:
                cache = cache.reset_ssm(plan.reset_mask.to(w.x0.device))
            keep = not (last_group and i == len(spans) - 1)
            out = self.model(w.z[:, s:e], w.tau[:, s:e], w.produced[:, s:e], cache=cache, update_cache=keep,
                             blind_attention=blind)
            cache = out.cache
            m = w.loss_mask[:, s:e]
            diff = diff + diffusion_loss(out.prediction, w.x0[:, s:e], w.eps[:, s:e], w.tau[:, s:e], m) * m.sum() / total_mask
            hm = w.head_mask[:, s:e]
            r = ((out.reward.float() - w.reward[:, s:e]).pow(2) * hm).sum() / total_heads
            d = (F.binary_cross_entropy_with_logits(out.termination.float(), w.terminated[:, s:e], reduction="none") * hm).sum() / total_heads
            heads = heads + self.objective.reward_weight * r + self.objective.termination_weight * d
        return diff + heads, {"diffusion": diff.detach(), "heads": heads.detach()}, cache
