"""Check and time the SSD scan's two backends: mamba-ssm's Triton kernels against the torch reference.

On CUDA with mamba-ssm: the agreement of the triton backend with the torch backend (relative error
in the 2-norm of y, of the final state and of the gradients; fp32 within 3e-3, bf16 inputs within
1e-2, with an initial state; ssd_step too), then forward and forward+backward times of both for a
training-sized scan and a smaller one, as a markdown table with the speed ratio, and all of it as
JSON under --out. Exits 1 if an agreement bound is violated. Elsewhere (``--device cpu``) only the
torch backend is timed: a check that the script runs.

    eval "$(bash scripts/setup_cuda_offline.sh)"    # offline CUDA machine: mamba-ssm from .whl/
    python3 benchmarks/check_ssd_gpu.py --out ssd_gpu.json
    python3 benchmarks/check_ssd_gpu.py --device cpu --small
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from worldsim.ssm import available_backends, ssd_scan, ssd_step, ssd_triton  # noqa: E402

BOUNDS = {torch.float32: 3e-3, torch.bfloat16: 1e-2}
GRAD_BOUND = 1e-2  # fp32 gradients: each sums over the whole sequence, more terms than y does
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# b, l, h, p, g, n: DESIGN.md's training-sized figure, and a smaller one.
SIZES = {"train": (8, 16384, 8, 64, 1, 64), "small": (4, 2048, 8, 64, 1, 64)}
CPU_SIZE = (1, 1024, 2, 32, 1, 32)
CHUNK = 64


def inputs(b, l, h, p, g, n, dtype, device, seed=0):
    """Ranges as mamba-ssm's own tests: dt = softplus(N(-4, 1)), A = -exp(U(0, 1))."""
    gen = torch.Generator(device=device).manual_seed(seed)
    randn = lambda *shape: torch.randn(*shape, generator=gen, device=device)  # noqa: E731
    x = randn(b, l, h, p).to(dtype)
    dt = F.softplus(randn(b, l, h) - 4)
    A = -torch.exp(torch.rand(h, generator=gen, device=device))
    B, C = randn(b, l, g, n).to(dtype), randn(b, l, g, n).to(dtype)
    state0 = randn(b, h, p, n)
    return x, dt, A, B, C, state0


def rel_err(actual, expected):
    return ((actual.float() - expected.float()).norm() / expected.float().norm()).item()


def check_scan(name, size, dtype, device, with_grads):
    """Triton vs torch for one ssd_scan from an initial state: rel. errors of y, state, grads."""
    tensors = inputs(*size, dtype, device)
    if with_grads:
        tensors = [t.requires_grad_() for t in tensors]
    gen = torch.Generator(device=device).manual_seed(1)
    gy = torch.randn(tensors[0].shape, generator=gen, device=device, dtype=dtype)
    gs = torch.randn(tensors[5].shape, generator=gen, device=device)
    out = {}
    for backend in ("triton", "torch"):
        x, dt, A, B, C, state0 = tensors
        y, s = ssd_scan(x, dt, A, B, C, chunk_size=CHUNK, initial_state=state0, backend=backend)
        grads = torch.autograd.grad((y * gy).float().sum() + (s * gs).sum(), tensors) if with_grads else ()
        out[backend] = (y, s, grads)
    (y, s, g), (y_ref, s_ref, g_ref) = out["triton"], out["torch"]
    row = {"check": name, "dtype": str(dtype).removeprefix("torch."), "shape": size,
           "y_rel_err": rel_err(y, y_ref), "state_rel_err": rel_err(s, s_ref), "bound": BOUNDS[dtype]}
    row["ok"] = row["y_rel_err"] <= row["bound"] and row["state_rel_err"] <= row["bound"]
    if with_grads:
        row["grad_rel_err"] = {k: rel_err(a, b) for k, a, b in zip("x dt A B C state0".split(), g, g_ref)}
        if dtype == torch.float32:  # bf16 gradients are reported, not bounded
            row["grad_bound"] = GRAD_BOUND
            row["ok"] = row["ok"] and max(row["grad_rel_err"].values()) <= GRAD_BOUND
    return row


def check_step(size, dtype, device, steps=8):
    """Triton vs torch for `steps` consecutive ssd_step calls; also that the input state is kept."""
    b, _, h, p, g, n = size
    x, dt, A, B, C, state0 = inputs(b, steps, h, p, g, n, dtype, device)
    s_t, s_r, kept, y_err = state0, state0, True, 0.0
    for t in range(steps):
        before = s_t.clone()
        y_t, new_t = ssd_step(s_t, x[:, t], dt[:, t], A, B[:, t], C[:, t], backend="triton")
        kept = kept and torch.equal(s_t, before)
        y_r, s_r = ssd_step(s_r, x[:, t], dt[:, t], A, B[:, t], C[:, t], backend="torch")
        y_err, s_t = max(y_err, rel_err(y_t, y_r)), new_t
    row = {"check": f"ssd_step x{steps}", "dtype": str(dtype).removeprefix("torch."), "shape": (b, h, p, g, n),
           "y_rel_err": y_err, "state_rel_err": rel_err(s_t, s_r), "bound": BOUNDS[dtype], "state_kept": kept}
    row["ok"] = kept and y_err <= row["bound"] and row["state_rel_err"] <= row["bound"]
    return row


def timed(fn, device, warmup, iters):
    """Median milliseconds of fn(): CUDA events on CUDA, wall clock elsewhere."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def time_scan(backend, size, dtype, device, warmup, iters):
    """(forward without autograd, forward + backward to all inputs) in ms, from an initial state."""
    tensors = [t.requires_grad_() for t in inputs(*size, dtype, device)]
    x, dt, A, B, C, state0 = tensors
    gy, gs = torch.randn_like(x), torch.randn_like(state0)

    def fwd():
        with torch.no_grad():
            ssd_scan(x, dt, A, B, C, chunk_size=CHUNK, initial_state=state0, backend=backend)

    def fwd_bwd():
        y, s = ssd_scan(x, dt, A, B, C, chunk_size=CHUNK, initial_state=state0, backend=backend)
        torch.autograd.grad((y, s), tensors, (gy, gs))

    return timed(fwd, device, warmup, iters), timed(fwd_bwd, device, warmup, iters)


def time_step(backend, size, dtype, device, warmup, iters):
    b, _, h, p, g, n = size
    x, dt, A, B, C, state0 = inputs(b, 1, h, p, g, n, dtype, device)
    return timed(lambda: ssd_step(state0, x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], backend=backend),
                 device, warmup, iters)


def fmt_shape(size):
    return "b={} l={} h={} p={} g={} n={}".format(*size)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--small", action="store_true", help="only the smaller size (on CPU: a tiny one)")
    ap.add_argument("--out", type=Path, help="write the results here as JSON")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device here; use --device cpu")
    backends = [b for b in ("torch", "triton") if b in available_backends()] if device == "cuda" else ["torch"]
    env = {"device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
           "torch": torch.__version__, "backends": backends, "chunk_size": CHUNK,
           "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "date": time.strftime("%Y-%m-%d")}
    if "triton" in backends:
        import mamba_ssm
        import triton
        env |= {"mamba_ssm": mamba_ssm.__version__, "triton": triton.__version__}
    elif device == "cuda":
        env["triton_missing"] = ssd_triton.import_error()
    print(json.dumps(env), flush=True)

    agreement = []
    if "triton" in backends:
        small = SIZES["small"]
        agree_size = (2, 4000, 8, 64, 2, 64)  # l not a multiple of the chunk, 2 groups
        agreement = [
            check_scan("ssd_scan + grads", agree_size, torch.float32, device, with_grads=True),
            check_scan("ssd_scan + grads", agree_size, torch.bfloat16, device, with_grads=True),
            check_scan("ssd_scan", small, torch.float32, device, with_grads=False),
            check_step(small, torch.float32, device),
            check_step(small, torch.bfloat16, device),
        ]
        print("\n| check | dtype | shape | y rel err | state rel err | max grad rel err | bound | ok |")
        print("|---|---|---|---|---|---|---|---|")
        for r in agreement:
            grad = f"{max(r['grad_rel_err'].values()):.2e}" if "grad_rel_err" in r else "-"
            print(f"| {r['check']} | {r['dtype']} | {r['shape']} | {r['y_rel_err']:.2e} | "
                  f"{r['state_rel_err']:.2e} | {grad} | {r['bound']:g} | {'yes' if r['ok'] else 'NO'} |", flush=True)
    elif device == "cuda":
        print(f"triton backend unavailable ({env['triton_missing']}): agreement not checked", flush=True)

    sizes = {"small": SIZES["small"]} if args.small else SIZES
    if device == "cpu":
        sizes = {"cpu": CPU_SIZE}
    timing = []
    for dname, dtype in DTYPES.items():
        for sname, size in sizes.items():
            row = {"op": "ssd_scan", "size": sname, "shape": size, "dtype": dname}
            for backend in backends:
                fwd, fwd_bwd = time_scan(backend, size, dtype, device, args.warmup, args.iters)
                row[f"{backend}_fwd_ms"], row[f"{backend}_fwd_bwd_ms"] = fwd, fwd_bwd
                if device == "cuda":
                    torch.cuda.empty_cache()
            timing.append(row)
            print(json.dumps(row), flush=True)
        step_size = (256, 1, 8, 64, 1, 64)  # 8 envs x 32 spatial blocks, one token each
        row = {"op": "ssd_step", "size": "b=256", "shape": step_size, "dtype": dname}
        for backend in backends:
            row[f"{backend}_ms"] = time_step(backend, step_size, dtype, device, args.warmup, args.iters)
        timing.append(row)
        print(json.dumps(row), flush=True)

    print(f"\nDevice: {env['device']}; torch {env['torch']}"
          + (f", triton {env['triton']}, mamba-ssm {env['mamba_ssm']}" if "triton" in backends else "")
          + f"; chunk {CHUNK}; median of {args.iters} after {args.warmup} warm-up runs.\n")
    cols = [("fwd", "_fwd_ms"), ("fwd+bwd", "_fwd_bwd_ms")]
    print("| op | shape | dtype | pass | " + " | ".join(f"{b} ms" for b in backends)
          + (" | torch / triton |" if "triton" in backends else " |"))
    print("|---|---|---|---|" + "---|" * (len(backends) + ("triton" in backends)))
    for row in timing:
        shape = fmt_shape(row["shape"]) if row["op"] == "ssd_scan" else "b={} h={} p={} g={} n={}".format(
            row["shape"][0], *row["shape"][2:])
        for pass_name, suffix in (cols if row["op"] == "ssd_scan" else [("step", "_ms")]):
            ms = [row[b + suffix] for b in backends]
            line = f"| {row['op']} | {shape} | {row['dtype']} | {pass_name} | " + " | ".join(f"{m:.3f}" for m in ms)
            if "triton" in backends:
                line += f" | {ms[0] / ms[1]:.1f}x"
            print(line + " |")

    ok = all(r["ok"] for r in agreement)
    if args.out:
        args.out.write_text(json.dumps({"env": env, "agreement": agreement, "timing": timing, "ok": ok}, indent=1))
    if not ok:
        print("\nAGREEMENT BOUND VIOLATED", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
