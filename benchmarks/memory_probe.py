"""Can the training recipe learn memory at all? A whole-model positive control at toy scale (CPU).

    python benchmarks/memory_probe.py --architectures lssvwm,mamba2,sliding_attention,full_attention \
        --steps 600 --out runs/memory_probe
    python benchmarks/memory_probe.py --frames 128 --max-gap 100 [--gaps log] --batch-size 8 ...   (long gaps)
    python benchmarks/memory_probe.py ... [--attn-window K] [--attention-blind-prob P]   (LSSVWM's attention)
    python benchmarks/memory_probe.py --architectures mamba2 --same-width ...   (not parameter-matched)

Toy videos of 32 frames (--frames), 16x16 pixels: frame 0 shows a cue colour (one of 4) over the whole
frame, the others are grey, except after the action "recall", whose next frame shows the cue again.
Recalls come 1-14 frames (--max-gap) after the cue was last shown; beyond the attention window (k = 2 frames, the tiny
preset's) drawing the colour needs a memory that carries it across the grey frames. Each architecture (the
tiny preset's variant, parameter-matched to its LSSVWM) trains with the product's trainer on these
videos as shards (Diffusion Forcing, long-context training, state resets, EMA), then predicts every
recall frame of held-out videos teacher-forced (the true frames before it as context). Its answer
is the cue colour nearest the predicted frame's mean colour; chance is 1/4. Attention with a
sliding window of 2 frames sees the cue only when it was shown 1-2 frames before: the no-memory
control, which should be right there and at chance beyond. Prints accuracy by how far back the cue
was last shown; writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from worldsim.checkpoint import load_model
from worldsim.config import preset, variant
from worldsim.data.shards import ShardWriter
from worldsim.evaluation.compare import parameter_matched, train
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.evaluation.tasks import Clip, rollout
from worldsim.simulator import Simulator
from worldsim.train.config import TrainConfig

COLOURS = np.array([[220, 40, 40], [40, 200, 40], [40, 80, 230], [230, 210, 40]], dtype=np.uint8)
GREY = np.array([110, 110, 110], dtype=np.uint8)
SIZE, WAIT, RECALL = 16, 0, 1


def episode(rng: np.random.Generator, frames: int = 32, max_gap: int = 14,
            gaps: str = "uniform") -> tuple[np.ndarray, np.ndarray, int]:
    """(frames uint8 [frames, 16, 16, 3], actions [frames], cue index) of one toy video. Gaps between
    showings of the cue are uniform in [1, max_gap], or log-uniform (as many of 2-3 frames as of 50-75)."""
    cue = int(rng.integers(len(COLOURS)))
    actions = np.full(frames, WAIT, dtype=np.int64)
    if gaps == "uniform":
        gap = lambda: int(rng.integers(1, max_gap + 1))  # noqa: E731
    else:
        gap = lambda: min(max_gap, int(np.exp(rng.uniform(0, np.log(max_gap + 1)))))  # noqa: E731
    t = gap() - 1  # frame t + 1 shows the cue again
    while t + 1 < frames:
        actions[t] = RECALL
        t += gap()
    shows = np.concatenate([[True], actions[:-1] == RECALL])  # frame i shows the cue
    video = np.where(shows[:, None, None, None], COLOURS[cue], GREY)
    return np.broadcast_to(video, (frames, SIZE, SIZE, 3)).astype(np.uint8), actions, cue


def episodes(count: int, seed: int, frames: int = 32, max_gap: int = 14,
             gaps: str = "uniform") -> list[tuple[np.ndarray, np.ndarray, int]]:
    rng = np.random.default_rng(seed)
    return [episode(rng, frames, max_gap, gaps) for _ in range(count)]


def gap_bins(max_gap: int) -> list[tuple[int, int]]:
    """Gaps in doubling bins, 1-2, 3-6, 7-14, 15-30, ..., the last one cut at max_gap."""
    bins, low = [], 1
    while low <= max_gap:
        bins.append((low, min(2 * low, max_gap)))
        low = 2 * low + 1
    return bins


def write_shards(directory: Path, videos) -> None:
    if directory.is_dir():  # written by an earlier run with the same seed
        return
    with ShardWriter(directory, env_id="toy/CueRecall", action_space=spaces.Discrete(2), frame_size=SIZE) as w:
        for frames, actions, _ in videos:
            w.write_episode(frames, actions, np.zeros(len(actions)), np.zeros(len(actions), dtype=bool))


def predict(checkpoint: Path, episodes) -> list[np.ndarray]:
    """Frames 1.. of each video, each predicted teacher-forced after the true frames before it."""
    model, config = load_model(checkpoint)
    sim = Simulator.for_checkpoint(model, config, device="cpu")
    clips = [Clip(torch.from_numpy(f), torch.from_numpy(a), 1, seed) for seed, (f, a, _) in enumerate(episodes)]
    return rollout(sim, clips, teacher_forced=True, batch_size=len(clips)).generated


def accuracy_by_gap(episodes, generated: list[np.ndarray], max_gap: int = 14) -> dict:
    """Cue colours named right in the recall frames, by frames since the cue was last shown."""
    bins = gap_bins(max_gap)
    by_gap: dict[str, list[bool]] = {f"{lo}-{hi}": [] for lo, hi in bins}
    for (frames, actions, cue), gen in zip(episodes, generated):
        last_shown = 0
        for i in range(1, len(frames)):
            if actions[i - 1] == RECALL:
                mean = gen[i - 1].reshape(-1, 3).astype(np.float64).mean(0)
                answer = int(np.argmin(((COLOURS.astype(np.float64) - mean) ** 2).sum(1)))
                lo, hi = next(b for b in bins if b[0] <= i - last_shown <= b[1])
                by_gap[f"{lo}-{hi}"].append(answer == cue)
                last_shown = i
    return {g: {"accuracy": float(np.mean(v)) if v else None, "recalls": len(v)} for g, v in by_gap.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--architectures", default="lssvwm,mamba2,sliding_attention,full_attention")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--frames", type=int, default=32, help="frames per video (and training window)")
    p.add_argument("--max-gap", type=int, default=14, help="most frames between two showings of the cue")
    p.add_argument("--gaps", choices=("uniform", "log"), default="uniform", help="how gaps are drawn in [1, --max-gap]")
    p.add_argument("--dt-init", choices=("step", "frame"), default="step", help="the SSM layers' ssm_dt_init")
    p.add_argument("--attention-blind-prob", type=float, default=0.0,
                   help="TrainConfig.attention_blind_prob: windows in which the attention sees each frame alone "
                        "(LSSVWM and Mamba-2 + local attention only)")
    p.add_argument("--attn-window", type=int, help="frames back the frame-local attention sees (default: the "
                   "tiny preset's 2; 0: its own frame only, so all of the past goes through the SSM)")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--same-width", action="store_true",
                   help="every architecture at --width (default: each parameter-matched to LSSVWM at --width)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--train-episodes", type=int, default=2048)
    p.add_argument("--eval-episodes", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/memory_probe")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if not 1 <= args.max_gap < args.frames:
        p.error(f"--max-gap must be in [1, --frames), got {args.max_gap} with --frames {args.frames}")
    videos = dict(frames=args.frames, max_gap=args.max_gap, gaps=args.gaps)
    tag = (f"seed{args.seed}" if (args.frames, args.max_gap, args.gaps) == (32, 14, "uniform")
           else f"f{args.frames}_g{args.max_gap}{'_log' if args.gaps == 'log' else ''}_seed{args.seed}")
    shards = out / f"shards_{tag}"
    if args.dt_init != "step":  # the same videos, another model
        tag += f"_dt{args.dt_init}"
    if args.attn_window is not None:
        tag += f"_k{args.attn_window}"
    if args.same_width:
        tag += f"_w{args.width}"
    if args.attention_blind_prob:  # the same videos and model, another training
        tag += f"_blind{args.attention_blind_prob:g}"
    write_shards(shards, episodes(args.train_episodes, seed=1000 + args.seed, **videos))
    held_out = episodes(args.eval_episodes, seed=2000, **videos)
    # the tiny preset but wider than a patch's 48 values (at width 32 the patch embedding is a bottleneck
    # and no model learned to draw even the grey frames cleanly in 600 steps)
    base = preset("tiny", width=args.width, ssm_dt_init=args.dt_init,
                  **({} if args.attn_window is None else {"attn_window": args.attn_window}))
    results = {}
    bins = [f"{lo}-{hi}" for lo, hi in gap_bins(args.max_gap)]
    print(f"| model | parameters | right, cue shown {bins[0]} frames before | {' | '.join(bins[1:])} |\n|---|---:|"
          + "---:|" * len(bins))
    for arch in args.architectures.split(","):
        model = (variant(base, arch, base.attn_window) if args.same_width
                 else parameter_matched(base, arch, sliding_window=base.attn_window))
        cfg = TrainConfig(model=model, batch_size=args.batch_size, window_schedule=((0, args.frames),), lr=2e-3,
                          warmup_steps=50, total_steps=args.steps, save_every=args.steps, data=str(shards),
                          seed=args.seed, attention_blind_prob=args.attention_blind_prob)
        checkpoint = train(cfg, out / f"{arch}_{tag}", args.steps, "cpu")
        results[arch] = {"parameters": sum(t.numel() for t in load_model(checkpoint)[0].parameters()),
                         "config": dataclasses.asdict(model), "accuracy_by_gap": accuracy_by_gap(held_out, predict(checkpoint, held_out), args.max_gap)}
        row = results[arch]["accuracy_by_gap"]
        print(f"| {arch} | {results[arch]['parameters']} | "
              + " | ".join(f"{row[g]['accuracy']:.2f} ({row[g]['recalls']})" for g in row) + " |", flush=True)
    write_json(out / f"memory_probe_{tag}.json", results, provenance(args, torch.device("cpu")))


if __name__ == "__main__":
    main()
