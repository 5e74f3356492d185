"""The SSM scan op (Mamba-2 / SSD), one function per use, two backends behind each.

- ``ssd_scan``: a whole sequence at once (training, prefill), with the state carried in and out,
  so consecutive segments of a video scan exactly as one pass.
- ``ssd_step``: one token (generation), from and to a state.

Backends: ``"torch"`` (``ssd_torch``: plain torch, any device, the reference) and ``"triton"``
(``ssd_triton``: mamba-ssm's fused Triton kernels, CUDA only). ``"auto"`` takes triton for CUDA
tensors when mamba-ssm imports, torch otherwise. Both keep states in float32.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from worldsim.ssm import ssd_torch, ssd_triton

__all__ = ["ssd_scan", "ssd_step", "available_backends"]

_BACKENDS = ("auto", "torch", "triton")


@functools.cache
def available_backends() -> tuple[str, ...]:
    """The backends usable on this machine: ("torch",) or ("torch", "triton"); triton needs CUDA
    and mamba-ssm's Triton kernels."""
    if torch.cuda.is_available() and ssd_triton.import_error() is None:
        return ("torch", "triton")
    return ("torch",)


def _resolve(backend: str, x: Tensor) -> str:
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if backend == "torch":
        return "torch"
    if not x.is_cuda:
        if backend == "triton":
            raise RuntimeError(f"backend='triton' needs CUDA tensors, got tensors on {x.device}; "
                               "use backend='torch' (or 'auto') there")
        return "torch"
    err = ssd_triton.import_error()
    if err is None:
        return "triton"
    if backend == "triton":
        raise RuntimeError(
            f"backend='triton' needs mamba-ssm's Triton kernels, which do not import here ({err}). "
            "Install them with `pip install 'worldsim[cuda]'`, or on an offline CUDA machine with "
            "`eval \"$(bash scripts/setup_cuda_offline.sh)\"`; or use backend='torch'.")
    return "torch"


def _check(cond: bool, what: str, **shapes: object) -> None:
    if not cond:
        raise ValueError(what + ": " + ", ".join(f"{k} {tuple(v.shape) if isinstance(v, Tensor) else v}"
                                                 for k, v in shapes.items()))


def ssd_scan(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, *, chunk_size: int = 64,
             initial_state: Tensor | None = None, final_state: bool = True,
             backend: str = "auto") -> tuple[Tensor, Tensor | None]:
    """x: [b, l, h, p]; dt: [b, l, h] (positive: already softplus'd, bias added); A: [h] (negative);
    B, C: [b, l, g, n] with h % g == 0 (heads grouped as in Mamba-2: head i reads group i // (h/g));
    initial_state: [b, h, p, n] or None (zeros).
    Returns y [b, l, h, p] (no D skip, no gating) in x's dtype, final_state [b, h, p, n] in float32
    (None with final_state=False: a read-only pass, which then skips forming it).
    Recurrence: state_t = exp(dt_t * A) * state_{t-1} + dt_t * x_t ⊗ B_t ;  y_t = state_t · C_t"""
    _check(x.dim() == 4, "x must be [b, l, h, p]", x=x)
    b, l, h, p = x.shape
    if l == 0:
        raise ValueError("ssd_scan needs at least one time step, got x of length 0")
    _check(dt.shape == (b, l, h), "dt must be [b, l, h] for x [b, l, h, p]", x=x, dt=dt)
    _check(A.shape == (h,), "A must be [h]", x=x, A=A)
    _check(B.dim() == 4 and B.shape[:2] == (b, l) and C.shape == B.shape,
           "B and C must be the same [b, l, g, n]", x=x, B=B, C=C)
    _check(h % B.shape[2] == 0, "the number of heads must be a multiple of the number of groups", x=x, B=B)
    _check(initial_state is None or initial_state.shape == (b, h, p, B.shape[3]),
           "initial_state must be [b, h, p, n]", x=x, B=B, initial_state=initial_state)
    _check(isinstance(chunk_size, int) and chunk_size > 0, "chunk_size must be a positive int",
           chunk_size=chunk_size)
    impl = ssd_triton if _resolve(backend, x) == "triton" else ssd_torch
    return impl.ssd_scan(x, dt, A, B, C, chunk_size=chunk_size, initial_state=initial_state, final_state=final_state)


def ssd_step(state: Tensor, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, *,
             backend: str = "auto") -> tuple[Tensor, Tensor]:
    """One token. state [b, h, p, n]; x [b, h, p]; dt [b, h]; A [h]; B, C [b, g, n].
    Returns y [b, h, p], new_state [b, h, p, n] (float32). Never modifies `state`."""
    _check(x.dim() == 3, "x must be [b, h, p]", x=x)
    b, h, p = x.shape
    _check(dt.shape == (b, h), "dt must be [b, h] for x [b, h, p]", x=x, dt=dt)
    _check(A.shape == (h,), "A must be [h]", x=x, A=A)
    _check(B.dim() == 3 and B.shape[0] == b and C.shape == B.shape, "B and C must be the same [b, g, n]",
           x=x, B=B, C=C)
    _check(h % B.shape[1] == 0, "the number of heads must be a multiple of the number of groups", x=x, B=B)
    _check(state.shape == (b, h, p, B.shape[2]), "state must be [b, h, p, n]", x=x, B=B, state=state)
    impl = ssd_triton if _resolve(backend, x) == "triton" else ssd_torch
    return impl.ssd_step(state, x, dt, A, B, C)
