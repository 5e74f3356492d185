"""`worldsim eval`: score a checkpoint against ground truth, or compare the paper's architectures.

    worldsim eval --checkpoint C --task retrieval  [--context 400] [--generate M] [--episodes 16]
    worldsim eval --checkpoint C --task reasoning  [--context 576 --generate 224]
    worldsim eval --checkpoint C --task recall     [--context 500]    # frames spent away from the cue
    worldsim eval --checkpoint C --task next-frame [--context 400 --generate 100] [--data DIR]
    worldsim eval --checkpoint C --task recall --teacher-forced   # any task, true frames before each frame
    worldsim eval --checkpoint C --task retrieval --teacher-forced --context-kept 10   # memory cut to 10 frames
    worldsim eval --task compare --train-config tiny|small|base|FILE --steps N [--compare-on retrieval:192,reasoning,recall]
    worldsim eval --task compare ... --compare-on recall --context-kept 10   # and again on the last 10 context frames

Maze tasks run on held-out maze seeds (never trained on) in the checkpoint's maze; next-frame
can instead run on windows of a user's shards (`--data`, from `worldsim record`). Writes
OUT/TASK.json (summary, per distance, per episode, per frame; provenance) and PNGs: metrics vs
frame distance and strips of true vs generated frames. Retrieval's default generates the whole way
back (context + turn-around); --generate M scores only its first M frames.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from worldsim.checkpoint import load_model
from worldsim.cli import positive_int
from worldsim.evaluation import plots
from worldsim.evaluation.lpips import load_lpips
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.evaluation.tasks import (COMPARE_TASKS, DEFAULT_LENGTHS, TASKS, evaluate_task, lengths,
                                       maze_episodes, maze_size, shard_clips)
from worldsim.simulator import DTYPES, Simulator, add_sampling_arguments, sampling_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, choices=TASKS + ("compare",))
    p.add_argument("--checkpoint", help="checkpoint path or shipped name (default: maze); not for compare")
    p.add_argument("--context", type=positive_int, help="context frames (recall: frames away from the cue); "
                   "defaults: " + ", ".join(f"{k} {c}" for k, (c, _) in DEFAULT_LENGTHS.items()))
    p.add_argument("--generate", type=positive_int, help="frames generated after the context (retrieval: at most "
                   "this many of the way back; default: all)")
    p.add_argument("--episodes", type=positive_int, default=16, help="episodes (held-out maze seeds or shard windows)")
    p.add_argument("--data", help="next-frame: a shard directory of the user's env instead of the maze")
    p.add_argument("--teacher-forced", action="store_true",
                   help="generate each frame after the true frames before it (next-frame always does): the "
                        "fidelity a task's frames reach when memory and the path never drift")
    p.add_argument("--context-kept", type=positive_int, metavar="K",
                   help="the model observes only the last K context frames (default: all); with K at the attention "
                        "window and --teacher-forced, the loss against the whole context is what the SSM remembers; "
                        "with --task compare, each task is scored both ways (a memory control column)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    add_sampling_arguments(p)
    p.add_argument("--batch-size", type=positive_int, default=16, help="episodes generated in parallel")
    p.add_argument("--weights", default="auto", choices=("auto", "ema", "model"))
    p.add_argument("--out", help="output directory (default: runs/eval-TASK)")
    g = p.add_argument_group("compare (--task compare)")
    g.add_argument("--train-config", help="training preset or JSON file, the same for every model (default: tiny)")
    g.add_argument("--steps", type=positive_int, help="training steps of every model")
    g.add_argument("--seed", type=int, help="training seed of every model (default: the train config's): "
                   "a second seed repeats the comparison on other initial weights and data, the same scored episodes")
    g.add_argument("--architectures", help="comma-separated (default: all five)")
    g.add_argument("--sliding-window", type=int, help="frames of the sliding-attention baseline "
                   "(default: the paper's 192 per 400 context frames)")
    g.add_argument("--compare-on", metavar="TASKS",
                   help="comma-separated tasks to compare on, each model trained once for all: "
                        f"{', '.join(COMPARE_TASKS)} (default: retrieval), each as TASK or TASK:CONTEXT "
                        "(e.g. retrieval:192,reasoning,recall); recall also scores the cue's colour; "
                        "--context and --generate, when given, apply to every task without its own context")
    g.add_argument("--jobs", type=positive_int, help="models trained and evaluated side by side, one process each, "
                   "round-robin over the GPUs if several (on one GPU: 2 gained 1.38x throughput, 5 starved)")


# options of one mode that the other would ignore: given there, they are an error
ONE_CHECKPOINT_OPTIONS = ("checkpoint", "data", "teacher_forced")
COMPARE_OPTIONS = ("train_config", "steps", "seed", "architectures", "sliding_window", "compare_on", "jobs")


def run(args) -> int:
    compare = args.task == "compare"
    stray = [n for n in (ONE_CHECKPOINT_OPTIONS if compare else COMPARE_OPTIONS) if getattr(args, n) not in (None, False)]
    if stray:
        flags = ", ".join("--" + n.replace("_", "-") for n in stray)
        raise ValueError(f"{flags}: not for --task {args.task} " + (
            "(compare trains its own models and scores their free-running frames, as the paper)" if compare
            else "(options of --task compare)"))
    if compare:
        from worldsim.evaluation.compare import run_compare

        return run_compare(args)
    return run_task(args)


def run_task(args) -> int:
    model, config = load_model(args.checkpoint, weights=args.weights)
    sim = Simulator.for_checkpoint(model, config, device=args.device, dtype=args.dtype, **sampling_options(args))
    context, generate = lengths(args.task, args.context, args.generate)
    if args.data:
        if args.task != "next-frame":
            raise ValueError("--data (shards) works with --task next-frame; the other tasks need the maze")
        episodes = shard_clips(args.data, args.episodes, context, generate)
    else:
        episodes = maze_episodes(args.task, args.episodes, context, generate, maze_size(config), model.cfg.image_size)
    # hashed now, from the weights just loaded: a checkpoint moved during a long run loses nothing
    prov = provenance(args, sim.device, checkpoints={"model": config["path"]},
                      config={"model": config["model"], "source": config.get("source"),
                              "sampling": dataclasses.asdict(sim.sampler)})
    print(f"worldsim eval {args.task}: {len(episodes)} episodes, context {context}, sampler steps {sim.sampler.steps}, "
          f"device {sim.device}")
    teacher_forced = args.teacher_forced or args.task == "next-frame"
    result, rollouts = evaluate_task(args.task, sim, episodes, None if args.task == "recall" else generate,
                                     teacher_forced=teacher_forced, batch_size=args.batch_size, lpips_net=load_lpips(),
                                     context_kept=args.context_kept)

    out = Path(args.out or f"runs/eval-{args.task}")
    payload = {"task": args.task, "data": args.data or "maze held-out seeds", "context": context,
               "generate": generate, "teacher_forced": teacher_forced, "context_kept": args.context_kept, **result}
    files = [write_json(out / f"{args.task}.json", payload, prov),
             plots.metric_curves({args.task: result["metrics"]}, out / f"{args.task}_metrics.png", prov, args.task),
             plots.frame_strip(*same_length(rollouts.truth, rollouts.generated), out / f"{args.task}_strip.png", prov,
                               f"{args.task}: true (above) vs generated, frames after the context")]
    m = result["metrics"]["mean"]
    print(f"| task | episodes | PSNR | SSIM | LPIPS | ms/step |\n|---|---|---|---|---|---|\n"
          f"| {args.task} | {len(episodes)} | {m['psnr']:.2f} | {m['ssim']:.3f} | "
          f"{'n/a' if m['lpips'] is None else format(m['lpips'], '.3f')} | {1000 * result['seconds_per_step']:.1f} |")
    if m["lpips"] is None:
        print(result["metrics"]["lpips_note"])  # why: no weights fetched, or frames too small
    if args.task == "recall":
        r = result["recall"]
        shuffled = ("" if r["p_value"] is None else f"; its answers shuffled across them: {r['shuffled_chance']:.2f}, "
                    f"as high in a share p = {r['p_value']:.4f}")
        print(f"cue colour recall: accuracy {r['accuracy']} vs chance {r['chance']:.2f} over the "
              f"{r['episodes_scored']} episodes whose frame border does not show the cue's colour{shuffled}. Left out: "
              f"{r['border_shows_cue']} where it does (over all: {r['accuracy_all']}); answers in the border's colour: "
              f"{r['answers_in_border_colour']} (reader on true frames: {r['reader_accuracy_on_truth']})")
    print("wrote " + ", ".join(map(str, files)))
    return 0


def same_length(truth: list, generated: list):
    """Episodes cut to the shortest one's length, stacked [E, G, H, W, 3] (for the frame strip)."""
    G = min(len(t) for t in truth)
    return np.stack([t[:G] for t in truth]), np.stack([g[:G] for g in generated])
