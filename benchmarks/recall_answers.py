"""Which ball does a model draw where the cue should reappear? Cue-recall answers against the balls
each episode showed.

    python benchmarks/recall_answers.py RESULT.json:ARCHITECTURE[=LABEL] ... [--out answers.json]

RESULT.json is a cue-recall result of `worldsim eval --task compare --compare-on recall` (rows as
`benchmarks/compare_table.py` takes them). The recall episodes are built again from their seeds,
and for each the balls of its context are listed (from the balls' pixels each frame records): the last ball in view before the way back
begins, and the ball in view in the most context frames. Each model's answer (the colour read off
its frames where the cue must reappear, or none) is then counted against the cue, against the last
ball seen and against the most-seen ball. A model that remembers the cue answers with the cue; one
that repeats what it saw last answers with the last ball seen, which is the cue only in the
episodes whose context ends near it -- the table also counts the episodes where it is another ball.
"""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_table import parse_spec  # noqa: E402

import worldsim.maze.episodes as maze_episodes  # noqa: E402
from worldsim.evaluation.provenance import provenance, write_json  # noqa: E402

MIN_PIXELS = 4  # a ball counts as in view from this many pixels of it


def balls_in_view(index: int, away: int, maze_size: int, image_size: int) -> tuple[maze_episodes.MazeEpisode, list[set]]:
    """Cue-recall episode `index` as the evaluation builds it, and the balls in view in each frame."""
    episode = maze_episodes.cue_recall_episode(index, away, maze_size=maze_size, image_size=image_size)
    return episode, [set(torch.nonzero(pixels >= MIN_PIXELS).flatten().tolist()) for pixels in episode.ball_pixels]


def context_balls(episodes: list, seen: list[list[set]]) -> list[dict]:
    """Per episode: the cue, the last ball in view in the context, the ball in view the most."""
    rows = []
    for e, frames in zip(episodes, seen):
        context = frames[:e.context_length]
        last = next((sorted(s)[0] for s in reversed(context) if s), None)
        counts = Counter(b for s in context for b in s)
        rows.append({"seed": e.seed, "cue": int(e.cue_object), "last_seen": last,
                     "most_seen": counts.most_common(1)[0][0] if counts else None,
                     "frames_in_view": {str(b): n for b, n in sorted(counts.items())}})
    return rows


def answers(result: dict, arch: str, balls: list[dict]) -> dict:
    """A model's answers counted against the cue, the last ball seen and the most-seen ball."""
    row = next(r for r in result["table"] if r["architecture"] == arch)
    per_episode = row["recall"]["per_episode"]
    if [p["seed"] for p in per_episode] != [b["seed"] for b in balls]:
        raise ValueError(f"{arch}: the result's episodes are not the rebuilt ones")
    predicted = [p["predicted"] for p in per_episode]
    other = [i for i, b in enumerate(balls) if b["last_seen"] not in (None, b["cue"])]
    return {"episodes": len(balls), "ball_drawn": sum(p is not None for p in predicted),
            "cue": sum(p == b["cue"] for p, b in zip(predicted, balls)),
            "last_seen": sum(p == b["last_seen"] for p, b in zip(predicted, balls)),
            "most_seen": sum(p == b["most_seen"] for p, b in zip(predicted, balls)),
            "last_seen_not_cue": {"episodes": len(other), "ball_drawn": sum(predicted[i] is not None for i in other),
                                  "cue": sum(predicted[i] == balls[i]["cue"] for i in other),
                                  "last_seen": sum(predicted[i] == balls[i]["last_seen"] for i in other)},
            "answers": Counter(str(p) for p in predicted)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rows", nargs="+", metavar="PATH:ARCHITECTURE[=LABEL]")
    p.add_argument("--out", help="also write the counts here (JSON)")
    args = p.parse_args()
    specs = [parse_spec(s) for s in args.rows]
    results = {path: json.loads(path.read_text()) for path, _, _ in specs}
    first = results[specs[0][0]]
    if first["task"] != "recall" or any(r["episodes"] != first["episodes"] or r["context"] != first["context"]
                                        for r in results.values()):
        raise SystemExit("the rows must be cue-recall results of the same episodes and away length")
    train = first["provenance"]["config"]["train"]
    built = [balls_in_view(i, first["context"], train["maze_size"], train["model"]["image_size"])
             for i in range(len(first["episodes"]))]
    balls = context_balls([e for e, _ in built], [s for _, s in built])
    counts = {label: answers(results[path], arch, balls) for path, arch, label in specs}
    other = counts[specs[0][2]]["last_seen_not_cue"]["episodes"]
    print(f"{len(balls)} episodes; the last ball in view before the way back is the cue in "
          f"{sum(b['last_seen'] == b['cue'] for b in balls)}, another ball in {other}, none in "
          f"{sum(b['last_seen'] is None for b in balls)}\n")
    print(f"| model | ball drawn | = cue | = last ball seen | = most-seen ball | where the last ball seen is not the cue ({other}): ball drawn / = cue / = last seen |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, c in counts.items():
        o = c["last_seen_not_cue"]
        print(f"| {label} | {c['ball_drawn']} | {c['cue']} | {c['last_seen']} | {c['most_seen']} | {o['ball_drawn']} / {o['cue']} / {o['last_seen']} |")
    if args.out:
        print(f"wrote {write_json(args.out, {'balls': balls, 'counts': counts, 'rows': args.rows}, provenance(None, 'cpu'))}")


if __name__ == "__main__":
    main()
