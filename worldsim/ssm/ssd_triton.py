"""The SSD scan on CUDA through mamba-ssm's Triton Mamba-2 kernels.

mamba-ssm is optional and imported lazily, on first use: CPU machines never need it, and its import
pulls in triton and transformers. Without its compiled Mamba-1 extension the Mamba-2 kernels still
work (scripts/setup_cuda_offline.sh installs it that way). Shapes and dtypes as ``worldsim.ssm``.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor


@functools.cache
def import_error() -> str | None:
    """None when mamba-ssm's Triton kernels import here, else why they do not."""
    try:
        import mamba_ssm.ops.triton.selective_state_update  # noqa: F401
        import mamba_ssm.ops.triton.ssd_combined  # noqa: F401
    except Exception as e:  # ImportError, or whatever a triton/torch version clash raises on import
        return f"{type(e).__name__}: {e}"
    return None


def ssd_scan(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, *, chunk_size: int = 64,
             initial_state: Tensor | None = None, final_state: bool = True) -> tuple[Tensor, Tensor | None]:
    """Returns y [b, l, h, p] in x's dtype and the final state [b, h, p, n] in float32 (or None)."""
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined

    # The kernels multiply C by B in their own dtype, so both follow x; dt and A stay float32 (the
    # kernels turn them into float32 log-decays anyway, so bf16 dt would only lose precision).
    out = mamba_chunk_scan_combined(
        x, dt.to(torch.float32), A.to(torch.float32), B.to(x.dtype), C.to(x.dtype), chunk_size,
        initial_states=None if initial_state is None else initial_state.to(torch.float32),
        dt_softplus=False, return_final_states=final_state)
    return out if final_state else (out, None)


def ssd_step(state: Tensor, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    """One token. Returns y [b, h, p] in x's dtype and a new float32 state; ``state`` is untouched."""
    from mamba_ssm.ops.triton.selective_state_update import selective_state_update

    h, p = x.shape[1:]
    n = B.shape[-1]
    # The kernel updates its state in place: give it a float32 copy.
    new_state = state.to(torch.float32, memory_format=torch.contiguous_format, copy=True)
    # Its per-channel parameters are [h, p] / [h, p, n]. Expanded with stride 0 over p (and n) they
    # take its TIE_HDIM path, one dt and A per head as in Mamba2.step. dt_bias and D must be tensors
    # in mamba-ssm 2.3.2 (None crashes its launcher), so they are zeros here.
    zeros_hp = torch.zeros(h, 1, device=x.device, dtype=torch.float32).expand(h, p)
    y = selective_state_update(
        new_state, x, dt.to(torch.float32)[..., None].expand(-1, h, p),
        A.to(torch.float32)[:, None, None].expand(h, p, n), B, C,
        D=zeros_hp, dt_bias=zeros_hp, dt_softplus=False)
    return y, new_state
