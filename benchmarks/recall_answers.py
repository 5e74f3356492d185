"""Which ball does a model draw where the cue should reappear? Cue-recall answers against the balls
each episode showed.

    python benchmarks/recall_answers.py RESULT.json:ARCHITECTURE[=LABEL] ... [--out answers.json]

RESULT.json is a cue-recall result of `worldsim eval --task compare --compare-on recall` (rows as
`benchmarks/compare_table.py` takes them), or of `worldsim eval --task recall` given as
RESULT.json[=LABEL] (its one model; `--context-kept` runs too). The recall episodes are built again
from their seeds and recorded cues, and for each the balls of its context are listed (from the
balls' pixels each frame records): the last ball in view in the context, the ball in
view in the most context frames, and the ball whose colour the frame border shows at the end. Each model's answer (the colour read off
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
from worldsim.evaluation.tasks import answers_shuffled, context_border_colour, maze_size, tests_memory  # noqa: E402

MIN_PIXELS = 4  # a ball counts as in view from this many pixels of it


def balls_in_view(index: int, away: int, maze_size: int, image_size: int, cue: int | None = None,
                  protocol: int = 2) -> tuple[maze_episodes.MazeEpisode, list[set]]:
    """Cue-recall episode `index` as the evaluation builds it (with this cue and protocol: as a
    result recorded it), and the balls in view in each frame."""
    episode = maze_episodes.cue_recall_episode(index, away, maze_size=maze_size, image_size=image_size, cue=cue,
                                               protocol=protocol)
    return episode, [set(torch.nonzero(pixels >= MIN_PIXELS).flatten().tolist()) for pixels in episode.ball_pixels]


def context_balls(episodes: list, seen: list[list[set]]) -> list[dict]:
    """Per episode: the cue, the last ball in view in the context, the ball in view the most, and the
    ball whose colour the frame border shows at the context's end (the target then)."""
    rows = []
    for e, frames in zip(episodes, seen):
        context = frames[:e.context_length]
        last = next((sorted(s)[0] for s in reversed(context) if s), None)
        counts = Counter(b for s in context for b in s)
        rows.append({"seed": e.seed, "cue": int(e.cue_object), "last_seen": last,
                     "most_seen": counts.most_common(1)[0][0] if counts else None, "border": context_border_colour(e),
                     "frames_in_view": {str(b): n for b, n in sorted(counts.items())}})
    return rows


def parse_row(spec: str) -> tuple[Path, str | None, str]:
    """PATH:ARCHITECTURE[=LABEL] (a compare result) or PATH[=LABEL] (a one-model evaluation)."""
    head, _, label = spec.partition("=")
    return (Path(head), None, label or head) if ":" not in head else parse_spec(spec)


def recall_of(result: dict, arch: str | None) -> dict:
    """The cue-recall scores of one model of a result."""
    if arch is None:
        return result["recall"]
    return next(r for r in result["table"] if r["architecture"] == arch)["recall"]


def maze_of(result: dict) -> tuple[int, int]:
    """(maze size, image size) the result's episodes were built at."""
    config = result["provenance"]["config"]
    if "train" in config:  # a compare run: every model trained on the same maze
        return config["train"]["maze_size"], config["train"]["model"]["image_size"]
    return maze_size(config), config["model"]["image_size"]


def answers(recall: dict, label: str, balls: list[dict]) -> dict:
    """A model's answers counted against the cue, the last ball seen and the most-seen ball."""
    per_episode = recall["per_episode"]
    if [(p["seed"], p["cue_object"]) for p in per_episode] != [(b["seed"], b["cue"]) for b in balls]:
        raise ValueError(f"{label}: the result's episodes are not the rebuilt ones")
    predicted = [p["predicted"] for p in per_episode]
    # the border as rebuilt, so that results saved before the evaluation recorded it are scored the same way
    rows = [{**p, "border_colour": b["border"]} for p, b in zip(per_episode, balls)]
    memory = [i for i, r in enumerate(rows) if tests_memory(r)]
    other = [i for i, b in enumerate(balls) if b["last_seen"] not in (None, b["cue"])]
    return {"episodes": len(balls), "ball_drawn": sum(p is not None for p in predicted),
            "cue": sum(p == b["cue"] for p, b in zip(predicted, balls)),
            "last_seen": sum(p == b["last_seen"] for p, b in zip(predicted, balls)),
            "most_seen": sum(p == b["most_seen"] for p, b in zip(predicted, balls)),
            "last_seen_not_cue": {"episodes": len(other), "ball_drawn": sum(predicted[i] is not None for i in other),
                                  "cue": sum(predicted[i] == balls[i]["cue"] for i in other),
                                  "last_seen": sum(predicted[i] == balls[i]["last_seen"] for i in other)},
            "border": sum(p == b["border"] for p, b in zip(predicted, balls)),
            "border_not_cue": {"episodes": len(memory), "cue": sum(predicted[i] == balls[i]["cue"] for i in memory)},
            "answers": Counter(str(p) for p in predicted), **answers_shuffled(rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rows", nargs="+", metavar="PATH:ARCHITECTURE[=LABEL]")
    p.add_argument("--out", help="also write the counts here (JSON)")
    args = p.parse_args()
    specs = [parse_row(s) for s in args.rows]
    results = {path: json.loads(path.read_text()) for path, _, _ in specs}
    first = results[specs[0][0]]
    recalls = {label: recall_of(results[path], arch) for path, arch, label in specs}
    protocols = {r.get("protocol", 1) for r in recalls.values()}  # results saved before it was recorded: 1
    if any(r["task"] != "recall" or r["context"] != first["context"] or maze_of(r) != maze_of(first)
           for r in results.values()) or len(protocols) > 1:
        raise SystemExit("the rows must be cue-recall results of the same away length, maze and protocol")
    (protocol,) = protocols
    cues = [e["cue_object"] for e in recalls[specs[0][2]]["per_episode"]]  # the episodes as they were scored
    built = [balls_in_view(i, first["context"], *maze_of(first), cue=cue, protocol=protocol)
             for i, cue in enumerate(cues)]
    balls = context_balls([e for e, _ in built], [s for _, s in built])
    counts = {label: answers(recall, label, balls) for label, recall in recalls.items()}  # each checks its episodes
    other = counts[specs[0][2]]["last_seen_not_cue"]["episodes"]
    borders = sum(b["border"] == b["cue"] for b in balls)
    print(f"{len(balls)} episodes; the last ball in view in the context is the cue in "
          f"{sum(b['last_seen'] == b['cue'] for b in balls)}, another ball in {other}, none in "
          f"{sum(b['last_seen'] is None for b in balls)}; the frame border shows the cue's colour at the context's "
          f"end in {borders}\n")
    print(f"| model | ball drawn | = cue | = border's colour | = last ball seen | = most-seen ball | "
          f"border not the cue "
          f"({len(balls) - borders}): = cue | there, answers shuffled: = cue, p | last ball seen not the cue "
          f"({other}): ball drawn / = cue / = last seen |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, c in counts.items():
        o, m = c["last_seen_not_cue"], c["border_not_cue"]
        print(f"| {label} | {c['ball_drawn']} | {c['cue']} | {c['border']} | {c['last_seen']} | {c['most_seen']} | "
              f"{m['cue']} | {c['shuffled_chance'] * m['episodes']:.1f}, {c['p_value']:.3f} | "
              f"{o['ball_drawn']} / {o['cue']} / {o['last_seen']} |")
    if args.out:
        print(f"wrote {write_json(args.out, {'balls': balls, 'counts': counts, 'rows': args.rows}, provenance(None, 'cpu'))}")


if __name__ == "__main__":
    main()
