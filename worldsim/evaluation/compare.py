"""The paper's Table 2 on the built-in maze: LSSVWM against its baselines, one command.

    worldsim eval --task compare --train-config small --steps 20000 --out runs/compare [--device cuda]

Each architecture (config.ARCHITECTURES) is trained with the same TrainConfig -- steps, batch,
window schedule, data seed: equal training data and steps -- at a parameter count matched to
LSSVWM's (`parameter_matched`), then evaluated on the same held-out episodes of each task in
`--compare-on` (retrieval, reasoning, recall; several tasks share one training) with the same
sampler. Writes, per task, compare_TASK.json, compare_TASK.md (the table, with the paper's
numbers beside ours) and compare_TASK_metrics.png. `--jobs N` trains and evaluates N
models at once, one process each, dealt round-robin over the GPUs when there are several. On one
GPU the processes share it: two SSM models side by side trained at 1.38x the throughput of one,
five starved the SSM models (BENCHMARKS.md, "The paper's comparison"). Runs
resume: a model whose run directory already holds a checkpoint at the requested step is not
trained again.

`--context-kept K` adds a memory control: each task is scored a second time with each model given
only the last K frames of every context. A model that remembers scores better with the whole
context (and recalls the cue); one whose lead comes from how its frames hold up free-running scores
the same either way (BENCHMARKS.md, "The comparison's retrieval margins are not memory").
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from worldsim.checkpoint import load_model, resolve
from worldsim.config import ARCHITECTURES, ModelConfig, variant
from worldsim.evaluation import plots
from worldsim.evaluation.flops import training_flops_per_frame
from worldsim.evaluation.lpips import load_lpips
from worldsim.evaluation.metrics import paired_difference
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.evaluation.tasks import COMPARE_TASKS, answers_shuffled, evaluate_task, lengths, maze_episodes
from worldsim.model import LSSVWM
from worldsim.train.config import TrainConfig, load_train_config
from worldsim.train.trainer import Trainer, load_run_config
from worldsim.simulator import Simulator, sampling_options

# Po et al. 2025, Table 2 (Memory Maze; SSIM, LPIPS, PSNR). Retrieval: 400 context + 400 generated;
# reasoning: 576 + 224. The "sliding attention" row is their causal transformer with a 192-frame window.
PAPER_TABLE2 = {
    "retrieval": {"sliding_attention": (0.829, 0.147, 26.4), "mamba2": (0.747, 0.313, 20.4),
                  "mamba2_local": (0.735, 0.336, 19.3), "lssvwm": (0.898, 0.069, 30.8),
                  "full_attention": (0.914, 0.057, 32.6)},
    "reasoning": {"sliding_attention": (0.839, 0.125, 27.1), "mamba2": (0.827, 0.150, 26.4),
                  "mamba2_local": (0.845, 0.113, 27.5), "lssvwm": (0.855, 0.099, 28.2),
                  "full_attention": (0.860, 0.089, 28.8)},
}
PAPER_SLIDING_WINDOW = (192, 400)  # their window, per frames of retrieval context


def count_parameters(cfg: ModelConfig) -> int:
    with torch.device("meta"):  # shapes only: no memory, no init cost
        return LSSVWM(cfg).num_parameters()


def parameter_matched(cfg: ModelConfig, architecture: str, sliding_window: int = 48,
                      tolerance: float = 0.1) -> ModelConfig:
    """`architecture`'s variant of cfg with about as many parameters as cfg's LSSVWM.

    The baselines lack a mixer (the SSM or the attention) in every layer, so at equal width and
    depth they are smaller. Width is searched first (depth kept, as the paper equalises by layers);
    only when no width comes within `tolerance` is depth searched too. Width steps keep heads and
    SSM head dims whole.
    """
    target = count_parameters(variant(cfg, "lssvwm", sliding_window))
    if architecture == "lssvwm":
        return variant(cfg, "lssvwm", sliding_window)
    step = math.lcm(cfg.attn_heads, cfg.ssm_headdim // math.gcd(cfg.ssm_expand, cfg.ssm_headdim))

    def best(depths):
        # ssm_blocks=() first: variant() sets each architecture's blocks for the new depth
        shapes = [(d, w) for d in depths for w in range(step, 2 * cfg.width + 1, step)]
        configs = [variant(dataclasses.replace(cfg, depth=d, width=w, ssm_blocks=(), attention=True),
                           architecture, sliding_window) for d, w in shapes]
        errors = [abs(count_parameters(c) / target - 1) for c in configs]
        i = min(range(len(configs)), key=lambda j: (errors[j], abs(shapes[j][0] - cfg.depth), abs(shapes[j][1] - cfg.width)))
        return configs[i], errors[i]

    matched, error = best([cfg.depth])
    if error > tolerance:
        matched, error = best(range(1, 2 * cfg.depth + 1))
    if error > tolerance:
        raise ValueError(f"no {architecture} config within {tolerance:.0%} of {target} parameters (best {error:.1%})")
    return matched


def train(cfg: TrainConfig, run_dir: Path, steps: int, device: str) -> Path | None:
    """Train (or finish training) one model; returns its checkpoint directory, or None when a
    signal stopped the training first (its checkpoint is saved: the same command resumes)."""
    resuming = (run_dir / "latest").is_file()
    if resuming:  # a run of another config (seed, model, schedule) must not be scored as this one's
        done = load_run_config(run_dir)
        changed = [f.name for f in dataclasses.fields(cfg) if getattr(done, f.name) != getattr(cfg, f.name)]
        if changed:
            raise ValueError(f"{run_dir} holds a run trained with another config (differing: {', '.join(changed)}); "
                             "give another --out, or remove that run to train it again")
    trainer = Trainer(cfg, run_dir, device=device)
    if resuming:
        trainer.resume(run_dir)
    if trainer.step < steps:
        trainer.fit(steps)
    return resolve(run_dir) if trainer.step >= steps else None


def psnr_beyond(per_frame_psnr: list[list[float]], window: int) -> float | None:
    """Mean PSNR of the frames generated more than `window` frames after the context: there the
    sliding window sees no context frame, so what a model still gets right of it, it remembered."""
    values = [v for episode in per_frame_psnr for v in episode[window:]]
    return float(np.mean(values)) if values else None


def pair_with_lssvwm(rows: list[dict]) -> None:
    """Give each row its "lssvwm_minus": the paired PSNR difference (same episodes) between the
    first lssvwm row of its training seed (a row's "seed"; none given: all one seed) and itself.
    Rows of a seed without an lssvwm row stay unpaired."""
    references = {}
    for row in rows:
        if row["architecture"] == "lssvwm":
            references.setdefault(row.get("seed"), row)
    for row in rows:
        reference = references.get(row.get("seed"))
        if reference is not None and row is not reference:
            row["lssvwm_minus"] = paired_difference(reference["metrics"]["per_episode"]["psnr"],
                                                    row["metrics"]["per_episode"]["psnr"])


def final_loss(path: Path, rows: int = 5) -> float | None:
    """Mean diffusion loss of the last `rows` logged training steps of a training log (a run's
    metrics.jsonl)."""
    if not path.is_file():
        return None
    logged = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return float(np.mean([r["diffusion"] for r in logged[-rows:]])) if logged else None


def kept_frames(rows: list[dict]) -> int | None:
    """The K of the rows' memory control (`--context-kept`), None if no row has one."""
    ks = sorted({r["kept"]["frames"] for r in rows if "kept" in r})
    if len(ks) > 1:
        raise ValueError(f"rows cut the context to different lengths ({', '.join(map(str, ks))}): one table takes one")
    return ks[0] if ks else None


def table_markdown(rows: list[dict], task: str, window: int) -> str:
    paper = PAPER_TABLE2.get(task, {})  # the paper has no cue-recall table
    recall = task == "recall"
    kept = kept_frames(rows)
    lpips_notes = sorted({r["metrics"]["lpips_note"] for r in rows if r["lpips"] is None})  # why it is missing
    columns = ["model", "params", "train GFLOP/frame", "final loss", "SSIM ↑", "LPIPS ↓", "PSNR ↑",
               f"PSNR beyond {window} ↑", "LSSVWM - model, PSNR", *(["cue recall ↑"] if recall else []),
               *([f"PSNR, last {kept}", f"whole - last {kept}, PSNR", *([f"cue recall, last {kept}"] if recall else [])]
                 if kept else []),
               "paper SSIM", "paper LPIPS", "paper PSNR"]
    lines = [f"Spatial {task} on the built-in maze (ours) beside the paper's Table 2 (Memory Maze). "
             f"PSNR beyond {window}: frames more than the sliding window ({window}) after the context. "
             "LSSVWM - model: paired over the episodes, mean +- s.e. (episodes LSSVWM is ahead). "
             + ("Cue recall: the cue's colour read off the generated frames where the true ones show it, "
                "right in this share of the episodes whose frame border (the target's colour) does not show the "
                "cue's; in brackets chance (1/K), then the model's answers shuffled across those episodes: the "
                "accuracy expected so, and the share of shuffles as high (p). " if recall else "")
             + (f"Last {kept}: the same episodes, the model given only the last {kept} frames of each context; "
                f"whole - last {kept}: paired, what the older context adds (memory). " if kept else "")
             + (f"LPIPS: n/a where not computed ({'; '.join(lpips_notes)})." if lpips_notes else "LPIPS: AlexNet, v0.1."),
             "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]

    def num(x, spec):
        return "n/a" if x is None else format(x, spec)

    def paired(d):
        return "-" if d is None else f"{d['mean']:+.2f} +- {num(d['se'], '.2f')} ({d['wins']}/{d['episodes']})"

    def cue(scores):  # shuffles recomputed from the episodes, so results saved before them show them too
        shuffled = answers_shuffled(scores["per_episode"])
        return (f" {num(scores['accuracy'], '.2f')} ({scores['chance']:.2f}; "
                f"{num(shuffled['shuffled_chance'], '.2f')}, p {num(shuffled['p_value'], '.3f')}) |")

    for r in rows:
        ssim, lpips, psnr = paper.get(r["architecture"], (None, None, None))
        memory = ""
        if kept:
            k = r.get("kept")
            memory = (" n/a | n/a |" + (" n/a |" if recall else "") if k is None else
                      f" {k['psnr']:.2f} | {paired(k['whole_minus_kept'])} |" + (cue(k["recall"]) if recall else ""))
        lines.append(f"| {r.get('label', r['architecture'])} | {r['parameters'] / 1e6:.3f}M | {r['train_flops_per_frame'] / 1e9:.3g} | "
                     f"{num(r['final_loss'], '.4f')} | {r['ssim']:.3f} | {num(r['lpips'], '.3f')} | {r['psnr']:.2f} | "
                     f"{num(r['psnr_beyond_window'], '.2f')} | {paired(r.get('lssvwm_minus'))} |"
                     f"{cue(r['recall']) if recall else ''}{memory} {num(ssim, '.3f')} | {num(lpips, '.3f')} | "
                     f"{num(psnr, '.1f')} |")
    return "\n".join(lines) + "\n"


def job_devices(device: str, models: int, jobs: int, cuda_count: int) -> list[str]:
    """The device of each model: with --jobs > 1 and several GPUs (`device` auto or cuda), dealt
    round-robin over them; otherwise all on `device` (an explicit cuda:N included)."""
    if jobs > 1 and device in ("auto", "cuda") and cuda_count > 1:
        return [f"cuda:{i % cuda_count}" for i in range(models)]
    return [device] * models


def compare_one(arch: str, device: str, args, train_cfg: TrainConfig, window: int, tasks: dict, out: Path,
                threads: int = 0):
    """Train (or finish training) one architecture on `device`, then evaluate it on each task of
    `tasks` ({task: (episodes, context, generate)}): ({task: table row}, checkpoint), or None when a signal stopped its training. Each task's one-row result is written
    to OUT/ARCH as soon as it is scored, so a run cut off later keeps it (benchmarks/compare_table.py
    merges such rows). `threads` > 0 sets torch's CPU threads (a worker process among --jobs)."""
    if threads:
        torch.set_num_threads(threads)
    cfg = dataclasses.replace(train_cfg, model=parameter_matched(train_cfg.model, arch, window))
    print(f"compare: {arch}: width {cfg.model.width}, depth {cfg.model.depth}, "
          f"{count_parameters(cfg.model) / 1e6:.3f}M parameters, {args.steps} steps", flush=True)
    start = time.perf_counter()
    path = train(cfg, out / arch, args.steps, device)
    train_seconds = time.perf_counter() - start
    if path is None:  # stopped early: a part-trained model must not enter the table
        return None
    model, config = load_model(path, weights=args.weights)
    sim = Simulator.for_checkpoint(model, config, device=device, dtype=args.dtype, **sampling_options(args))
    model_columns = {"architecture": arch, "parameters": model.num_parameters(), "width": model.cfg.width,
                     "depth": model.cfg.depth, "attn_window": model.cfg.attn_window,
                     "train_flops_per_frame": training_flops_per_frame(model.cfg, cfg.window_at(args.steps)),
                     "train_seconds_this_run": train_seconds, "final_loss": final_loss(out / arch / "metrics.jsonl")}
    scored = {}
    lpips_net = load_lpips()
    for task, (episodes, context, generate) in tasks.items():
        result, _ = evaluate_task(task, sim, episodes, generate, batch_size=args.batch_size, lpips_net=lpips_net)
        mean = result["metrics"]["mean"]
        row = {**model_columns, "ssim": mean["ssim"], "lpips": mean["lpips"], "psnr": mean["psnr"],
               "psnr_beyond_window": psnr_beyond(result["metrics"]["per_frame"]["psnr"], window),
               "paper": dict(zip(("ssim", "lpips", "psnr"), PAPER_TABLE2[task][arch])) if task in PAPER_TABLE2 else None,
               "seconds_per_step": result["seconds_per_step"], "device": str(sim.device), "metrics": result["metrics"]}
        if "recall" in result:
            row["recall"] = result["recall"]
        print(f"compare: {arch}: {task}: PSNR {mean['psnr']:.2f}, SSIM {mean['ssim']:.3f}", flush=True)
        if args.context_kept:
            row["kept"] = score_kept(sim, task, episodes, generate, result, args.context_kept, args.batch_size, lpips_net)
            print(f"compare: {arch}: {task}, last {args.context_kept} context frames: PSNR {row['kept']['psnr']:.2f}",
                  flush=True)
        scored[task] = row
        write_task(task, context, generate, {arch: row}, episodes, {arch: path}, args, cfg, window, out / arch,
                   quiet=True)
    return scored, path


def score_kept(sim: Simulator, task: str, episodes, generate: int | None, whole: dict, kept: int, batch_size: int,
               lpips_net) -> dict:
    """The memory control of one task: its episodes scored again with the model given only the
    last `kept` frames of each context, and the whole context's PSNR gain over that, paired per
    episode (`whole` is the task's result with the whole context)."""
    result, _ = evaluate_task(task, sim, episodes, generate, batch_size=batch_size, lpips_net=lpips_net,
                              context_kept=kept)
    mean = result["metrics"]["mean"]
    scores = {"frames": kept, "psnr": mean["psnr"], "ssim": mean["ssim"], "lpips": mean["lpips"],
              "whole_minus_kept": paired_difference(whole["metrics"]["per_episode"]["psnr"],
                                                    result["metrics"]["per_episode"]["psnr"]),
              "metrics": result["metrics"]}
    if "recall" in result:
        scores["recall"] = result["recall"]
    return scores


def compare_tasks(names: str | None, context: int | None, generate: int | None) -> list[tuple[str, int, int | None]]:
    """(task, context, generate) of each comma-separated TASK[:CONTEXT] in `names` (default:
    retrieval). A task's own CONTEXT comes first, then --context; --generate applies to every
    task; else each takes its defaults."""
    items = [t.strip().partition(":") for t in (names or "retrieval").split(",") if t.strip()]
    tasks = [name for name, _, _ in items]
    unknown = sorted(set(tasks) - set(COMPARE_TASKS))
    if unknown or not tasks:
        raise ValueError(f"--compare-on: unknown tasks {unknown}; choose from {', '.join(COMPARE_TASKS)}")
    if len(set(tasks)) < len(tasks):
        raise ValueError(f"--compare-on names a task twice: {names}")
    if any(own and not (own.isdigit() and int(own) >= 1) for _, _, own in items):
        raise ValueError(f"--compare-on: a task's context (TASK:CONTEXT) must be a whole number >= 1, got {names}")
    return [(name, *lengths(name, int(own) if own else context, generate)) for name, _, own in items]


def run_compare(args) -> int:
    if not args.steps:
        raise ValueError("--task compare needs --steps (training steps of every model)")
    tasks = compare_tasks(args.compare_on, args.context, args.generate)
    shortest = min(context for _, context, _ in tasks)
    if args.context_kept and args.context_kept >= shortest:
        raise ValueError(f"--context-kept {args.context_kept} keeps every frame of a {shortest}-frame context: "
                         "the memory control needs fewer frames than every task's context")
    train_cfg = load_train_config(args.train_config or "tiny")
    if args.seed is not None:
        train_cfg = dataclasses.replace(train_cfg, seed=args.seed)
    first_context = tasks[0][1]  # the default sliding window follows the first task's context
    window = args.sliding_window or max(1, round(first_context * PAPER_SLIDING_WINDOW[0] / PAPER_SLIDING_WINDOW[1]))
    architectures = [a.strip() for a in (args.architectures or ",".join(ARCHITECTURES)).split(",") if a.strip()]
    unknown = set(architectures) - set(ARCHITECTURES)
    if unknown:
        raise ValueError(f"unknown architectures {sorted(unknown)}; choose from {ARCHITECTURES}")
    out = Path(args.out or "runs/compare")
    out.mkdir(parents=True, exist_ok=True)
    scoring = {task: (maze_episodes(task, args.episodes, context, generate, train_cfg.maze_size,
                                    train_cfg.model.image_size), context, generate) for task, context, generate in tasks}

    shared = (args, train_cfg, window, scoring, out)  # the same for every model
    jobs = args.jobs or 1
    devices = job_devices(args.device, len(architectures), jobs,
                          torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if jobs == 1:
        results = [compare_one(arch, device, *shared) for arch, device in zip(architectures, devices)]
    else:
        # Side by side, one process per model, each with its share of the CPU threads.
        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(compare_one, architectures, devices, *[[x] * len(architectures) for x in shared],
                                    [threads] * len(architectures)))
    stopped = [arch for arch, result in zip(architectures, results) if result is None]
    if stopped:
        print(f"compare: training stopped before step {args.steps} ({', '.join(stopped)}); checkpoints are saved, "
              "the same command resumes. No table written.", file=sys.stderr)
        return 130
    checkpoints = {arch: path for arch, (_, path) in zip(architectures, results)}
    for task, context, generate in tasks:
        write_task(task, context, generate, {arch: scored[task] for arch, (scored, _) in zip(architectures, results)},
                   scoring[task][0], checkpoints, args, train_cfg, window, out)
    return 0


def write_task(task: str, context: int, generate: int | None, scored: dict, episodes, checkpoints: dict, args,
               train_cfg: TrainConfig, window: int, out: Path, quiet: bool = False) -> None:
    """One task's table, JSON and plot in `out` from every model's row ({arch: row})."""
    rows = list(scored.values())
    pair_with_lssvwm(rows)
    summaries = {arch: row["metrics"] for arch, row in scored.items()}
    prov = provenance(args, torch.device(rows[0]["device"]), checkpoints=checkpoints,
                      config={"train": json.loads(json.dumps(train_cfg.to_dict(), default=list)),
                              "sliding_window": window, "context": context, "generate": generate,
                              "context_kept": args.context_kept})
    table = table_markdown(rows, task, window)
    hashes = ", ".join(f"{k} {v['sha256'][:16]}" for k, v in prov["checkpoints"].items())
    (out / f"compare_{task}.md").write_text(f"{table}\nProvenance: `{prov['command']}` on {prov['device']}, "
                                    f"torch {prov['torch']}, {prov['date']}; checkpoint sha256: {hashes}\n")
    files = [out / f"compare_{task}.md",
             write_json(out / f"compare_{task}.json", {"task": task, "context": context, "generate": generate,
                                               "episodes": [int(e.seed) for e in episodes], "steps": args.steps,
                                               "table": rows}, prov),
             plots.metric_curves(summaries, out / f"compare_{task}_metrics.png", prov, f"{task}: equal parameters and steps")]
    if not quiet:
        print(table)
    print("wrote " + ", ".join(map(str, files)), flush=True)
