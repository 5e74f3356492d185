"""BlockSSM: the paper's block-wise Mamba-2 scan over a video's token grid.

A frame's g x g token grid is cut into spatial blocks of (b_h, b_w) tokens. Each block is its own
sequence through time -- its tokens of frame 0 (raster order), then of frame 1, ... -- scanned
with its own Mamba-2 state, so temporal neighbours are only b_h*b_w steps apart and the state
capacity grows with the number of blocks. (g, g) is one scan over the flattened video (the
Mamba2 baseline); (1, 1) makes every token position its own sequence.

The layer is Mamba-2 (mamba_ssm's mamba2_simple.py): in_proj -> short causal depthwise conv ->
SSD scan with per-head dt, A, D -> gated RMSNorm -> out_proj. Its carried state is the SSD state
per block plus the conv's last (d_conv - 1) inputs, so a video processed in temporal segments with
the state carried equals one pass over the whole video.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from worldsim.model.norm import RMSNorm
from worldsim.ssm import ssd_scan, ssd_step


class BlockSSM(nn.Module):
    def __init__(self, width: int, block: tuple[int, int], grid: int, d_state: int = 64, headdim: int = 32,
                 expand: int = 2, d_conv: int = 4, chunk_size: int = 64, backend: str = "auto",
                 dt_init: str = "step"):
        super().__init__()
        self.block, self.grid = tuple(block), grid
        self.d_inner = expand * width
        self.nheads = self.d_inner // headdim
        self.headdim, self.d_state, self.d_conv = headdim, d_state, d_conv
        self.chunk_size, self.backend = chunk_size, backend
        self.conv_dim = self.d_inner + 2 * d_state  # x, B, C go through the conv (one group)
        self.in_proj = nn.Linear(width, 2 * self.d_inner + 2 * d_state + self.nheads, bias=False)
        self.conv = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, groups=self.conv_dim)
        # dt initialised log-uniform in [1e-3, 1e-1] (through softplus), A in [1, 16] -- as Mamba-2 --
        # per scan step ("step"), or per frame ("frame": shared by the block's b_h*b_w steps of a
        # frame), so that the initial horizons 1/(dt*A) are 0.6-1000 frames instead of 0.6-1000
        # tokens (0.01-16 frames for an 8x8 block)
        if dt_init not in ("step", "frame"):
            raise ValueError(f"dt_init must be 'step' or 'frame', got {dt_init!r}")
        steps = self.block[0] * self.block[1] if dt_init == "frame" else 1
        dt = torch.exp(torch.rand(self.nheads) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)) / steps
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = RMSNorm(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, width, bias=False)

    @property
    def num_blocks(self) -> int:
        return (self.grid // self.block[0]) * (self.grid // self.block[1])

    def init_state(self, batch: int, device, dtype) -> dict[str, Tensor]:
        nb = self.num_blocks
        return {"ssm": torch.zeros(batch, nb, self.nheads, self.headdim, self.d_state, device=device, dtype=torch.float32),
                "conv": torch.zeros(batch, nb, self.d_conv - 1, self.conv_dim, device=device, dtype=dtype)}

    def forward(self, x: Tensor, state: dict[str, Tensor], commit_frames: int | None = None,
                update_state: bool = True):
        """x: [B, T, g, g, D] tokens of T consecutive frames; state from init_state or a previous call.
        Returns (y [B, T, g, g, D], the state after the first `commit_frames` frames (default: all T),
        or None without `update_state`: a read-only pass, which then does not form it)."""
        B, T = x.shape[:2]
        bh, bw = self.block
        split = (T if commit_frames is None else commit_frames) * bh * bw  # tokens per block that enter the state
        # each spatial block becomes a sequence through time: [(B blocks), T*bh*bw, D]
        seq = rearrange(x, "b t (nh bh) (nw bw) d -> (b nh nw) (t bh bw) d", bh=bh, bw=bw)
        z, xbc, dt = self.in_proj(seq).split([self.d_inner, self.conv_dim, self.nheads], dim=-1)

        conv_in = torch.cat([state["conv"].flatten(0, 1).to(xbc.dtype), xbc], dim=1)  # prepend the carried tail
        # the last d_conv - 1 inputs of the committed tokens; contiguous, as every state this layer
        # returns, so a compiled step sees one memory layout whatever pass formed it
        new_conv = conv_in[:, split:split + self.d_conv - 1].contiguous()
        xbc = F.silu(self.conv(conv_in.transpose(1, 2)).transpose(1, 2))  # causal: valid conv over tail + new
        xs, Bm, Cm = xbc.split([self.d_inner, self.d_state, self.d_state], dim=-1)

        A = -torch.exp(self.A_log.float())
        dt = F.softplus(dt.float() + self.dt_bias.float())  # [Bn, L, h]
        xs = rearrange(xs, "n l (h p) -> n l h p", p=self.headdim)
        h0 = state["ssm"].flatten(0, 1)
        if update_state:  # the committed tokens, then the read-only rest from the state they leave
            y, h1 = self._scan(xs[:, :split], dt[:, :split], A, Bm[:, :split], Cm[:, :split], h0)
            if split < xs.shape[1]:
                rest, _ = self._scan(xs[:, split:], dt[:, split:], A, Bm[:, split:], Cm[:, split:], h1, final_state=False)
                y = torch.cat([y, rest], dim=1)
        else:
            y, _ = self._scan(xs, dt, A, Bm, Cm, h0, final_state=False)
        y = y + xs * self.D.to(xs.dtype)[:, None]
        y = self.norm(rearrange(y, "n l h p -> n l (h p)") * F.silu(z))  # gated RMSNorm
        out = rearrange(self.out_proj(y), "(b nh nw) (t bh bw) d -> b t (nh bh) (nw bw) d",
                        b=B, nh=self.grid // bh, bh=bh, bw=bw, t=T)
        if not update_state:
            return out, None
        nb = self.num_blocks
        return out, {"ssm": h1.view(B, nb, *h1.shape[1:]), "conv": new_conv.reshape(B, nb, *new_conv.shape[1:])}

    def _scan(self, xs: Tensor, dt: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, h0: Tensor,
              final_state: bool = True) -> tuple[Tensor, Tensor | None]:
        """SSD over [n, l, ...] from state h0: (y [n, l, h, p], final state or None)."""
        if xs.shape[1] == 1:  # one token per block and frame: the single-step recurrence
            y, h1 = ssd_step(h0, xs[:, 0], dt[:, 0], A, Bm[:, 0, None], Cm[:, 0, None], backend=self.backend)
            return y[:, None], h1 if final_state else None
        return ssd_scan(xs, dt, A, Bm[:, :, None], Cm[:, :, None], chunk_size=self.chunk_size,
                        initial_state=h0, final_state=final_state, backend=self.backend)
