"""Where a training step's time goes: data generation vs model fwd/bwd, with torch.profiler.

    python benchmarks/profile_train_step.py [--config small] [--steps 10] [--device cuda] [--at-step N]
        [--batch-frames F]

--at-step profiles the schedule's window and batch at that step (e.g. a config's 256-frame stage);
--batch-frames overrides the frames per optimizer step. "GPU busy" is the kernels' summed time over
the profiled steps' wall time: well below 100% means the step waits on the CPU (launch-bound).
"""

import argparse
import time

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from worldsim.train.config import load_train_config
from worldsim.train.trainer import Trainer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="small")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default="/tmp/profile_run")
    p.add_argument("--at-step", type=int, default=0)
    p.add_argument("--batch-frames", type=int, default=None)
    a = p.parse_args()
    trainer = Trainer(load_train_config(a.config, batch_frames=a.batch_frames), a.out, device=a.device, show_progress=False)
    trainer.step = a.at_step
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    window, batch = trainer.cfg.window_at(a.at_step), trainer.cfg.batch_at(a.at_step)
    t = time.perf_counter()
    for _ in range(3):
        trainer.train_step()
        trainer.step = a.at_step
    sync()
    print(f"warm-up: 3 steps in {time.perf_counter() - t:.1f} s (window {window}, batch {batch})", flush=True)
    t = time.perf_counter()
    for _ in range(a.steps):
        trainer.source.next(window, batch)
    sync()
    data_s = (time.perf_counter() - t) / a.steps
    fixed = trainer.source.next(window, batch)
    trainer.source.next = lambda w, b: fixed
    t = time.perf_counter()
    for _ in range(a.steps):
        trainer.train_step()
        trainer.step = a.at_step
    sync()
    step_s = (time.perf_counter() - t) / a.steps
    print(f"data {data_s * 1000:.1f} ms/batch, train step (fixed batch) {step_s * 1000:.1f} ms, "
          f"{fixed.frames.shape[0] * window / step_s:.0f} frames/s")
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.device.type == "cuda" else [])
    t = time.perf_counter()
    with profile(activities=acts) as prof:
        for _ in range(3):
            trainer.train_step()
            trainer.step = a.at_step
        sync()
    wall_us = (time.perf_counter() - t) * 1e6
    key = "self_cuda_time_total" if trainer.device.type == "cuda" else "self_cpu_time_total"
    if trainer.device.type == "cuda":
        # kernel events only: the ops that launch them report the same device time again
        kernels_us = sum(e.self_device_time_total for e in prof.key_averages() if e.device_type == DeviceType.CUDA)
        print(f"GPU busy {100 * kernels_us / wall_us:.0f}% of {wall_us / 3e3:.0f} ms per profiled step")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    print(prof.key_averages().table(sort_by=key, row_limit=20))


if __name__ == "__main__":
    main()
