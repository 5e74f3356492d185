"""PixelRefiner: convolutions at pixel resolution after the patch transformer's linear read-out.

A token's linear read-out (`LSSVWM.patch_out`) draws its p x p pixels from that token alone: no
pixel sees its neighbours across a patch border, nor the noisy frame it is denoising, except
through the token. Where the next frame's error sits (BENCHMARKS.md, "Where the next frame's
error is") is precision in every kind of frame alike, and smaller patches lift it at 6.5x the
training FLOPs; this head adds pixel-level mixing at a few percent of the model's FLOPs (U-ViT ends
its transformer with a 3x3 convolution for the same reason, grown here into a small residual block).

    tokens h [B, T, g, g, D] -> linear -> per-pixel features [B*T, F, H, W]
    cat(features, linear prediction, noisy frame) -> conv3x3 -> SiLU -> conv3x3 -> SiLU -> conv3x3
    prediction = linear prediction + that (the last conv starts at zero: the model starts as without it)

Per frame and causal: it reads only its own frame, so the parallel pass and the frame-by-frame
engine still agree (tests/model/test_exactness.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class PixelRefiner(nn.Module):
    def __init__(self, channels: int, features: int, width: int, patch: int):
        super().__init__()
        self.patch = patch
        self.features_out = nn.Linear(width, features * patch * patch)
        self.conv_in = nn.Conv2d(features + 2 * channels, features, 3, padding=1)
        self.conv_mid = nn.Conv2d(features, features, 3, padding=1)
        self.conv_out = nn.Conv2d(features, channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, h: Tensor, prediction: Tensor, frames: Tensor) -> Tensor:
        """h [B, T, g, g, D] the read-out's tokens; prediction (the linear read-out) and frames (the
        noisy input) [B, T, C, H, W]. Returns the refined prediction [B, T, C, H, W]."""
        B, p = h.shape[0], self.patch
        features = rearrange(self.features_out(h), "b t h w (f p1 p2) -> (b t) f (h p1) (w p2)", p1=p, p2=p)
        pixels = [v.flatten(0, 1).to(features.dtype) for v in (prediction, frames)]
        x = torch.cat([features, *pixels], 1)
        x = F.silu(self.conv_mid(F.silu(self.conv_in(x))))
        return prediction + rearrange(self.conv_out(x), "(b t) c h w -> b t c h w", b=B)
