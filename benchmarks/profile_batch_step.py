"""Where a batched generation step's time goes, by kernel and by kind of kernel (torch.profiler).

    python benchmarks/profile_batch_step.py [--checkpoint maze] [--batch 256] [--device cuda]
        [--dtype float32] [--tf32] [--steps 3] [--out runs/profile_batch_step.json]

The checkpoint's Simulator at batch B after a one-frame context, stepped plainly (no CUDA graph: the
profiler sees the kernels one by one; at large B a graph changes nothing, BENCHMARKS.md "Engine on
the H100"). Prints the kernels' summed time per step grouped by kind (matmul, attention, SSD scan,
norms, copies and elementwise), the top kernels, and "busy": kernel time over the wall time of as
many steps run without the profiler (below 100%: the GPU waits on the host; the host's top ops by
CPU time follow, e.g. each episode's noise, drawn on the CPU from its own generator). On CPU (`--device
cpu`) the "kernels" are torch's ops, by self time under the profiler (which inflates it, so no
"busy"), and the SSD scan is spread over the matmuls and elementwise ops of its torch reference.
"""

from __future__ import annotations

import argparse
import collections
import time

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from worldsim.bench import actions, random_context
from worldsim.checkpoint import load_model
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.simulator import DTYPES, Simulator

# first match wins; names as CUDA / Triton report them
KINDS = (
    ("SSD scan (Triton)", ("_chunk_", "_state_passing", "_bmm_chunk", "selective_state_update")),
    ("attention", ("fmha", "attention", "flash")),
    ("matmul", ("gemm", "sm90_", "sm80_", "cutlass", "xmma", "cublas", "splitk", "Kernel2", "aten::mm", "aten::bmm",
                "aten::addmm", "aten::baddbmm")),
    ("norm", ("norm",)),
    ("conv", ("conv",)),
    ("copy / cat / index", ("copy", "cat", "index", "gather", "scatter", "take", "unfold", "fill")),
)


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, keys in KINDS:
        if any(k.lower() in low for k in keys):
            return kind
    return "elementwise / reduce / other"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--tf32", action="store_true", help="let float32 matmuls use TF32 tensor cores")
    p.add_argument("--sampling-steps", type=int, default=None, help="default: the checkpoint's")
    p.add_argument("--steps", type=int, default=3, help="profiled steps (after 3 warm-up steps)")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--out", default="runs/profile_batch_step.json")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    model, config = load_model(a.checkpoint)
    sim = Simulator.for_checkpoint(model, config, a.sampling_steps, device=a.device, dtype=a.dtype, cuda_graph=False)
    cuda = sim.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sim.reset(random_context(sim.cfg, a.batch))
    act = actions(sim.cfg, a.batch)
    for _ in range(3):
        sim.step(act)
    sync()
    t = time.perf_counter()
    for _ in range(a.steps):  # timed without the profiler, whose own cost per op would be in it
        sim.step(act)
    sync()
    wall_ms = (time.perf_counter() - t) * 1e3 / a.steps
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        for _ in range(a.steps):
            sim.step(act)
        sync()

    # On CUDA, kernel events only: the ops that launch them report the same device time again. On
    # CPU, torch's ops by self time (an op's children are not counted twice).
    if cuda:
        kernels = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
        self_ms = {e.key: e.self_device_time_total / 1e3 / a.steps for e in kernels}
    else:
        kernels = [e for e in prof.key_averages() if e.key.startswith("aten::")]
        self_ms = {e.key: e.self_cpu_time_total / 1e3 / a.steps for e in kernels}
    per_kind = collections.Counter()
    for e in kernels:
        per_kind[kind_of(e.key)] += self_ms[e.key]
    launches = sum(e.count for e in kernels) / a.steps
    busy_ms = sum(per_kind.values())
    print(f"{a.checkpoint} on {sim.device.type}, batch {a.batch}, {a.dtype}{' + TF32' if a.tf32 else ''}, "
          f"{sim.sampler.steps} sampler steps: {wall_ms:.1f} ms per step ({a.batch / wall_ms * 1e3:,.0f} frames/s), "
          + (f"kernels {busy_ms:.1f} ms (GPU busy {100 * busy_ms / wall_ms:.0f}%), {launches:,.0f} launches per step\n"
             if cuda else f"{launches:,.0f} ops per step, their self time {busy_ms:.1f} ms under the profiler\n"))
    print("| kind | ms per step | share |\n|---|---:|---:|")
    for kind, ms in per_kind.most_common():
        print(f"| {kind} | {ms:.2f} | {100 * ms / busy_ms:.0f}% |")
    top = sorted(kernels, key=lambda e: -self_ms[e.key])[:a.top]
    print("\n| kernel | kind | calls per step | ms per step |\n|---|---|---:|---:|")
    for e in top:
        print(f"| `{e.key[:90]}` | {kind_of(e.key)} | {e.count / a.steps:.0f} | {self_ms[e.key]:.2f} |")
    host = []
    if cuda:  # what the host does while the GPU may wait: e.g. each episode's noise, drawn on the CPU
        host = sorted((e for e in prof.key_averages() if e.key.startswith("aten::")),
                      key=lambda e: -e.self_cpu_time_total)[:8]
        print("\n| host op | calls per step | CPU ms per step |\n|---|---:|---:|")
        for e in host:
            print(f"| `{e.key}` | {e.count / a.steps:.0f} | {e.self_cpu_time_total / 1e3 / a.steps:.2f} |")
    write_json(a.out, {"ms_per_step": wall_ms, "kernel_ms_per_step": busy_ms, "launches_per_step": launches,
                       "by_kind": dict(per_kind),
                       "top": [{"kernel": e.key, "calls": e.count / a.steps, "ms": self_ms[e.key]} for e in top],
                       "host_top": [{"op": e.key, "calls": e.count / a.steps, "cpu_ms": e.self_cpu_time_total / 1e3 / a.steps}
                                    for e in host]},
               provenance(a, sim.device, config, {a.checkpoint: config["path"]}))


if __name__ == "__main__":
    main()
