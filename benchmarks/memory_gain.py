"""Does the model use what it saw long ago? Its memory gain, measured without free-running drift.

    worldsim eval --checkpoint C --task retrieval --teacher-forced --out runs/mg/whole
    worldsim eval --checkpoint C --task retrieval --teacher-forced --context-kept 10 --out runs/mg/kept
    python benchmarks/memory_gain.py runs/mg/whole/retrieval.json runs/mg/kept/retrieval.json

Both runs predict every frame of the way back from the true frames before it (teacher-forced), so
no frame inherits a generated frame's errors. They differ only in what the model observed of the
context: all of it, or its last K frames. With K at the attention window (10 frames for the
shipped model) the attention sees the same frames in both at every step; what differs is the SSM
state, which in the first run carries the whole context, including the places the way back
returns to. The PSNR of the first run minus the second's, paired per frame, is what the model's
memory of the earlier context is worth. A model without memory scores the same in both.

Prints the gain per episode (mean +- standard error, episodes ahead) and by distance along the way
back, for PSNR and SSIM (and LPIPS when both runs have it; lower is better there). On the maze's
episodes it also splits the frames by when their place (cell + heading quadrant, as
`MazeWorld.place`) was last in view: only a frame whose place was seen before the cut, and not
since, can gain from memory; one that shows a place for the first time cannot.

With --free-running the two runs generate the way back from their own frames (`worldsim eval` without
--teacher-forced). Then the gain mixes memory with drift, each run drifting its own way, but it says
whether a model's free-running score, as the comparison's retrieval table reports it, owes anything to
the context beyond the cut.
"""

import argparse
import json
import sys

import numpy as np

DISTANCES = ((1, 10), (11, 50), (51, 100), (101, 200), (201, 300), (301, 10_000))
LAST_SEEN = (("first sight", None), ("1-10 frames before", (1, 10)), ("11-50", (11, 50)), ("51-200", (51, 200)),
             ("201+", (201, 10**9)))
KEYS = ("task", "context", "generate", "teacher_forced", "episodes")


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def check_pair(whole: dict, kept: dict, free_running: bool = False) -> None:
    """Raise ValueError unless the two runs are the same episodes, both teacher-forced (both free-running
    with `free_running`), the second cut."""
    if free_running and (whole.get("teacher_forced") or kept.get("teacher_forced")):
        raise ValueError("--free-running compares two free-running runs (worldsim eval without --teacher-forced)")
    if not free_running and not (whole.get("teacher_forced") and kept.get("teacher_forced")):
        raise ValueError("both runs must be teacher-forced (worldsim eval --teacher-forced): free-running frames "
                         "differ by their own drift (--free-running compares two such runs anyway)")
    if whole.get("context_kept") is not None or kept.get("context_kept") is None:
        raise ValueError("give the run with the whole context first and the one with --context-kept second")
    differ = [k for k in KEYS if whole.get(k) != kept.get(k)]
    if differ:
        raise ValueError(f"the two runs are not of the same episodes: they differ in {differ}")


def gains(whole: dict, kept: dict, metric: str) -> list[np.ndarray]:
    """Per episode, the per-frame difference whole - kept of `metric`."""
    a, b = whole["metrics"]["per_frame"][metric], kept["metrics"]["per_frame"][metric]
    return [np.asarray(x) - np.asarray(y) for x, y in zip(a, b)]


def mean_se(values) -> str:
    v = np.asarray(values, dtype=np.float64)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return f"{v.mean():+.3f} +- {se:.3f}"


def table(whole: dict, kept: dict) -> str:
    metrics = [m for m in ("psnr", "ssim", "lpips") if m in whole["metrics"]["per_frame"]
               and m in kept["metrics"]["per_frame"]]
    per_metric = {m: gains(whole, kept, m) for m in metrics}
    episodes = len(per_metric["psnr"])
    longest = max(len(g) for g in per_metric["psnr"])
    bins = [(lo, min(hi, longest)) for lo, hi in DISTANCES if lo <= longest]
    mode = "teacher-forced" if whole["teacher_forced"] else "free-running (each run drifts on its own frames)"
    lines = [f"{whole['task']}, context {whole['context']}, {episodes} episodes, {mode}; memory cut to the "
             f"last {kept['context_kept']} context frames in the second run. Gain = whole - cut, paired per frame "
             f"(mean +- s.e. over episodes).", "",
             "| metric | whole context | cut | gain per episode | episodes ahead | "
             + " | ".join(f"frames {lo}-{hi}" for lo, hi in bins) + " |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(bins)]
    for m in metrics:
        g = per_metric[m]
        per_episode = [x.mean() for x in g]
        ahead = sum((x < 0) if m == "lpips" else (x > 0) for x in per_episode)
        by_distance = [mean_se([x[lo - 1:hi].mean() for x in g if len(x) >= lo]) for lo, hi in bins]
        lines.append(f"| {m} | {whole['metrics']['mean'][m]:.3f} | {kept['metrics']['mean'][m]:.3f} | "
                     f"{mean_se(per_episode)} | {ahead} of {episodes} | " + " | ".join(by_distance) + " |")
    return "\n".join(lines)


def places(poses: np.ndarray, maze_size: int, heading_bins: int = 4) -> np.ndarray:
    """Place of each frame from its pose (x, y in cells, heading in radians): [T] int."""
    col, row = np.floor(poses[:, 0]).astype(int), np.floor(poses[:, 1]).astype(int)
    quadrant = np.floor(poses[:, 2] / (2 * np.pi) * heading_bins + 0.5).astype(int) % heading_bins
    return (row * maze_size + col) * heading_bins + quadrant


def by_last_seen(whole: dict, kept: dict) -> str:
    """The PSNR gain split by when each scored frame's place was last in view (maze tasks)."""
    import torch

    from worldsim.evaluation.tasks import maze_episodes, maze_size
    from worldsim.maze.policies import frames_since_seen

    config = whole["provenance"]["config"]
    n = maze_size(config)
    episodes = maze_episodes(whole["task"], len(whole["episodes"]), whole["context"], whole["generate"], n,
                             config["model"]["image_size"])
    if [int(e.seed) for e in episodes] != [e["seed"] for e in whole["episodes"]]:
        raise ValueError("the runs did not score the maze's held-out episodes 0..N-1: cannot find their places")
    per_bin = {name: [] for name, _ in LAST_SEEN}  # per episode: (gain sum, frames)
    for e, g in zip(episodes, gains(whole, kept, "psnr")):
        gap = frames_since_seen(torch.from_numpy(places(e.poses.numpy(), n))[None])[0].numpy()
        gap = gap[e.context_length:e.context_length + len(g)]
        for name, span in LAST_SEEN:
            mask = gap == -1 if span is None else (gap >= span[0]) & (gap <= span[1])
            if mask.any():
                per_bin[name].append((g[mask].sum(), mask.sum()))
    lines = ["", "PSNR gain by when the frame's place was last in view (episodes with such frames; frames):", "",
             "| place last seen | episodes | frames | gain |", "|---|---:|---:|---:|"]
    for name, rows in per_bin.items():
        if rows:
            lines.append(f"| {name} | {len(rows)} | {sum(c for _, c in rows)} | {mean_se([s / c for s, c in rows])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("whole", help="TASK.json of `worldsim eval --teacher-forced` (without it, with --free-running) "
                   "given the whole context")
    p.add_argument("kept", help="TASK.json of the same run with --context-kept K")
    p.add_argument("--free-running", action="store_true", help="compare two runs without --teacher-forced")
    args = p.parse_args(argv)
    whole, kept = load(args.whole), load(args.kept)
    try:
        check_pair(whole, kept, args.free_running)
    except ValueError as e:
        print(f"memory_gain: {e}", file=sys.stderr)
        return 2
    print(table(whole, kept))
    if whole.get("data", "").startswith("maze"):
        print(by_last_seen(whole, kept))
    return 0


if __name__ == "__main__":
    sys.exit(main())
