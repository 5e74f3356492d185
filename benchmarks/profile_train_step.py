"""Where a training step's time goes: data generation vs model fwd/bwd, with torch.profiler.

    python benchmarks/profile_train_step.py [--config small] [--steps 10] [--device cuda]
"""

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from worldsim.train.config import load_train_config
from worldsim.train.trainer import Trainer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="small")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default="/tmp/profile_run")
    a = p.parse_args()
    trainer = Trainer(load_train_config(a.config), a.out, device=a.device)
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    window, batch = trainer.cfg.window_at(0), trainer.cfg.batch_at(0)
    for _ in range(3):
        trainer.train_step()
    sync()
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
    sync()
    step_s = (time.perf_counter() - t) / a.steps
    print(f"data {data_s * 1000:.1f} ms/batch, train step (fixed batch) {step_s * 1000:.1f} ms, "
          f"{fixed.frames.shape[0] * window / step_s:.0f} frames/s")
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(3):
            trainer.train_step()
        sync()
    key = "self_cuda_time_total" if trainer.device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    print(prof.key_averages().table(sort_by=key, row_limit=20))


if __name__ == "__main__":
    main()
