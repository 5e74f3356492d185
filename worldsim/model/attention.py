"""Frame-local attention: each token sees its own frame (both ways) and the k frames before it.

One mechanism covers the paper's three attention flavours by its `window`:
  window = k (small)   frame-local attention (LSSVWM, Mamba2 + local attention)
  window = k (large)   sliding-window causal attention (the "causal transformer, 192 frames")
  window = None        full causal attention (memory grows with the episode)

Keys carry their absolute frame index: time is encoded by a rotary embedding over frames (so
attention is relative in time and cached keys stay valid). A windowed layer puts its ring of the
last k frames in time order before the new frames and gives each query frame its k + 1 key frames
as a sliding window over that run, so the parallel training pass, a pass after carried memory and
a generation step are one computation; full attention masks a growing cache by frame index.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from worldsim.model.norm import RMSNorm

# With a boolean mask on CUDA, PyTorch may pick cuDNN attention, whose per-call CPU cost (~1.7 ms
# measured on an H100) dominated small training steps; the memory-efficient kernel takes masks too.
_CUDA_BACKENDS = [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def rotary(x: Tensor, t: Tensor) -> Tensor:
    """Rotate x [B, T, N, H, D] by its frame index t [B, T] (rotary embedding over time).

    Angles are formed in float64 so frame 10,000 rotates as precisely as frame 10.
    """
    d = x.shape[-1]
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float64) / d))
    ang = t.to(torch.float64)[..., None] * inv_freq  # [B, T, D/2]
    cos = ang.cos().to(x.dtype)[:, :, None, None, :]
    sin = ang.sin().to(x.dtype)[:, :, None, None, :]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


class FrameLocalAttention(nn.Module):
    def __init__(self, width: int, heads: int, window: int | None, query_chunk: int = 16):
        super().__init__()
        self.heads, self.window = heads, window
        self.query_chunk = max(query_chunk, window or 0)  # frames of queries per chunked attention call
        # Per query frame, a chunk of query frames scores (chunk + k) key frames where k + 1 are
        # seen. A pass of more than k frames under a short window (training, prefill) instead
        # gives each query frame its own k + 1 key frames, at the price of copying the keys k + 1
        # times; a generation step of one or two frames, a long window or full attention is chunked.
        self.banded = window is not None and window < query_chunk
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.q_norm = RMSNorm(width // heads)
        self.k_norm = RMSNorm(width // heads)

    def init_state(self, batch: int, tokens: int, device, dtype) -> dict[str, Tensor]:
        frames = self.window or 0  # full attention starts empty and grows
        hd = self.qkv.in_features // self.heads
        kv = torch.zeros(batch, frames, tokens, self.heads, hd, device=device, dtype=dtype)
        return {"k": kv, "v": kv.clone(), "time": torch.full((batch, frames), -1, dtype=torch.long, device=device)}

    def forward(self, x: Tensor, t0: Tensor, state: dict[str, Tensor], update_state: bool,
                commit_frames: int | None = None, blind: Tensor | None = None):
        """x: [B, T, N, D] tokens of T consecutive frames, whose first frame has index t0 [B].

        `state` holds the keys/values of earlier frames (ring of `window` frames, or all of them).
        `blind` [B] bool (training only): those videos' queries see their own frame and no other,
        so whatever they need of the past must come from elsewhere (the SSM).
        Returns (y [B, T, N, D], new state or None); the new state holds the first `commit_frames`
        of these frames (default: all T).
        """
        B, T, N, D = x.shape
        q, k, v = rearrange(self.qkv(x), "b t n (three h d) -> three b t n h d", three=3, h=self.heads)
        q, k = self.q_norm(q), self.k_norm(k)
        time = t0[:, None] + torch.arange(T, device=x.device)  # [B, T]
        q, k = rotary(q, time), rotary(k, time)
        attend = self._banded if self.banded and T > self.window else self._chunked
        with sdpa_kernel(_CUDA_BACKENDS) if x.is_cuda else contextlib.nullcontext():
            y = attend(q, k, v, time, state, blind)
        y = self.proj(rearrange(y, "b t n h d -> b t n (h d)"))
        if not update_state:
            return y, None
        n = T if commit_frames is None else commit_frames
        return y, self._commit(state, k[:, :n], v[:, :n], time[:, :n])

    def _banded(self, q: Tensor, k: Tensor, v: Tensor, time: Tensor, state: dict[str, Tensor],
                blind: Tensor | None) -> Tensor:
        """Frame-local attention: each query frame against exactly its own window of key frames.

        The ring, put in time order (empty slots, time -1, first), followed by the new frames is a
        run of W + T consecutive frames; frame j's keys are the W + 1 of them ending at j, a sliding
        window (`unfold`). So there is no (T x T)-frame mask and no key is scored only to be masked
        out: T * (W + 1) frame pairs, where query chunks against a causal band score several times
        that. The only mask left marks empty slots. Returns [B, T, N, H, d]."""
        B, T, N = q.shape[:3]
        W = self.window
        order = state["time"].argsort(dim=1)  # [B, W]: the ring's slots, oldest frame first
        ring = lambda x: torch.take_along_dim(x, order[:, :, None, None, None], dim=1)  # noqa: E731
        k_run = torch.cat([ring(state["k"]), k.to(state["k"].dtype)], dim=1)  # [B, W + T, N, H, d]
        v_run = torch.cat([ring(state["v"]), v.to(state["v"].dtype)], dim=1)
        t_run = torch.cat([state["time"].gather(1, order), time], dim=1)  # [B, W + T]
        windows = lambda x: rearrange(x.unfold(1, W + 1, 1), "b t n h d w -> (b t) h (w n) d")  # noqa: E731
        filled = t_run.unfold(1, W + 1, 1) >= 0  # [B, T, W + 1]; the last key frame is the query's own
        if blind is not None:
            filled = filled & (~blind[:, None, None] | (torch.arange(W + 1, device=q.device) == W))
        mask = filled.repeat_interleave(N, dim=2).view(B * T, 1, 1, (W + 1) * N)  # broadcast over queries
        y = F.scaled_dot_product_attention(rearrange(q, "b t n h d -> (b t) h n d"), windows(k_run),
                                           windows(v_run), attn_mask=mask)
        return rearrange(y, "(b t) h n d -> b t n h d", b=B)

    def _chunked(self, q: Tensor, k: Tensor, v: Tensor, time: Tensor, state: dict[str, Tensor],
                 blind: Tensor | None) -> Tensor:
        """Chunks of query frames against the cached and new frames they may see, under a mask
        built from frame indices (so a ring in any slot order or a growing cache both work); the
        chunks keep the (queries x keys) mask bounded. Returns [B, T, N, H, d]."""
        B, T, N = q.shape[:3]
        # in the memory's dtype: a bfloat16 simulator keeps its keys so, as attention reads them
        k_all = torch.cat([state["k"], k.to(state["k"].dtype)], dim=1)  # [B, F + T, N, H, d]
        v_all = torch.cat([state["v"], v.to(state["v"].dtype)], dim=1)
        time_all = torch.cat([state["time"], time], dim=1)  # [B, F + T], -1 = empty slot
        past = state["time"].shape[1]
        outs = []
        for s in range(0, T, self.query_chunk):
            e = min(T, s + self.query_chunk)
            # keys this chunk can see: the cached frames, then new frames up to the chunk's end
            lo = past + (0 if self.window is None else max(0, s - self.window))
            if lo == past:  # one contiguous run (always so in a generation step): a view, no gather
                keys = slice(0, past + e)
            else:
                keys = torch.cat([torch.arange(past, device=q.device), torch.arange(lo, past + e, device=q.device)])
            dt = time[:, s:e, None] - time_all[:, None, keys]  # [B, Tq, Tk] frame distance
            allowed = (time_all[:, None, keys] >= 0) & (dt >= 0)
            if self.window is not None:
                allowed &= dt <= self.window
            if blind is not None:
                allowed &= (dt == 0) | ~blind[:, None, None]
            # [B, 1, Tq*N, Tk*N]; one query frame (a generation step) broadcasts one row over its tokens
            mask = allowed.repeat_interleave(N, 2)[:, None]
            if e - s > 1:
                mask = mask.repeat_interleave(N, 2)
            qc = rearrange(q[:, s:e], "b t n h d -> b h (t n) d")
            kc = rearrange(k_all[:, keys], "b t n h d -> b h (t n) d")
            vc = rearrange(v_all[:, keys], "b t n h d -> b h (t n) d")
            outs.append(F.scaled_dot_product_attention(qc, kc, vc, attn_mask=mask))
        return rearrange(torch.cat(outs, dim=2), "b h (t n) d -> b t n h d", n=N)

    def _commit(self, state, k, v, time):
        if self.window is None:  # full causal attention: the cache grows by T frames
            return {"k": torch.cat([state["k"], k.to(state["k"].dtype)], 1),
                    "v": torch.cat([state["v"], v.to(state["v"].dtype)], 1),
                    "time": torch.cat([state["time"], time], 1)}
        if self.window == 0:
            return state
        # ring of the last `window` frames: frame t lives in slot t % window
        keep = slice(max(0, time.shape[1] - self.window), None)
        slots = time[:, keep] % self.window  # [B, T']
        b = torch.arange(time.shape[0], device=time.device)[:, None]
        return {"k": state["k"].index_put((b, slots), k[:, keep].to(state["k"].dtype)),
                "v": state["v"].index_put((b, slots), v[:, keep].to(state["v"].dtype)),
                "time": state["time"].index_put((b, slots), time[:, keep])}
