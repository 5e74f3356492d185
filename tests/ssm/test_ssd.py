"""The SSD scan against the recurrence it stands for, written out step by step in float64."""

import pytest
import torch
import torch.nn.functional as F

from worldsim.ssm import available_backends, ssd_scan, ssd_step, ssd_torch, ssd_triton


def recurrence(x, dt, A, B, C, state):
    """state_t = exp(dt_t A) state_{t-1} + dt_t x_t (x) B_t ; y_t = state_t . C_t, one step at a time.
    Head i reads group i // (h / g). Returns y [b, l, h, p] and the last state [b, h, p, n]."""
    r = x.shape[2] // B.shape[2]
    ys = []
    for t in range(x.shape[1]):
        Bt = B[:, t].repeat_interleave(r, dim=1)  # [b, h, n]
        Ct = C[:, t].repeat_interleave(r, dim=1)
        decay = torch.exp(dt[:, t] * A)[:, :, None, None]
        state = decay * state + (dt[:, t, :, None] * x[:, t])[..., None] * Bt[:, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", state, Ct))
    return torch.stack(ys, dim=1), state


def make_inputs(b, l, h, p, g, n, *, dt_shift=-1.0, seed=0):
    """float64 inputs in the ranges Mamba-2 sees: dt = softplus(.) > 0, A < 0."""
    gen = torch.Generator().manual_seed(seed)
    randn = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
    x = randn(b, l, h, p)
    dt = F.softplus(randn(b, l, h) + dt_shift)
    A = -(0.5 + torch.rand(h, generator=gen, dtype=torch.float64))
    B, C = randn(b, l, g, n), randn(b, l, g, n)
    state0 = randn(b, h, p, n)
    return x, dt, A, B, C, state0


def assert_close(actual, expected, tol):
    """Max abs error within tol times the largest |expected|: one scale for a whole tensor."""
    err = (actual.double() - expected.double()).abs().max().item()
    scale = expected.double().abs().max().item()
    assert err <= tol * scale, f"max abs error {err:.3g} > {tol:g} * {scale:.3g}"


SHAPES = {  # b, l, h, p, g, n, chunk
    "l_not_multiple_of_chunk": (2, 130, 4, 8, 2, 16, 64),
    "l_multiple_of_chunk": (2, 128, 4, 8, 1, 16, 32),
    "l_below_chunk": (1, 5, 2, 4, 1, 8, 64),
    "l_1": (2, 1, 2, 4, 1, 8, 64),
    "one_head_per_group": (1, 100, 4, 4, 4, 8, 16),
    "several_segments": (1, 300, 2, 4, 1, 8, 4),  # 75 chunks: more than one segment of 64
    "one_chunk_last_segment": (1, 260, 2, 4, 1, 8, 4),  # 65 chunks: the state carried into a lone chunk
}


@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "initial_state"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_scan_matches_recurrence(shape, with_state):
    b, l, h, p, g, n, chunk = shape
    x, dt, A, B, C, state0 = make_inputs(b, l, h, p, g, n)
    if not with_state:
        state0 = torch.zeros_like(state0)
    y_ref, state_ref = recurrence(x, dt, A, B, C, state0)
    y, state = ssd_scan(x.float(), dt.float(), A.float(), B.float(), C.float(), chunk_size=chunk,
                        initial_state=state0.float() if with_state else None, backend="torch")
    assert y.shape == (b, l, h, p) and y.dtype == torch.float32
    assert state.shape == (b, h, p, n) and state.dtype == torch.float32
    assert_close(y, y_ref, 1e-5)
    assert_close(state, state_ref, 1e-5)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_read_only_scan_gives_the_same_outputs_and_no_state(shape):
    # final_state=False (a pass that commits nothing) skips forming the state, not the outputs
    b, l, h, p, g, n, chunk = shape
    x, dt, A, B, C, state0 = [t.float() for t in make_inputs(b, l, h, p, g, n)]
    y, state = ssd_scan(x, dt, A, B, C, chunk_size=chunk, initial_state=state0, backend="torch")
    y_read_only, none = ssd_scan(x, dt, A, B, C, chunk_size=chunk, initial_state=state0, final_state=False,
                                 backend="torch")
    assert none is None and state is not None
    assert torch.equal(y_read_only, y)


def test_scan_with_strong_decay():
    # dt * A down to about -20 per step: decays within a chunk underflow to exactly 0 in float32.
    x, dt, A, B, C, state0 = make_inputs(2, 150, 4, 8, 2, 16, dt_shift=2.0)
    y_ref, state_ref = recurrence(x, dt, A, B, C, state0)
    y, state = ssd_scan(x.float(), dt.float(), A.float(), B.float(), C.float(), initial_state=state0.float())
    assert torch.isfinite(y).all()
    assert_close(y, y_ref, 1e-5)
    assert_close(state, state_ref, 1e-5)


def test_scan_in_segments_equals_one_scan():
    x, dt, A, B, C, _ = [t.float() for t in make_inputs(2, 200, 4, 8, 2, 16)]
    y, state = ssd_scan(x, dt, A, B, C, chunk_size=32)
    l1 = 77  # neither segment a multiple of the chunk
    y1, s1 = ssd_scan(x[:, :l1], dt[:, :l1], A, B[:, :l1], C[:, :l1], chunk_size=32)
    y2, s2 = ssd_scan(x[:, l1:], dt[:, l1:], A, B[:, l1:], C[:, l1:], chunk_size=32, initial_state=s1)
    assert_close(torch.cat([y1, y2], dim=1), y, 1e-6)
    assert_close(s2, state, 1e-6)


def test_steps_equal_scan_and_leave_state_untouched():
    b, l, h, p, g, n = 2, 20, 4, 8, 2, 16
    x, dt, A, B, C, state0 = [t.float() for t in make_inputs(b, l, h, p, g, n)]
    y_scan, state_scan = ssd_scan(x, dt, A, B, C, initial_state=state0)
    state, ys = state0, []
    for t in range(l):
        before = state.clone()
        y, new_state = ssd_step(state, x[:, t], dt[:, t], A, B[:, t], C[:, t])
        assert torch.equal(state, before) and new_state.data_ptr() != state.data_ptr()
        assert y.shape == (b, h, p) and new_state.shape == (b, h, p, n) and new_state.dtype == torch.float32
        ys.append(y)
        state = new_state
    assert_close(torch.stack(ys, dim=1), y_scan, 1e-5)
    assert_close(state, state_scan, 1e-5)


@pytest.mark.parametrize("c", [1, 2], ids=["one_chunk", "two_chunks"])
def test_chunk_kernel_gradcheck(c):
    # The chunk algorithm is dtype-agnostic below ssd_scan's float32 cast, so check it in float64;
    # one segment of 1 chunk (its own path: no recurrence across chunks) or 2, with the -inf masks
    # of segsum on the gradient's path.
    b, h, p, g, n, q = 1, 2, 2, 1, 3, 3
    gen = torch.Generator().manual_seed(0)
    randn = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)  # noqa: E731
    xdt, B, C, state = randn(b, c, q, h, p), randn(b, c, q, g, n), randn(b, c, q, g, n), randn(b, h, p, n)
    a = (-F.softplus(torch.randn(b, c, q, h, generator=gen, dtype=torch.float64))).requires_grad_()
    assert torch.autograd.gradcheck(ssd_torch._scan_chunks, (xdt, a, B, C, state))


def test_gradients_match_recurrence():
    x, dt, A, B, C, state0 = [t.requires_grad_() for t in make_inputs(1, 70, 4, 4, 2, 8)]
    gen = torch.Generator().manual_seed(1)
    gy = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    gs = torch.randn(state0.shape, generator=gen, dtype=torch.float64)
    inputs = (x, dt, A, B, C, state0)

    y_ref, s_ref = recurrence(*inputs)
    grads_ref = torch.autograd.grad((y_ref * gy).sum() + (s_ref * gs).sum(), inputs)
    y, s = ssd_scan(x.float(), dt.float(), A.float(), B.float(), C.float(), chunk_size=16,
                    initial_state=state0.float())
    grads = torch.autograd.grad((y.double() * gy).sum() + (s.double() * gs).sum(), inputs)
    for name, got, want in zip("x dt A B C state0".split(), grads, grads_ref):
        assert got.dtype == torch.float64, name
        assert_close(got, want, 1e-4)


def test_bf16_autocast_keeps_float32_math():
    x, dt, A, B, C, state0 = [t.float() for t in make_inputs(2, 90, 4, 8, 2, 16)]
    y_ref, state_ref = ssd_scan(x, dt, A, B, C, initial_state=state0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = ssd_scan(x, dt, A, B, C, initial_state=state0)
        y16, state16 = ssd_scan(x.bfloat16(), dt, A, B.bfloat16(), C.bfloat16(), initial_state=state0)
        y_step, _ = ssd_step(state0, x[:, 0].bfloat16(), dt[:, 0], A, B[:, 0], C[:, 0])
    assert y.dtype == torch.float32 and state.dtype == torch.float32
    assert_close(y, y_ref, 1e-6)  # autocast did not lower the internal matmuls to bf16
    assert y16.dtype == torch.bfloat16 and state16.dtype == torch.float32 and y_step.dtype == torch.bfloat16
    assert_close(y16, y_ref, 2e-2)  # only the inputs' and the output's rounding


def test_backend_selection_and_errors():
    x, dt, A, B, C, state0 = [t.float() for t in make_inputs(1, 10, 2, 4, 1, 8)]
    assert "torch" in available_backends()
    y_auto, _ = ssd_scan(x, dt, A, B, C)
    y_torch, _ = ssd_scan(x, dt, A, B, C, backend="torch")
    assert torch.equal(y_auto, y_torch)  # auto on CPU tensors is the torch backend
    with pytest.raises(RuntimeError, match="needs CUDA tensors"):
        ssd_scan(x, dt, A, B, C, backend="triton")
    with pytest.raises(RuntimeError, match="needs CUDA tensors"):
        ssd_step(state0, x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], backend="triton")
    with pytest.raises(ValueError, match="backend must be one of"):
        ssd_scan(x, dt, A, B, C, backend="cuda")
    with pytest.raises(ValueError, match="at least one time step"):
        ssd_scan(x[:, :0], dt[:, :0], A, B[:, :0], C[:, :0])
    with pytest.raises(ValueError, match=r"dt must be \[b, l, h\]"):
        ssd_scan(x, dt[:, :5], A, B, C)
    with pytest.raises(ValueError, match="multiple of the number of groups"):
        ssd_scan(x, dt, A, B.expand(-1, -1, 3, -1), C.expand(-1, -1, 3, -1))
    with pytest.raises(ValueError, match=r"state must be \[b, h, p, n\]"):
        ssd_step(state0[..., :3], x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0])


# --- GPU: the Triton kernels against the torch reference ---------------------------------------

def _triton_skip_reason():
    if not torch.cuda.is_available():
        return "needs CUDA and mamba-ssm (no CUDA here)"
    return f"needs CUDA and mamba-ssm ({ssd_triton.import_error()})"


needs_triton = pytest.mark.skipif("triton" not in available_backends(), reason=_triton_skip_reason())


def rel_err(actual, expected):
    """Relative error in the 2-norm, computed in float32."""
    return ((actual.float() - expected.float()).norm() / expected.float().norm()).item()


def cuda_inputs(b, l, h, p, g, n, dtype=torch.float32):
    x, dt, A, B, C, state0 = make_inputs(b, l, h, p, g, n, dt_shift=-3.0)
    return (x.to("cuda", dtype), dt.to("cuda", torch.float32), A.to("cuda", torch.float32),
            B.to("cuda", dtype), C.to("cuda", dtype), state0.to("cuda", torch.float32))


GPU_SHAPES = {  # b, l, h, p, g, n
    "l_1": (2, 1, 4, 64, 1, 64),
    "l_100_groups": (2, 100, 4, 64, 2, 64),
    "l_1000": (2, 1000, 8, 64, 1, 128),
}


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "initial_state"])
@pytest.mark.parametrize("shape", GPU_SHAPES.values(), ids=GPU_SHAPES.keys())
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 3e-3), (torch.bfloat16, 1e-2)], ids=["fp32", "bf16"])
def test_triton_scan_matches_torch(dtype, tol, shape, with_state):
    x, dt, A, B, C, state0 = cuda_inputs(*shape, dtype)
    state0 = state0 if with_state else None
    y, s = ssd_scan(x, dt, A, B, C, initial_state=state0, backend="triton")
    y_ref, s_ref = ssd_scan(x, dt, A, B, C, initial_state=state0, backend="torch")
    assert y.dtype == dtype and s.dtype == torch.float32
    assert rel_err(y, y_ref) <= tol
    assert rel_err(s, s_ref) <= tol
    y_read_only, none = ssd_scan(x, dt, A, B, C, initial_state=state0, final_state=False, backend="triton")
    assert none is None and torch.equal(y_read_only, y)


@pytest.mark.gpu
@needs_triton
def test_auto_picks_triton_on_cuda():
    x, dt, A, B, C, state0 = cuda_inputs(1, 50, 2, 64, 1, 64)
    y_auto, _ = ssd_scan(x, dt, A, B, C, initial_state=state0)
    y_triton, _ = ssd_scan(x, dt, A, B, C, initial_state=state0, backend="triton")
    assert torch.equal(y_auto, y_triton)


@pytest.mark.gpu
@needs_triton
def test_triton_scan_gradients_match_torch():
    inputs = [t.requires_grad_() for t in cuda_inputs(2, 300, 4, 64, 2, 64)]
    gen = torch.Generator(device="cuda").manual_seed(0)
    gy = torch.randn(inputs[0].shape, generator=gen, device="cuda")
    gs = torch.randn(inputs[5].shape, generator=gen, device="cuda")
    grads = {}
    for backend in ("triton", "torch"):
        x, dt, A, B, C, state0 = inputs
        y, s = ssd_scan(x, dt, A, B, C, initial_state=state0, backend=backend)
        grads[backend] = torch.autograd.grad((y * gy).sum() + (s * gs).sum(), inputs)
    for name, got, want in zip("x dt A B C state0".split(), grads["triton"], grads["torch"]):
        assert rel_err(got, want) <= 1e-2, name


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 3e-3), (torch.bfloat16, 1e-2)], ids=["fp32", "bf16"])
def test_triton_step_matches_torch_and_leaves_state_untouched(dtype, tol):
    x, dt, A, B, C, state0 = cuda_inputs(3, 4, 8, 64, 2, 64, dtype)
    state_t, state_r = state0, state0
    for t in range(x.shape[1]):
        before = state_t.clone()
        y_t, new_t = ssd_step(state_t, x[:, t], dt[:, t], A, B[:, t], C[:, t], backend="triton")
        assert torch.equal(state_t, before)
        y_r, state_r = ssd_step(state_r, x[:, t], dt[:, t], A, B[:, t], C[:, t], backend="torch")
        assert y_t.dtype == dtype and new_t.dtype == torch.float32
        assert rel_err(y_t, y_r) <= tol
        state_t = new_t
    assert rel_err(state_t, state_r) <= tol
