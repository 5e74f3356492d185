"""LSSVWM: the denoiser network of the Long-Context State-Space Video World Model.

    frames [B, T, 3, H, W] (each at its own noise level)
      -> patchify -> tokens [B, T, g, g, D] + spatial position
      -> L x [ BlockSSM -> FrameLocalAttention -> MLP ], each adaLN-Zero modulated per frame
         by c = embed(noise level) + embed(action that led to the frame)
      -> unpatchify -> prediction [B, T, 3, H, W]
      -> pooled per frame -> reward and termination heads

Causal in time: frame t depends on frames <= t only, so the same weights run as one parallel
pass over a window (training) or frame by frame from an `InferenceCache` (simulation), and
the two agree to float tolerance (tests/model/test_exactness.py).

Action convention: `actions[:, t]` is the action that produced frame t. Discrete: int64 with
-1 for "no action" (an episode's first frame); continuous: float [B, T, A] with an all-NaN row
for "no action".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from worldsim.config import ModelConfig
from worldsim.model.attention import FrameLocalAttention
from worldsim.model.block_ssm import BlockSSM
from worldsim.model.cache import InferenceCache


def per_frame(v: Tensor, like: Tensor) -> Tensor:
    """v [B, T, D] viewed to broadcast over like's token axes [B, T, ..., D]."""
    return v[(slice(None), slice(None)) + (None,) * (like.dim() - 3)]


# addcmul: one pass over the activations where `a * b + c` takes two (elementwise kernels are most
# of a training step's GPU time: BENCHMARKS.md, "Training throughput")
def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """x [B, T, ..., D] with per-frame shift/scale [B, T, D]."""
    return torch.addcmul(per_frame(shift, x), x, 1 + per_frame(scale, x))


def gated_residual(x: Tensor, gate: Tensor, y: Tensor) -> Tensor:
    """x + gate * y, x and y [B, T, ..., D], per-frame gate [B, T, D]."""
    return torch.addcmul(x, per_frame(gate, y), y)


def timestep_embedding(level: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of a noise level in [0, 1] (scaled to [0, 1000] as in DiT)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=level.device, dtype=torch.float32) / half)
    ang = level.float()[..., None] * 1000.0 * freqs
    return torch.cat([ang.cos(), ang.sin()], dim=-1)


class Conditioning(nn.Module):
    """Per-frame conditioning vector from the frame's noise level and the action that led to it."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        D = cfg.width
        self.noise_mlp = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, D))
        self.discrete = cfg.action_type == "discrete"
        if self.discrete:
            self.action_emb = nn.Embedding(cfg.num_actions + 1, D)  # last row: "no action"
            self.num_actions = cfg.num_actions
        else:
            self.action_mlp = nn.Sequential(nn.Linear(cfg.action_dim, D), nn.SiLU(), nn.Linear(D, D))
            self.no_action = nn.Parameter(torch.zeros(D))

    def forward(self, noise_levels: Tensor, actions: Tensor) -> Tensor:
        c = self.noise_mlp(timestep_embedding(noise_levels, self.noise_mlp[0].in_features))
        if self.discrete:
            idx = torch.where(actions < 0, torch.full_like(actions, self.num_actions), actions)
            return c + self.action_emb(idx)
        none = torch.isnan(actions).all(-1, keepdim=True)
        a = self.action_mlp(torch.nan_to_num(actions))
        return c + torch.where(none, self.no_action.to(a.dtype), a)


class Layer(nn.Module):
    """One trunk layer: [BlockSSM] -> [FrameLocalAttention] -> MLP, each sublayer adaLN-Zero gated."""

    def __init__(self, cfg: ModelConfig, ssm_block: tuple[int, int] | None):
        super().__init__()
        D = cfg.width
        self.ssm = None if ssm_block is None else BlockSSM(
            D, ssm_block, cfg.grid, d_state=cfg.ssm_state, headdim=cfg.ssm_headdim, expand=cfg.ssm_expand,
            d_conv=cfg.ssm_conv, chunk_size=cfg.ssm_chunk, dt_init=cfg.ssm_dt_init)
        self.attn = FrameLocalAttention(D, cfg.attn_heads, cfg.attn_window) if cfg.attention else None
        hidden = int(cfg.mlp_ratio * D)
        self.mlp = nn.Sequential(nn.Linear(D, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, D))
        self.sublayers = int(self.ssm is not None) + int(self.attn is not None) + 1
        self.norms = nn.ModuleList(nn.LayerNorm(D, elementwise_affine=False, eps=1e-6) for _ in range(self.sublayers))
        self.ada = nn.Linear(D, 3 * self.sublayers * D)  # (shift, scale, gate) per sublayer
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    @torch.no_grad()
    def shut_gates(self) -> None:
        """Zero every sublayer's adaLN gate: the layer becomes the identity map (adaLN-Zero's start)
        whatever its sublayers compute. A layer copied from a trained one and shut this way is a new
        layer that draws nothing yet but whose sublayers already compute something."""
        D = self.ada.in_features
        for i in range(self.sublayers):  # rows of (shift, scale, gate) per sublayer, as forward chunks them
            self.ada.weight[(3 * i + 2) * D:(3 * i + 3) * D].zero_()
            self.ada.bias[(3 * i + 2) * D:(3 * i + 3) * D].zero_()

    def init_state(self, batch: int, tokens: int, device, dtype) -> dict[str, Tensor]:
        state = {}
        if self.ssm is not None:
            state.update(self.ssm.init_state(batch, device, dtype))
        if self.attn is not None:
            state.update(self.attn.init_state(batch, tokens, device, dtype))
        return state

    def forward(self, x: Tensor, c: Tensor, t0: Tensor, state: dict[str, Tensor], update_state: bool,
                commit_frames: int | None = None, blind_attention: Tensor | None = None):
        """x: [B, T, g, g, D]; c: [B, T, D] (already SiLU'd). Returns (x, new state or None): the
        state after the first `commit_frames` frames (default: all T)."""
        mods = self.ada(c).chunk(3 * self.sublayers, dim=-1)
        new_state, i = {}, 0

        def sublayer_input():
            return modulate(self.norms[i](x), mods[3 * i], mods[3 * i + 1])

        if self.ssm is not None:
            y, s = self.ssm(sublayer_input(), {"ssm": state["ssm"], "conv": state["conv"]}, commit_frames, update_state)
            x = gated_residual(x, mods[3 * i + 2], y)
            if s is not None:
                new_state.update(s)
            i += 1
        if self.attn is not None:
            B, T, g = x.shape[:3]
            h = rearrange(sublayer_input(), "b t h w d -> b t (h w) d")
            y, s = self.attn(h, t0, {"k": state["k"], "v": state["v"], "time": state["time"]}, update_state,
                             commit_frames, blind_attention)
            x = gated_residual(x, mods[3 * i + 2], rearrange(y, "b t (h w) d -> b t h w d", h=g))
            if s is not None:
                new_state.update(s)
            i += 1
        x = gated_residual(x, mods[3 * i + 2], self.mlp(sublayer_input()))
        return x, (new_state if update_state else None)


@dataclass
class ModelOutput:
    prediction: Tensor  # [B, T, C, H, W] the denoiser's target (see worldsim.diffusion)
    reward: Tensor  # [B, T] reward of the step that produced each frame
    termination: Tensor  # [B, T] logit that this frame ends the episode
    cache: InferenceCache | None  # the memory after these frames (when asked for)


class LSSVWM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        D, p, C = cfg.width, cfg.patch_size, cfg.channels
        self.patch_in = nn.Linear(C * p * p, D)
        self.pos = nn.Parameter(torch.randn(cfg.grid, cfg.grid, D) * 0.02)
        self.cond = Conditioning(cfg)
        blocks = cfg.ssm_blocks or (None,) * cfg.depth
        self.layers = nn.ModuleList(Layer(cfg, b) for b in blocks)
        self.out_norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.out_ada = nn.Linear(D, 2 * D)
        self.patch_out = nn.Linear(D, C * p * p)
        self.heads = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, 2))  # reward, termination logit
        for m in (self.out_ada, self.patch_out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> InferenceCache:
        device = device or self.pos.device
        n = self.cfg.tokens_per_frame
        return InferenceCache(torch.zeros(batch, dtype=torch.long, device=device),
                              [layer.init_state(batch, n, device, dtype) for layer in self.layers])

    def forward(self, frames: Tensor, noise_levels: Tensor, actions: Tensor,
                cache: InferenceCache | None = None, update_cache: bool = False,
                commit_frames: int | None = None, blind_attention: Tensor | None = None) -> ModelOutput:
        """frames [B, T, C, H, W] in model space (~[-1, 1], noised); noise_levels [B, T] in [0, 1];
        actions [B, T] (or [B, T, A]). `cache` is the memory of all earlier frames (None: these
        frames start the video). With update_cache, also return the memory after these frames, or
        after only the first `commit_frames` of them: the later ones then see those frames but do
        not enter the memory (the simulator commits a generated frame in the next frame's first
        sampler pass this way). `blind_attention` [B] bool (training only): those videos' attention
        sees no frame but each frame itself, so only the SSM carries their past."""
        B, T = frames.shape[:2]
        commit = T if commit_frames is None else commit_frames
        if not 1 <= commit <= T:
            raise ValueError(f"commit_frames must be in [1, {T}] for {T} frames, got {commit_frames}")
        p = self.cfg.patch_size
        if cache is None:
            cache = self.init_cache(B, frames.device)
        x = rearrange(frames, "b t c (h p1) (w p2) -> b t h w (c p1 p2)", p1=p, p2=p)
        x = self.patch_in(x) + self.pos
        c = F.silu(self.cond(noise_levels, actions))  # [B, T, D]
        new_layers = []
        for layer, state in zip(self.layers, cache.layers):
            x, s = layer(x, c, cache.t, state, update_cache, commit, blind_attention)
            new_layers.append(s)
        shift, scale = self.out_ada(c).chunk(2, dim=-1)
        h = modulate(self.out_norm(x), shift, scale)
        pred = rearrange(self.patch_out(h), "b t h w (c p1 p2) -> b t c (h p1) (w p2)", p1=p, p2=p)
        reward, term = self.heads(x.mean(dim=(2, 3))).unbind(-1)
        new_cache = InferenceCache(cache.t + commit, new_layers) if update_cache else None
        return ModelOutput(pred, reward, term, new_cache)
