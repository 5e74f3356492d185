"""The SSD (Mamba-2) scan in plain torch: the reference beside the Triton kernels.

The algorithm is mamba-ssm's ``ssd_minimal.py`` (Listing 1 of the Mamba-2 paper): cut the sequence
into chunks of Q steps; inside a chunk the scan is a masked (Q x Q) attention-like product; across
chunks only the [h, p, n] states travel, through a small recurrence. Everything runs in float32,
whatever the inputs' dtype or an enclosing autocast, because these sums of decayed products drift
quickly in bf16. Differentiable by autograd.

Shapes: b batch, l length, h heads, p head dim, g groups of heads sharing B and C (h = g * r),
n state size, c chunks, Q chunk length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

# Chunks per segment. The inter-chunk recurrence is a (c+1) x (c+1) decay matrix per head, so one
# pass over a long sequence would cost O((l/Q)^2); segments of at most this many chunks, carrying the
# state from one to the next, keep memory and time linear in l (64 chunks of 64 = 4096 steps).
_SEGMENT_CHUNKS = 64


def segsum(a: Tensor) -> Tensor:
    """[..., T] -> [..., T, T]: out[i, j] = a[j+1] + ... + a[i] for i >= j, -inf above the diagonal.

    exp(segsum(log decays)) is the lower-triangular matrix of decays from step j to step i. Summed
    by a masked cumsum rather than as a difference of cumsums, so no large terms cancel."""
    T = a.size(-1)
    a = a[..., None].expand(*a.shape, T)  # [..., T(i), T(j)] = a[i]
    strict = torch.ones(T, T, dtype=torch.bool, device=a.device).tril(-1)
    out = a.masked_fill(~strict, 0).cumsum(-2)
    lower = torch.ones(T, T, dtype=torch.bool, device=a.device).tril(0)
    return out.masked_fill(~lower, -torch.inf)


def _scan_chunks(xdt: Tensor, a: Tensor, B: Tensor, C: Tensor, state: Tensor,
                 final_state: bool = True) -> tuple[Tensor, Tensor | None]:
    """One segment, float32. xdt [b, c, Q, h, p] (x * dt); a [b, c, Q, h] (dt * A, the log decay);
    B, C [b, c, Q, g, n]; state [b, h, p, n] entering the segment.
    Returns y [b, c, Q, h, p] and the state leaving it [b, h, p, n] (None unless `final_state`)."""
    p, (g, n) = xdt.shape[-1], B.shape[-2:]
    a = rearrange(a, "b c q h -> b h c q")
    a_cs = a.cumsum(-1)  # [b, h, c, Q]
    xg = rearrange(xdt, "b c q (g r) p -> b c g r q p", g=g)

    # 1. Inside each chunk (the diagonal blocks): y_i = sum_{j<=i} (C_i . B_j) decay(j->i) x_j dt_j.
    decay_in = rearrange(torch.exp(segsum(a)), "b (g r) c i j -> b c g r i j", g=g)
    CB = torch.einsum("bcign,bcjgn->bcgij", C, B)[:, :, :, None]  # [b, c, g, 1, Q, Q]
    y = (CB * decay_in) @ xg  # [b, c, g, r, Q, p]

    # 2. The state each chunk builds from its own inputs: sum_j decay(j->end) x_j dt_j (x) B_j.
    decay_to_end = torch.exp(a_cs[..., -1:] - a_cs)  # [b, h, c, Q]
    xd = rearrange(xg * rearrange(decay_to_end, "b (g r) c q -> b c g r q 1", g=g), "b c g r q p -> b c g (r p) q")
    Bg = rearrange(B, "b c q g n -> b c g q n")

    # 3. Across chunks: the state entering chunk k is the decayed sum of the incoming state and the
    # states of chunks 0..k-1. Row k of exp(segsum) over the chunks' total decays weighs them.
    if xdt.shape[1] == 1:
        # One chunk (every inference step): it enters with `state`, and leaves with that decayed
        # plus its own. The states are the largest tensors of a generation step (a state per block
        # and head), so the state leaving is formed in one fused matmul-add, and only when asked
        # for: a pass that commits nothing does not need it.
        states_in = rearrange(state, "b h p n -> b h 1 (p n)")
        final = None
        if final_state:
            decayed = torch.exp(a_cs[:, :, 0, -1])[..., None, None] * state  # [b, h, p, n]
            decayed = rearrange(decayed, "b (g r) p n -> (b g) (r p) n", g=g)
            final = decayed.baddbmm_(xd.flatten(0, 2), Bg.flatten(0, 2))  # in place: no copy of the states
            final = rearrange(final, "(b g) (r p) n -> b (g r) p n", g=g, p=p)
    else:
        chunk_states = rearrange(xd @ Bg, "b c g (r p) n -> b (g r) c (p n)", p=p)  # [b, h, c, p*n]
        states = torch.cat([rearrange(state, "b h p n -> b h 1 (p n)"), chunk_states], dim=2)
        decay_across = torch.exp(segsum(F.pad(a_cs[..., -1], (1, 0))))  # [b, h, c+1, c+1]
        states = decay_across @ states  # [b, h, c+1, p*n]: entering each chunk, then leaving the last
        states_in = states[:, :, :-1]
        final = rearrange(states[:, :, -1], "b h (p n) -> b h p n", n=n).contiguous() if final_state else None

    # 4. What the entering state contributes to each step: C_i . state, decayed to step i.
    states_in = rearrange(states_in, "b (g r) c (p n) -> b c g n (r p)", g=g, n=n)
    y_off = rearrange(C, "b c q g n -> b c g q n") @ states_in  # [b, c, g, Q, r*p]
    y_off = rearrange(y_off, "b c g q (r p) -> b c g r q p", p=p)
    y = y + y_off * rearrange(torch.exp(a_cs), "b (g r) c q -> b c g r q 1", g=g)
    return rearrange(y, "b c g r q p -> b c q (g r) p"), final


def _pad_time(t: Tensor, pad: int) -> Tensor:
    """Zero-pads dim 1 (time) of t at the end."""
    return F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad))


def ssd_scan(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, *, chunk_size: int = 64,
             initial_state: Tensor | None = None, final_state: bool = True) -> tuple[Tensor, Tensor | None]:
    """Chunked scan; shapes and recurrence as ``worldsim.ssm.ssd_scan`` (which checks them).
    Returns y [b, l, h, p] in x's dtype and the final state [b, h, p, n] in float32 (None unless
    `final_state`)."""
    b, l, h, p = x.shape
    n = B.shape[-1]
    f32 = torch.float32
    with torch.autocast(x.device.type, enabled=False):
        dt = dt.to(f32)
        xdt = x.to(f32) * dt[..., None]
        a = dt * A.to(f32)
        B, C = B.to(f32), C.to(f32)
        if initial_state is None:
            state = torch.zeros(b, h, p, n, dtype=f32, device=x.device)
        else:
            state = initial_state.to(f32)
        # Padded steps have dt = 0: decay exp(0) = 1 and no input, so they leave the state as it was
        # and the final state is exact; their outputs are cut off below.
        # A sequence shorter than a chunk (an inference step: one frame of a small block) gets a
        # chunk just large enough, not a padded full one: the result is the same, the work l^2.
        chunk_size = min(chunk_size, 1 << max(0, (l - 1).bit_length()))
        pad = -l % chunk_size
        xdt, a, B, C = (rearrange(_pad_time(t, pad), "b (c q) ... -> b c q ...", q=chunk_size)
                        for t in (xdt, a, B, C))
        ys, chunks = [], xdt.shape[1]
        for s in range(0, chunks, _SEGMENT_CHUNKS):
            seg = slice(s, s + _SEGMENT_CHUNKS)
            last = s + _SEGMENT_CHUNKS >= chunks
            y, state = _scan_chunks(xdt[:, seg], a[:, seg], B[:, seg], C[:, seg], state, final_state or not last)
            ys.append(y)
        y = rearrange(torch.cat(ys, dim=1), "b c q h p -> b (c q) h p")[:, :l]
    return y.to(x.dtype), state


def ssd_step(state: Tensor, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    """The recurrence for one token, float32; shapes as ``worldsim.ssm.ssd_step``.
    state [b, h, p, n]; x [b, h, p]; dt [b, h]; A [h]; B, C [b, g, n].
    Returns y [b, h, p] in x's dtype and a new state [b, h, p, n] (float32); ``state`` is untouched."""
    f32 = torch.float32
    r = x.shape[1] // B.shape[1]
    with torch.autocast(x.device.type, enabled=False):
        dt = dt.to(f32)
        decay = torch.exp(dt * A.to(f32))  # [b, h]
        # Head i reads group i // r, as Mamba-2's "b g n -> b (g r) n".
        Bh = B.to(f32).repeat_interleave(r, dim=1)  # [b, h, n]
        Ch = C.to(f32).repeat_interleave(r, dim=1)
        xdt = x.to(f32) * dt[..., None]  # [b, h, p]
        new_state = state.to(f32) * decay[..., None, None] + xdt[..., None] * Bh[:, :, None, :]
        y = (new_state @ Ch[..., None]).squeeze(-1)  # [b, h, p]
    return y.to(x.dtype), new_state
