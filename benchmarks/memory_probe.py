"""Can the training recipe learn memory at all? A whole-model positive control at toy scale (CPU).

    python benchmarks/memory_probe.py --architectures lssvwm,mamba2,sliding_attention,full_attention \
        --steps 600 --out runs/memory_probe

Toy videos of 32 frames, 16x16 pixels: frame 0 shows a cue colour (one of 4) over the whole frame,
the others are grey, except after the action "recall", whose next frame shows the cue again. Recalls
come 1-14 frames after the cue was last shown; beyond the attention window (k = 2 frames, the tiny
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
from worldsim.config import preset
from worldsim.data.shards import ShardWriter
from worldsim.evaluation.compare import parameter_matched, train
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.evaluation.tasks import Clip, rollout
from worldsim.simulator import Simulator
from worldsim.train.config import TrainConfig

COLOURS = np.array([[220, 40, 40], [40, 200, 40], [40, 80, 230], [230, 210, 40]], dtype=np.uint8)
GREY = np.array([110, 110, 110], dtype=np.uint8)
FRAMES, SIZE, WAIT, RECALL = 32, 16, 0, 1


def episode(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """(frames uint8 [32, 16, 16, 3], actions [32], cue index) of one toy video."""
    cue = int(rng.integers(len(COLOURS)))
    actions = np.full(FRAMES, WAIT, dtype=np.int64)
    t = int(rng.integers(0, 14))  # frame t + 1 shows the cue again
    while t + 1 < FRAMES:
        actions[t] = RECALL
        t += int(rng.integers(1, 15))
    shows = np.concatenate([[True], actions[:-1] == RECALL])  # frame i shows the cue
    frames = np.where(shows[:, None, None, None], COLOURS[cue], GREY)
    return np.broadcast_to(frames, (FRAMES, SIZE, SIZE, 3)).astype(np.uint8), actions, cue


def episodes(count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
    rng = np.random.default_rng(seed)
    return [episode(rng) for _ in range(count)]


def write_shards(directory: Path, videos) -> None:
    if directory.is_dir():  # written by an earlier run with the same seed
        return
    with ShardWriter(directory, env_id="toy/CueRecall", action_space=spaces.Discrete(2), frame_size=SIZE) as w:
        for frames, actions, _ in videos:
            w.write_episode(frames, actions, np.zeros(FRAMES), np.zeros(FRAMES, dtype=bool))


def predict(checkpoint: Path, episodes) -> list[np.ndarray]:
    """Frames 1..31 of each video, each predicted teacher-forced after the true frames before it."""
    model, config = load_model(checkpoint)
    sim = Simulator.for_checkpoint(model, config, device="cpu")
    clips = [Clip(torch.from_numpy(f), torch.from_numpy(a), 1, seed) for seed, (f, a, _) in enumerate(episodes)]
    return rollout(sim, clips, teacher_forced=True, batch_size=len(clips)).generated


def accuracy_by_gap(episodes, generated: list[np.ndarray]) -> dict:
    """Cue colours named right in the recall frames, by frames since the cue was last shown."""
    by_gap: dict[str, list[bool]] = {"1-2": [], "3-6": [], "7-14": []}
    for (frames, actions, cue), gen in zip(episodes, generated):
        last_shown = 0
        for i in range(1, FRAMES):
            if actions[i - 1] == RECALL:
                mean = gen[i - 1].reshape(-1, 3).astype(np.float64).mean(0)
                answer = int(np.argmin(((COLOURS.astype(np.float64) - mean) ** 2).sum(1)))
                gap = i - last_shown
                by_gap["1-2" if gap <= 2 else "3-6" if gap <= 6 else "7-14"].append(answer == cue)
                last_shown = i
    return {g: {"accuracy": float(np.mean(v)) if v else None, "recalls": len(v)} for g, v in by_gap.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--architectures", default="lssvwm,mamba2,sliding_attention,full_attention")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--train-episodes", type=int, default=2048)
    p.add_argument("--eval-episodes", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/memory_probe")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    write_shards(out / f"shards_seed{args.seed}", episodes(args.train_episodes, seed=1000 + args.seed))
    held_out = episodes(args.eval_episodes, seed=2000)
    # the tiny preset but wider than a patch's 48 values (at width 32 the patch embedding is a bottleneck
    # and no model learned to draw even the grey frames cleanly in 600 steps)
    base = preset("tiny", width=args.width)
    results = {}
    print("| model | parameters | right, cue shown 1-2 frames before | 3-6 | 7-14 |\n|---|---:|---:|---:|---:|")
    for arch in args.architectures.split(","):
        model = parameter_matched(base, arch, sliding_window=base.attn_window)
        cfg = TrainConfig(model=model, batch_size=args.batch_size, window_schedule=((0, FRAMES),), lr=2e-3,
                          warmup_steps=50, total_steps=args.steps, save_every=args.steps, data=str(out / f"shards_seed{args.seed}"),
                          seed=args.seed)
        checkpoint = train(cfg, out / f"{arch}_seed{args.seed}", args.steps, "cpu")
        results[arch] = {"parameters": sum(t.numel() for t in load_model(checkpoint)[0].parameters()),
                         "config": dataclasses.asdict(model), "accuracy_by_gap": accuracy_by_gap(held_out, predict(checkpoint, held_out))}
        row = results[arch]["accuracy_by_gap"]
        print(f"| {arch} | {results[arch]['parameters']} | "
              + " | ".join(f"{row[g]['accuracy']:.2f} ({row[g]['recalls']})" for g in row) + " |", flush=True)
    write_json(out / f"memory_probe_seed{args.seed}.json", results, provenance(args, torch.device("cpu")))


if __name__ == "__main__":
    main()
