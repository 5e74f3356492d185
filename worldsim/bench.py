"""`worldsim bench`: what the world model costs, measured beside its baselines in one run.

    worldsim bench [--preset small | --checkpoint C] [--device auto] [--frames N] [--sections ...]

Sections (default: all; `quality` only with --checkpoint):
  latency   ms per generated frame and memory vs frames generated (10 -> N; default N 2000 on CPU,
            10,000 on CUDA) for LSSVWM, sliding-window and full causal attention at batch 1.
            Memory: the simulator's cache bytes (InferenceCache.nbytes), plus peak allocated
            (torch.cuda.max_memory_allocated) on CUDA or process RSS on CPU.
  batch     generated frames/s of one Simulator with B = 1, 16, 64, 256 episodes; with --cuda-graph
            also with the step replayed from a CUDA graph (worldsim/step_graph.py), the two
            alternating in rounds.
  train     training frames/s and tokens/s (Trainer.train_step on random frames, so the data
            generator is not timed) and, on CUDA, model FLOP utilisation from the analytic count
            in worldsim.evaluation.flops against --peak-tflops (default: H100 bf16 dense, 989).
  quality   retrieval PSNR/SSIM and ms/frame (batch 1) vs sampler steps (needs trained weights).

Models are random-init of the preset (cost does not depend on the weights) or, with --checkpoint,
the checkpoint for its own architecture and random-init variants of its config for the others.
Ratios (late/early latency, LSSVWM/full attention) are computed within the run. Prints markdown
tables; writes OUT/bench.json and PNG plots, all with provenance.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

from worldsim.cli import positive_int
from worldsim.config import ARCHITECTURES, PRESETS, ModelConfig, preset, variant
from worldsim.data.batch import TrajectoryBatch
from worldsim.diffusion import SamplerSettings
from worldsim.evaluation import plots
from worldsim.evaluation.flops import training_flops_per_frame
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.model import LSSVWM
from worldsim.simulator import DTYPES, Simulator, pick_device

SECTIONS = ("latency", "batch", "train", "quality")
POINTS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000)
WINDOW = 10  # latency at frame f: median step time of frames f-9..f (robust to one slow step)
MB = 2**20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="small", choices=sorted(PRESETS), help="model size (random init)")
    p.add_argument("--checkpoint", help="bench this checkpoint's model instead of a preset (needed for quality)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's; 1 is steadier on a shared machine)")
    p.add_argument("--sections", help="comma-separated subset of " + ",".join(SECTIONS))
    p.add_argument("--sampling-steps", type=int, default=4)
    p.add_argument("--frames", type=positive_int, help="latency: frames to generate (default 2000 on CPU, 10000 on CUDA)")
    p.add_argument("--max-cache-gb", type=float, default=16.0, help="latency: stop a run whose cache outgrows this")
    p.add_argument("--architectures", default="lssvwm,sliding_attention,full_attention")
    p.add_argument("--sliding-window", type=int, default=48, help="frames of the sliding-attention baseline")
    p.add_argument("--batch-sizes", default="1,16,64,256")
    p.add_argument("--batch-steps", type=positive_int, default=3, help="timed steps per batch size and round (after two warm-up steps)")
    p.add_argument("--batch-rounds", type=positive_int, default=2, help="rounds per batch size (modes alternate)")
    p.add_argument("--cuda-graph", action="store_true", help="batch: time the CUDA-graph step beside the plain one")
    p.add_argument("--train-batch", type=positive_int, help="windows per step (default 16 on CUDA, 2 on CPU)")
    p.add_argument("--train-window", type=positive_int, help="frames per window (default 32 on CUDA, 16 on CPU)")
    p.add_argument("--train-steps", type=positive_int, default=3, help="timed training steps (after one warm-up)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="peak of the device for MFU (H100 bf16 dense)")
    p.add_argument("--quality-steps", default="1,2,4,8", help="sampler steps to compare")
    p.add_argument("--quality-episodes", type=positive_int, default=4)
    p.add_argument("--quality-context", type=positive_int, default=100, help="retrieval context frames")
    p.add_argument("--out", default="runs/bench")


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc), else its peak (getrusage)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def random_context(cfg: ModelConfig, batch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (batch, 1, cfg.image_size, cfg.image_size, cfg.channels), dtype=torch.uint8, generator=g)


def actions(cfg: ModelConfig, batch: int) -> torch.Tensor:
    if cfg.action_type == "continuous":
        return torch.zeros(batch, cfg.action_dim)
    return torch.ones(batch, dtype=torch.long)  # forward


# --- latency and memory vs frames ----------------------------------------------------------------

def latency_vs_frames(sim: Simulator, frames: int, label: str, max_cache_bytes: float) -> dict:
    """Generate `frames` frames at batch 1; step times for every frame, memory at POINTS.

    A run whose memory outgrows the machine (full attention, long runs) stops early and says why
    under "stopped": how far it got is itself the result."""
    cuda = sim.device.type == "cuda"
    sim.reset(random_context(sim.cfg, 1))
    for _ in range(3):  # warm-up (allocator, kernels), then start again from a fresh memory
        sim.step(actions(sim.cfg, 1))
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(sim.device)
    sim.reset(random_context(sim.cfg, 1))
    points = [f for f in POINTS if f < frames] + [frames]
    out = {"frame": [], "ms": [], "cache_bytes": [], "rss_bytes": [], "cuda_peak_bytes": [], "stopped": None}
    step_ms = []
    for f in tqdm(range(1, frames + 1), desc=f"latency {label}", dynamic_ncols=True, leave=False):
        try:
            sim.step(actions(sim.cfg, 1))
        except torch.cuda.OutOfMemoryError:
            out["stopped"] = f"out of GPU memory at frame {f}"
            break
        step_ms.append(1000 * sim.last_step_seconds)
        if sim.memory_bytes() > max_cache_bytes:
            out["stopped"] = f"cache above {max_cache_bytes / 2**30:g} GiB at frame {f} (--max-cache-gb)"
            break
        if f in points:
            out["frame"].append(f)
            out["ms"].append(statistics.median(step_ms[-WINDOW:]))
            out["cache_bytes"].append(sim.memory_bytes())
            out["rss_bytes"].append(rss_bytes())
            out["cuda_peak_bytes"].append(torch.cuda.max_memory_allocated(sim.device) if cuda else None)
    sim.cache = None  # free the memory before the next run
    out["step_ms"] = step_ms
    return out


def latency_ratios(runs: dict[str, dict]) -> dict:
    """Late/early latency and cache per architecture (frame 100 as early when >= 1000 frames ran,
    else the first point) and LSSVWM over full attention at the last frame both reached."""
    ratios = {}
    for arch, r in runs.items():
        if not r["frame"]:
            continue
        early = 100 if r["frame"][-1] >= 1000 else r["frame"][0]
        i = r["frame"].index(early)
        ratios[arch] = {"early_frame": early, "late_frame": r["frame"][-1], "late_over_early_ms": r["ms"][-1] / r["ms"][i],
                        "late_over_early_cache": r["cache_bytes"][-1] / r["cache_bytes"][i]}
    if "lssvwm" in ratios and "full_attention" in ratios:
        a, b = runs["lssvwm"], runs["full_attention"]
        i = min(len(a["frame"]), len(b["frame"])) - 1
        ratios["lssvwm_over_full_attention"] = {"frame": a["frame"][i], "ms": a["ms"][i] / b["ms"][i],
                                                "cache": a["cache_bytes"][i] / b["cache_bytes"][i]}
    return ratios


def latency_table(runs: dict[str, dict], cuda: bool) -> str:
    memory = "CUDA peak MB" if cuda else "RSS MB"
    rows = []
    for i, f in enumerate(all_frames(runs)):
        rows.append([f])
        for r in runs.values():
            if i >= len(r["frame"]):  # this run stopped early
                rows[-1] += ["-"] * 3
                continue
            mem = r["cuda_peak_bytes"][i] if cuda else r["rss_bytes"][i]
            rows[-1] += [f"{r['ms'][i]:.1f}", f"{r['cache_bytes'][i] / MB:.2f}", f"{mem / MB:.0f}"]
    header = ["frame"] + [f"{a} {col}" for a in runs for col in ("ms", "cache MB", memory)]
    stops = "".join(f"\n\n{a} stopped: {r['stopped']}" for a, r in runs.items() if r["stopped"])
    return markdown(header, rows) + stops


def all_frames(runs: dict[str, dict]) -> list[int]:
    """The frames at which the longest run was measured (others may have stopped early)."""
    return max((r["frame"] for r in runs.values()), key=len)


def ratio_table(ratios: dict) -> str:
    rows = []
    for arch, r in ratios.items():
        if arch == "lssvwm_over_full_attention":
            rows.append([f"lssvwm / full_attention at frame {r['frame']}", f"{r['ms']:.2f}", f"{r['cache']:.3f}"])
        else:
            rows.append([f"{arch} (frame {r['late_frame']} / {r['early_frame']})", f"{r['late_over_early_ms']:.2f}",
                         f"{r['late_over_early_cache']:.2f}"])
    return "Ratios (same run):\n\n" + markdown(["ratio", "ms per frame", "cache bytes"], rows)


def markdown(header: list, rows: list[list]) -> str:
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


# --- batched generation ------------------------------------------------------------------------

def batched_throughput(sims: dict[str, Simulator], batch_sizes: list[int], steps: int, rounds: int) -> list[dict]:
    """Per batch size, each simulator's median step time; the simulators (modes) alternate in rounds
    so that a busy moment of a shared machine falls on all of them alike."""
    rows = []
    for B in tqdm(batch_sizes, desc="batch", dynamic_ncols=True, leave=False):
        seconds: dict[str, list[float]] = {mode: [] for mode in sims}
        for _ in range(rounds):
            for mode, sim in sims.items():
                sim.reset(random_context(sim.cfg, B))
                for _ in range(2):  # warm-up: a reset's first step commits its own frame; the second may capture a graph
                    sim.step(actions(sim.cfg, B))
                for _ in range(steps):
                    start = time.perf_counter()
                    sim.step(actions(sim.cfg, B))  # returns frames on the CPU: the device has finished
                    seconds[mode].append(time.perf_counter() - start)
        modes = {mode: {"ms_per_step": 1000 * statistics.median(s), "frames_per_s": B / statistics.median(s)}
                 for mode, s in seconds.items()}
        rows.append({"batch": B, "modes": modes, "cache_bytes": next(iter(sims.values())).memory_bytes()})
    return rows


def batch_table(rows: list[dict]) -> str:
    modes = list(rows[0]["modes"])
    header = ["B"] + [f"{m}: {unit}" for m in modes for unit in ("frames/s", "ms/step")] + ["cache MB"]
    if len(modes) == 2:
        header.append(f"{modes[1]} / {modes[0]} frames/s")
    table = []
    for r in rows:
        m = r["modes"]
        row = [r["batch"]] + [f"{m[k][unit]:.1f}" for k in modes for unit in ("frames_per_s", "ms_per_step")]
        row.append(f"{r['cache_bytes'] / MB:.1f}")
        if len(modes) == 2:
            row.append(f"{m[modes[1]]['frames_per_s'] / m[modes[0]]['frames_per_s']:.2f}x")
        table.append(row)
    return markdown(header, table)


# --- training throughput ---------------------------------------------------------------------------

class RandomSource:
    """Random windows: the trainer's step timed without the cost of making data."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg

    def next(self, window: int, batch: int) -> TrajectoryBatch:
        B, s, c = batch, self.cfg.image_size, self.cfg.channels
        acts = (torch.randn(B, window, self.cfg.action_dim) if self.cfg.action_type == "continuous"
                else torch.randint(0, self.cfg.num_actions, (B, window)))
        return TrajectoryBatch(torch.randint(0, 256, (B, window, s, s, c), dtype=torch.uint8), acts,
                               torch.zeros(B, window), torch.zeros(B, window, dtype=torch.bool),
                               torch.ones(B, dtype=torch.bool))

    def restart(self, step: int) -> None:
        pass

    def describe(self) -> dict:
        return {"env_id": None, "action_space": {"type": self.cfg.action_type}}

    def adapt_model_config(self, cfg: ModelConfig) -> ModelConfig:
        return cfg


def training_throughput(cfg: ModelConfig, batch: int, window: int, steps: int, device: torch.device,
                        peak_tflops: float) -> dict:
    from worldsim.train.config import TrainConfig
    from worldsim.train.trainer import Trainer

    tcfg = TrainConfig(model=cfg, batch_size=batch, window_schedule=((0, window),), warmup_steps=1)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(tcfg, tmp, device=str(device), source=RandomSource(cfg))
        trainer.train_step()  # warm-up
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        sync()
        seconds = time.perf_counter() - start
    fps = batch * window * steps / seconds
    achieved = fps * training_flops_per_frame(cfg, window)
    return {"batch": batch, "window": window, "frames_per_s": fps, "tokens_per_s": fps * cfg.tokens_per_frame,
            "seconds_per_step": seconds / steps, "train_flops_per_frame": training_flops_per_frame(cfg, window),
            "achieved_tflops": achieved / 1e12, "peak_tflops": peak_tflops,
            "mfu": achieved / (peak_tflops * 1e12) if device.type == "cuda" else None,
            "mfu_note": None if device.type == "cuda" else "MFU is reported on CUDA only (the peak is a GPU's)"}


# --- sampler steps vs quality -----------------------------------------------------------------------

def quality_vs_steps(model, config: dict, step_counts: list[int], episodes: int, context: int,
                     device, dtype) -> list[dict]:
    from worldsim.evaluation.lpips import load_lpips
    from worldsim.evaluation.tasks import evaluate, maze_episodes, maze_size

    eps = maze_episodes("retrieval", episodes, context, None, maze_size(config), model.cfg.image_size)
    lpips_net = load_lpips()
    rows = []
    for steps in step_counts:
        result, _ = evaluate(Simulator.for_checkpoint(model, config, steps, None, device, dtype), eps, batch_size=1,
                             lpips_net=lpips_net)
        m = result["metrics"]["mean"]
        rows.append({"sampling_steps": steps, "psnr": m["psnr"], "ssim": m["ssim"], "lpips": m["lpips"],
                     "ms_per_frame": 1000 * result["seconds_per_step"]})
    return rows


# --- the command ------------------------------------------------------------------------------------

def models(args) -> tuple[dict[str, LSSVWM], LSSVWM | None, dict | None]:
    """(architecture -> model, the trained model or None, its checkpoint config or None). The
    checkpoint's weights serve its own architecture; the others are random-init variants."""
    archs = [a.strip() for a in args.architectures.split(",") if a.strip()]
    if set(archs) - set(ARCHITECTURES):
        raise ValueError(f"unknown architectures {sorted(set(archs) - set(ARCHITECTURES))}; choose from {ARCHITECTURES}")
    trained, config = None, None
    if args.checkpoint:
        from worldsim.checkpoint import load_model

        trained, config = load_model(args.checkpoint)
    base = trained.cfg if trained is not None else preset(args.preset)
    torch.manual_seed(0)
    nets = {a: trained if trained is not None and a == base.architecture else LSSVWM(variant(base, a, args.sliding_window))
            for a in archs}
    return nets, trained, config


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    sections = args.sections.split(",") if args.sections else [s for s in SECTIONS if s != "quality" or args.checkpoint]
    if set(sections) - set(SECTIONS):
        raise ValueError(f"unknown sections {sorted(set(sections) - set(SECTIONS))}; choose from {SECTIONS}")
    if "quality" in sections and not args.checkpoint:
        raise ValueError("the quality section needs --checkpoint (random weights generate noise)")
    nets, trained, config = models(args)
    main = trained if trained is not None else nets.get("lssvwm", next(iter(nets.values())))
    out_dir = Path(args.out)
    report: dict = {"sections": sections, "sampling_steps": args.sampling_steps,
                    "parameters": {a: m.num_parameters() for a, m in nets.items()}}
    tables = []

    if "latency" in sections:
        frames = args.frames or (10_000 if cuda else 2000)
        sampler = SamplerSettings(steps=args.sampling_steps)
        runs = {a: latency_vs_frames(Simulator(m, sampler, device=device, dtype=args.dtype), frames, a,
                                     args.max_cache_gb * 2**30) for a, m in nets.items()}
        report["latency"] = {"frames": frames, "runs": runs, "ratios": latency_ratios(runs)}
        tables.append(f"Latency and memory vs frames generated (batch 1, {args.sampling_steps} sampler steps):\n\n"
                      + latency_table(runs, cuda))
        tables.append(ratio_table(report["latency"]["ratios"]))
    if "batch" in sections:
        graph_modes = (False, True) if args.cuda_graph else (False,)
        graphed = "CUDA graph" if cuda else "static step (no graph on a CPU)"
        sims = {graphed if g else "plain": Simulator(main, SamplerSettings(steps=args.sampling_steps), device=device,
                                                     dtype=args.dtype, cuda_graph=g) for g in graph_modes}
        rows = batched_throughput(sims, ints(args.batch_sizes), args.batch_steps, args.batch_rounds)
        report["batch"] = rows
        tables.append(f"Batched generation (one Simulator per mode, {main.cfg.architecture}, median step of "
                      f"{args.batch_rounds} x {args.batch_steps}):\n\n" + batch_table(rows))
    if "train" in sections:
        r = training_throughput(main.cfg, args.train_batch or (16 if cuda else 2), args.train_window or (32 if cuda else 16),
                                args.train_steps, device, args.peak_tflops)
        report["train"] = r
        mfu = "n/a (CPU)" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        tables.append("Training (random frames; bf16 autocast on CUDA):\n\n" + markdown(
            ["batch x window", "frames/s", "tokens/s", "GFLOP/frame (fwd+bwd)", "achieved TFLOP/s", "MFU"],
            [[f"{r['batch']} x {r['window']}", f"{r['frames_per_s']:.1f}", f"{r['tokens_per_s']:.0f}",
              f"{r['train_flops_per_frame'] / 1e9:.3g}", f"{r['achieved_tflops']:.3f}", mfu]]))
    if "quality" in sections:
        rows = quality_vs_steps(main, config, ints(args.quality_steps), args.quality_episodes, args.quality_context,
                                device, args.dtype)
        report["quality"] = rows
        tables.append(f"Sampler steps vs retrieval quality ({args.quality_episodes} episodes, context "
                      f"{args.quality_context}):\n\n" + markdown(
                          ["steps", "PSNR", "SSIM", "LPIPS", "ms/frame"],
                          [[r["sampling_steps"], f"{r['psnr']:.2f}", f"{r['ssim']:.3f}",
                            "n/a" if r["lpips"] is None else f"{r['lpips']:.3f}", f"{r['ms_per_frame']:.1f}"]
                           for r in rows]))

    prov = provenance(args, device, config={a: dataclasses.asdict(m.cfg) for a, m in nets.items()},
                      checkpoints={"model": config["path"]} if config else None)
    files = [write_json(out_dir / "bench.json", report, prov)]
    files += plot(report, out_dir, prov, cuda)
    print("\n\n".join(tables))
    print("\nwrote " + ", ".join(map(str, files)))
    return 0


def plot(report: dict, out_dir: Path, prov: dict, cuda: bool) -> list[Path]:
    files = []
    if "latency" in report:
        runs = report["latency"]["runs"]
        x = all_frames(runs)
        files.append(plots.line_plot(x, {a: r["ms"] for a, r in runs.items()}, out_dir / "latency_vs_frames.png", prov,
                                     "frames generated", "ms per frame", "step latency (batch 1)"))
        memory = {f"{a} cache": [b / MB for b in r["cache_bytes"]] for a, r in runs.items()}
        if cuda:
            memory.update({f"{a} CUDA peak": [b / MB for b in r["cuda_peak_bytes"]] for a, r in runs.items()})
        files.append(plots.line_plot(x, memory, out_dir / "memory_vs_frames.png", prov, "frames generated", "MB",
                                     "memory vs frames", logy=True))
    if "batch" in report:
        rows = report["batch"]
        files.append(plots.line_plot([r["batch"] for r in rows],
                                     {f"{mode} frames/s": [r["modes"][mode]["frames_per_s"] for r in rows]
                                      for mode in rows[0]["modes"]},
                                     out_dir / "batched_throughput.png", prov, "parallel episodes B",
                                     "generated frames/s", "batched generation", logy=True))
    if "quality" in report:
        rows = report["quality"]
        files.append(plots.line_plot([r["sampling_steps"] for r in rows], {"PSNR (dB)": [r["psnr"] for r in rows]},
                                     out_dir / "quality_vs_steps.png", prov, "sampler steps", "retrieval PSNR (dB)",
                                     "sampler steps vs quality"))
    return files
