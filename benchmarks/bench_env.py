"""Env benchmark: step latency early vs late in an episode, and batched vector-env throughput.

    python benchmarks/bench_env.py --config small --frames 1000 --devices cpu --num-envs 1,16 --out env.json
    python benchmarks/bench_env.py --checkpoint maze --frames 10000 --devices cuda --num-envs 1,16,64,256
    python benchmarks/bench_env.py --checkpoint maze --sections throughput --devices cuda --num-envs 256 \
        --dtype bfloat16 --compile --warmup-steps 3

What it measures, through the public envs (gym.make / gym.make_vec), in one run:
  * latency: one LSSVWM-v0 env stepped to frame N, with snapshots (get_state) at frame ~100 and N;
    then, in alternating rounds restored from them, the median wall time of a step (sampler passes +
    commit, results back on the CPU) right after frame ~100 and right after frame N, their ratio
    late/early (flat cost per frame: ~1.0), and the simulator's memory at both;
  * throughput: generated frames/s of LSSVWMVectorEnv for each --num-envs (one batch, one device),
    and of its Simulator stepped directly, in alternating rounds: the env's own cost per step
    (checking N actions, copying observations, episode bookkeeping, restarting the episodes the
    model ended) is the difference. Then the env's host work alone: its step around a stub
    simulator that returns one step's outputs again at once, with no episode ending.

Weights: --checkpoint (a path or shipped name), else a random-init model of --config (tiny by
default) saved to a temporary checkpoint with the built-in maze as its source. Random weights cost
exactly what trained ones do. Prints a markdown table; --out writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

import worldsim  # noqa: F401  (registers LSSVWM-v0)
from worldsim.checkpoint import save_model
from worldsim.config import preset
from worldsim.diffusion import SamplerSettings
from worldsim.model import LSSVWM

WINDOW = 20  # steps timed after each snapshot
ROUNDS = 3  # alternating early / late timing rounds
STUB_STEPS = 100  # env steps around the stub simulator: no model, so many are cheap and steady the median


def random_checkpoint(config: str, directory: str) -> str:
    torch.manual_seed(0)
    model = LSSVWM(preset(config))
    size = model.cfg.image_size
    source = {"env_id": "worldsim/Maze-v0", "env_kwargs": {"image_size": size}, "render_fps": 15,
              "action_space": {"type": "discrete", "n": model.cfg.num_actions}}
    sampling = dataclasses.asdict(SamplerSettings())
    return str(save_model(os.path.join(directory, f"random-{config}"), model, source, sampling))


def latency(checkpoint: str, device: str, frames: int, early: int, sampling_steps: int | None) -> dict:
    """Median step time around frame `early` and frame `frames`. Both are timed in alternating
    rounds, restored from snapshots, so a change in the machine's load during the long run to
    frame N shifts both alike instead of skewing their ratio."""
    env = gym.make("LSSVWM-v0", checkpoint=checkpoint, device=device, sampling_steps=sampling_steps).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    snapshots = {}
    with tqdm(total=frames, initial=env.frame_index, desc=f"run to frame {frames} on {device}", unit="frame") as bar:
        while env.frame_index < frames:
            env.step(int(rng.integers(env.action_space.n)))
            if env.frame_index in (early, frames):
                snapshots[env.frame_index] = env.get_state()
            bar.update()
    times = {early: [], frames: []}
    memory = {}
    actions = rng.integers(env.action_space.n, size=WINDOW)
    for _ in tqdm(range(ROUNDS), desc="timing early vs late", unit="round"):
        for frame in (early, frames):
            env.set_state(snapshots[frame])
            for a in actions:
                start = time.perf_counter()
                env.step(int(a))
                times[frame].append(time.perf_counter() - start)
            memory[frame] = env.memory_bytes()
    early_ms, late_ms = (1000 * statistics.median(times[f]) for f in (early, frames))
    result = {"device": str(env.simulator.device), "params": env.simulator.model.num_parameters(),
              "image_size": env.observation_space.shape[0], "sampling_steps": env.sampling_steps,
              "early_frame": early, "late_frame": frames, "early_ms": early_ms, "late_ms": late_ms,
              "late_over_early": late_ms / early_ms, "memory_early_bytes": memory[early],
              "memory_late_bytes": memory[frames]}
    env.close()
    return result


def throughput(checkpoint: str, device: str, num_envs: int, steps: int, sampling_steps: int | None, dtype: str,
               compile: bool, warmup: int) -> dict:
    """Median time of a batched step through the vector env and through its Simulator alone, in
    ROUNDS alternating rounds of `steps` steps each, after `warmup` env steps (allocations, kernel
    selection, CUDA-graph capture, and with `compile` its first graphs)."""
    envs = gym.make_vec("LSSVWM-v0", num_envs=num_envs, checkpoint=checkpoint, device=device,
                        sampling_steps=sampling_steps, dtype=dtype, compile=compile, max_episode_steps=None)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(warmup):
        envs.step(envs.action_space.sample())
    warmup_seconds = time.perf_counter() - start
    simulator = envs.unwrapped.simulator
    times = {"env": [], "simulator": [], "stub": []}
    step = {"env": envs.step, "simulator": lambda a: simulator.step(torch.from_numpy(a))}
    ended = 0
    for _ in range(ROUNDS):
        for mode in step:
            for a in rng.integers(envs.single_action_space.n, size=(steps, num_envs)):
                start = time.perf_counter()
                out = step[mode](a)
                times[mode].append(time.perf_counter() - start)
                ended += int(out[2].sum()) if mode == "env" else 0
    # the stub returns one real step's outputs again
    frames, reward, terminated = simulator.step(torch.from_numpy(rng.integers(envs.single_action_space.n,
                                                                             size=num_envs)))
    simulator.step = lambda _: (frames.clone(), reward.clone(), torch.zeros_like(terminated))
    for a in rng.integers(envs.single_action_space.n, size=(STUB_STEPS, num_envs)):
        start = time.perf_counter()
        envs.step(a)
        times["stub"].append(time.perf_counter() - start)
    envs.close()
    env_ms, sim_ms, stub_ms = (1000 * statistics.median(times[m]) for m in ("env", "simulator", "stub"))
    return {"device": device, "num_envs": num_envs, "dtype": dtype, "compile": compile, "steps": steps,
            "rounds": ROUNDS, "warmup_steps": warmup, "warmup_seconds": warmup_seconds,
            "frames_per_second": 1000 * num_envs / env_ms, "ms_per_batch_step": env_ms,
            "simulator_frames_per_second": 1000 * num_envs / sim_ms, "simulator_ms_per_batch_step": sim_ms,
            "env_over_simulator": env_ms / sim_ms, "episodes_ended_in_env_steps": ended,
            "env_host_ms_per_step": stub_ms}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="checkpoint path or shipped name (default: random --config)")
    parser.add_argument("--config", default="tiny", choices=["tiny", "small", "base"],
                        help="preset of the random-init model when no --checkpoint (default: tiny)")
    parser.add_argument("--frames", type=int, default=2000, help="late frame N (200 to 10,000; default 2000)")
    parser.add_argument("--early", type=int, default=100, help="early frame (default 100)")
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu",
                        help="comma-separated devices (default: cpu, and cuda when available)")
    parser.add_argument("--num-envs", default="1,16,64,256", help="vector env sizes (default 1,16,64,256)")
    parser.add_argument("--vector-steps", type=int, default=10,
                        help="timed steps per vector size, mode and round (default 10)")
    parser.add_argument("--warmup-steps", type=int, default=1,
                        help="untimed vector env steps first (default 1; with --compile use 3: its graphs are "
                             "compiled at the first two)")
    parser.add_argument("--sampling-steps", type=int, default=None, help="sampler steps (default: the checkpoint's)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="the vector env's dtype (default float32; latency runs float32)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the vector env's model (Simulator)")
    parser.add_argument("--sections", default="latency,throughput",
                        help="comma-separated: latency, throughput (default both)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's). On a shared machine use 1: OpenMP's "
                             "spin-waiting makes 2 threads on 2 busy cores many times slower")
    parser.add_argument("--out", default=None, help="write the results as JSON to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not 200 <= args.frames <= 10_000 or not 1 <= args.early < args.frames:
        parser.error("need 200 <= --frames <= 10000 and 1 <= --early < --frames")
    devices = [d for d in args.devices.split(",") if d]
    sections = {s for s in args.sections.split(",") if s}
    if not sections or sections - {"latency", "throughput"}:
        parser.error(f"--sections takes latency and/or throughput, got {args.sections!r}")
    num_envs = [int(n) for n in args.num_envs.split(",") if n]

    machine = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "platform": platform.platform(),
               "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
               "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
               "load_average_1min_at_start": os.getloadavg()[0]}  # other work on the machine skews the numbers
    model = args.checkpoint or f"random-init {args.config}"
    runs = {"latency": [], "throughput": []}

    def save():  # after every measurement: a run killed later (out of memory) keeps what it measured
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"machine": machine, "model": model, "window_steps": WINDOW, "rounds": ROUNDS, **runs}, f,
                          separators=(",", ":"))  # compact, as write_json and the committed results

    print(f"## LSSVWM-v0 env: {model} ({machine['date']}, torch {machine['torch']}, {machine['cpu_count']} CPUs / "
          f"{machine['torch_threads']} threads, GPU: {machine['cuda']}, load average "
          f"{machine['load_average_1min_at_start']:.1f} at the start)\n", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or random_checkpoint(args.config, tmp)
        if "latency" in sections:
            print(f"| device | params | image | sampler steps | ms/frame @ ~{args.early} | ms/frame @ ~{args.frames} | "
                  f"late/early | memory @ {args.early} | memory @ {args.frames} |\n"
                  "|---|---|---|---|---|---|---|---|---|")
        for device in devices if "latency" in sections else []:
            r = latency(checkpoint, device, args.frames, args.early, args.sampling_steps)
            runs["latency"].append(r)
            save()
            print(f"| {r['device']} | {r['params'] / 1e6:.1f}M | {r['image_size']} | {r['sampling_steps']} | "
                  f"{r['early_ms']:.2f} | {r['late_ms']:.2f} | {r['late_over_early']:.3f} | "
                  f"{r['memory_early_bytes'] / 2**20:.2f} MiB | {r['memory_late_bytes'] / 2**20:.2f} MiB |", flush=True)
        if "throughput" in sections:
            print(f"\n{args.dtype}{', compiled' if args.compile else ''}: vector env against its Simulator alone\n\n"
                  "| device | num_envs | env: frames/s | ms per batched step | simulator: frames/s | ms per step | "
                  "env / simulator | episodes ended | env host ms/step |\n|---|---|---|---|---|---|---|---|---|")
        for device in devices if "throughput" in sections else []:
            for n in num_envs:
                r = throughput(checkpoint, device, n, args.vector_steps, args.sampling_steps, args.dtype,
                               args.compile, args.warmup_steps)
                runs["throughput"].append(r)
                save()
                print(f"| {r['device']} | {r['num_envs']} | {r['frames_per_second']:.1f} | "
                      f"{r['ms_per_batch_step']:.1f} | {r['simulator_frames_per_second']:.1f} | "
                      f"{r['simulator_ms_per_batch_step']:.1f} | {r['env_over_simulator']:.3f} | "
                      f"{r['episodes_ended_in_env_steps']} | {r['env_host_ms_per_step']:.2f} |", flush=True)
    print(f"\n(load average {os.getloadavg()[0]:.1f} at the end)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
