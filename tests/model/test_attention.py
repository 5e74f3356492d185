"""FrameLocalAttention against plain dense attention under a frame mask."""

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from worldsim.model.attention import FrameLocalAttention, rotary


def dense_reference(attn: FrameLocalAttention, x: torch.Tensor, t0: torch.Tensor) -> torch.Tensor:
    """Every token against every token of the T frames, masked to frame distance [0, window]."""
    B, T, N, D = x.shape
    q, k, v = rearrange(attn.qkv(x), "b t n (three h d) -> three b t n h d", three=3, h=attn.heads)
    time = t0[:, None] + torch.arange(T)
    q, k = rotary(attn.q_norm(q), time), rotary(attn.k_norm(k), time)
    dt = time[:, :, None] - time[:, None, :]  # [B, Tq, Tk]
    allowed = (dt >= 0) & (dt <= (attn.window if attn.window is not None else T))
    mask = allowed.repeat_interleave(N, 1).repeat_interleave(N, 2)[:, None]
    flat = lambda z: rearrange(z, "b t n h d -> b h (t n) d")  # noqa: E731
    y = F.scaled_dot_product_attention(flat(q), flat(k), flat(v), attn_mask=mask)
    return attn.proj(rearrange(y, "b h (t n) d -> b t n (h d)", n=N))


@pytest.mark.parametrize("window", [0, 1, 3, 5, None])  # query_chunk 4: 5 and None take the chunked path
def test_one_pass_equals_dense_masked_attention(window):
    torch.manual_seed(0)
    attn = FrameLocalAttention(16, heads=2, window=window, query_chunk=4)
    x, t0 = torch.randn(2, 9, 4, 16), torch.tensor([0, 5])
    state = attn.init_state(2, 4, x.device, x.dtype)
    y, _ = attn(x, t0, state, update_state=False)
    torch.testing.assert_close(y, dense_reference(attn, x, t0), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("window", [1, 3, 5, None])
def test_carried_memory_equals_one_pass(window):
    """Frames 0..8 in one pass equal frames 0..4 committed, then 5..8 from the memory they left
    (a ring holds them in slot order t % window, not time order)."""
    torch.manual_seed(0)
    attn = FrameLocalAttention(16, heads=2, window=window, query_chunk=4)
    x, t0 = torch.randn(2, 9, 4, 16), torch.tensor([0, 11])
    empty = attn.init_state(2, 4, x.device, x.dtype)
    whole, _ = attn(x, t0, empty, update_state=False)
    first, memory = attn(x[:, :5], t0, empty, update_state=True)
    rest, _ = attn(x[:, 5:], t0 + 5, memory, update_state=False)
    torch.testing.assert_close(torch.cat([first, rest], 1), whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("window", [3, 5])
def test_the_order_of_ring_slots_does_not_matter(window):
    torch.manual_seed(0)
    attn = FrameLocalAttention(16, heads=2, window=window, query_chunk=4)
    x, t0 = torch.randn(1, 6, 4, 16), torch.tensor([0])
    # two frames committed: the ring also has empty slots
    _, memory = attn(x[:, :2], t0, attn.init_state(1, 4, x.device, x.dtype), update_state=True)
    perm = torch.randperm(window)
    shuffled = {name: m[:, perm] for name, m in memory.items()}
    a, _ = attn(x[:, 2:], t0 + 2, memory, update_state=False)
    b, _ = attn(x[:, 2:], t0 + 2, shuffled, update_state=False)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("window", [3, 5, None])  # banded, chunked, full
def test_blind_videos_see_each_frame_alone_and_the_others_are_untouched(window):
    """Blind attention (a training regularizer): video 0's queries see only their own frame, even
    with earlier frames in the carried memory; video 1, not blind, is the plain pass."""
    torch.manual_seed(0)
    attn = FrameLocalAttention(16, heads=2, window=window, query_chunk=4)
    x, t0 = torch.randn(2, 9, 4, 16), torch.tensor([0, 5])
    _, memory = attn(x[:, :3], t0, attn.init_state(2, 4, x.device, x.dtype), update_state=True)
    blind = torch.tensor([True, False])
    y, _ = attn(x[:, 3:], t0 + 3, memory, update_state=False, blind=blind)
    plain, _ = attn(x[:, 3:], t0 + 3, memory, update_state=False)
    alone = torch.cat([attn(x[:1, t:t + 1], t0[:1] + t, attn.init_state(1, 4, x.device, x.dtype), False)[0]
                       for t in range(3, 9)], 1)
    torch.testing.assert_close(y[:1], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y[1:], plain[1:], atol=1e-6, rtol=1e-6)
    assert (y[:1] - plain[:1]).abs().max() > 1e-2  # the memory mattered to the plain pass
