"""Which noise levels should the sampler's passes run at? A sweep of the schedule power, paired.

    python benchmarks/sampler_schedule.py --checkpoint maze --powers 1,1.5,2,3 \\
        --tasks next-frame:100:50,retrieval:50,retrieval,reasoning,recall --out runs/schedule

Pass i of n runs at noise level (1 - i/n) ** power (`SamplerSettings.levels`): power 1 spaces
them evenly (2 steps: 1 and 0.5), a larger power starts the later passes less noisy (2 steps at
power 2: 1 and 0.25). Each task's held-out episodes are rendered once and scored at every power
with one simulator, so the rows differ by the schedule alone; every row is paired per episode
against the first power (mean difference +- standard error, episodes ahead). Tasks are those of
`worldsim eval` (next-frame is teacher-forced, the others free-running), as TASK[:CONTEXT[:GENERATE]].
Writes OUT/schedule.json (per-episode scores, provenance) and prints a markdown table per task.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from worldsim.checkpoint import load_model
from worldsim.evaluation.lpips import load_lpips
from worldsim.evaluation.metrics import paired_difference
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.evaluation.tasks import TASKS, evaluate_task, lengths, maze_episodes, maze_size
from worldsim.simulator import DTYPES, Simulator


def parse_task(spec: str) -> tuple[str, int | None, int | None]:
    task, *numbers = spec.split(":")
    if task not in TASKS or len(numbers) > 2:
        raise argparse.ArgumentTypeError(f"a task is TASK[:CONTEXT[:GENERATE]] with TASK one of {TASKS}, got {spec!r}")
    return task, *(int(n) for n in numbers), *(None,) * (2 - len(numbers))


def paired(scores: list[float], base: list[float], lower_is_better: bool = False) -> str:
    if scores is base:
        return "-"
    d = paired_difference(scores, base, lower_is_better)
    se = float("nan") if d["se"] is None else d["se"]
    return f"{d['mean']:+.3f} +- {se:.3f} ({d['wins']} of {d['episodes']} ahead)"


SCORE_HEADER = "PSNR | SSIM | LPIPS | PSNR vs first, paired | LPIPS vs first, paired"


def score_cells(row: dict, first: dict) -> str:
    """A sweep row's SCORE_HEADER cells: its mean scores, then its episodes paired with the first row's."""
    ep, m, base = row["per_episode"], row["mean"], first["per_episode"]
    lpips = f"{m['lpips']:.3f}" if m.get("lpips") is not None else "-"
    paired_lpips = paired(ep["lpips"], base["lpips"], lower_is_better=True) if "lpips" in ep else "-"
    return f"{m['psnr']:.2f} | {m['ssim']:.3f} | {lpips} | {paired(ep['psnr'], base['psnr'])} | {paired_lpips}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="checkpoint path or shipped name (default: maze)")
    p.add_argument("--powers", default="1,2", help="comma-separated schedule powers, the first the baseline")
    p.add_argument("--tasks", default="next-frame:100:50,retrieval:50",
                   help="comma-separated TASK[:CONTEXT[:GENERATE]]")
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--sampling-steps", type=int, default=None, help="sampler steps (default: the checkpoint's)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--out", default="runs/sampler-schedule")
    args = p.parse_args(argv)
    powers = [float(x) for x in args.powers.split(",")]
    tasks = [parse_task(t) for t in args.tasks.split(",")]
    model, config = load_model(args.checkpoint)
    sim = Simulator.for_checkpoint(model, config, sampling_steps=args.sampling_steps, device=args.device,
                                   dtype=args.dtype)
    lpips_net = load_lpips()
    out = Path(args.out)
    prov = provenance(args, sim.device, checkpoints={"model": config["path"]})  # hashes the checkpoint: once
    report = {"powers": powers, "sampling_steps": sim.sampler.steps, "context_noise": sim.sampler.context_noise,
              "tasks": []}
    for task, context, generate in tasks:
        context, generate = lengths(task, context, generate)
        episodes = maze_episodes(task, args.episodes, context, generate, maze_size(config), model.cfg.image_size)
        rows = []
        for power in powers:
            sim.sampler = dataclasses.replace(sim.sampler, schedule_power=power)
            result, _ = evaluate_task(task, sim, episodes, None if task == "recall" else generate,
                                      teacher_forced=task == "next-frame", batch_size=args.batch_size,
                                      lpips_net=lpips_net)
            row = {"power": power, "mean": result["metrics"]["mean"], "per_episode": result["metrics"]["per_episode"],
                   "seconds_per_step": result["seconds_per_step"]}
            if "recall" in result:
                row["recall"] = result["recall"]
            rows.append(row)
            report["tasks"].append({"task": task, "context": context, "generate": generate, **row})
            write_json(out / "schedule.json", report, prov)
        levels = ", ".join(f"{r['power']:g}" for r in rows)
        print(f"\n{task}, context {context}{f', generate {generate}' if generate else ''}, {len(episodes)} episodes, "
              f"{sim.sampler.steps} sampler steps, powers {levels}:\n")
        print(f"| power | pass levels | {SCORE_HEADER} |" + (" cue colour right |" if task == "recall" else "")
              + f"\n|---|---|{'---|' * (SCORE_HEADER.count('|') + 1)}" + ("---|" if task == "recall" else ""))
        for r in rows:
            levels = dataclasses.replace(sim.sampler, schedule_power=r["power"]).levels()
            passes = ", ".join(f"{x:.3g}" for x in levels[:-1])
            line = f"| {r['power']:g} | {passes} | {score_cells(r, rows[0])} |"
            if task == "recall":
                right = r["recall"]["accuracy"]
                line += f" {'-' if right is None else f'{right:.2f}'} (chance {r['recall']['chance']:.2f}) |"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
