"""Evaluation tasks: episodes with ground truth, the model's continuation of them, and scores.

An episode is anything with `frames` uint8 [T, H, W, 3], `actions` [T] (Gym-aligned: actions[t]
follows frames[t]), `context_length` and `seed`: the maze's `MazeEpisode` (retrieval, reasoning,
cue recall on held-out seeds) or a `Clip` cut from a user's shards. The model is given the first
`context_length` frames and their actions, then generates the rest from the actions alone
(free-running, as the paper's retrieval and reasoning) or one frame at a time after the true
frames before it (teacher-forced next-frame prediction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from worldsim.evaluation.lpips import LPIPS, MIN_SIZE as LPIPS_MIN_SIZE
from worldsim.evaluation.metrics import LPIPS_UNAVAILABLE, frame_metrics, summarize
from worldsim.maze.core import OBJECT_COLOURS, default_n_objects
from worldsim.simulator import Simulator
from worldsim.sources import MAZE_ID

TASKS = ("retrieval", "reasoning", "recall", "next-frame")
COMPARE_TASKS = TASKS[:3]  # the paper's memory tasks (and cue recall): free-running after a context
# (context, generate) per task: the paper's settings where it has them. Retrieval generates the
# whole way back by default; recall's context is the time spent away from the cue.
DEFAULT_LENGTHS = {"retrieval": (400, None), "reasoning": (576, 224), "recall": (500, None), "next-frame": (400, 100)}


def lengths(task: str, context: int | None, generate: int | None) -> tuple[int, int | None]:
    """(context, generate) of a task, the defaults where None."""
    return context or DEFAULT_LENGTHS[task][0], generate or DEFAULT_LENGTHS[task][1]


@dataclass
class Clip:
    """A window of a recorded trajectory used as an episode (next-frame on a user's data)."""
    frames: torch.Tensor
    actions: torch.Tensor
    context_length: int
    seed: int


@dataclass
class Rollouts:
    generated: list[np.ndarray]  # per episode uint8 [G_e, H, W, 3]: frames context_length.. onward
    truth: list[np.ndarray]  # the true frames they are compared with
    seconds_per_step: float  # mean Simulator.step time: one frame for each episode of a batch


def maze_episodes(task: str, count: int, context: int, generate: int | None, maze_size: int, image_size: int):
    """`count` held-out maze episodes (seeds eval_seed(0..count-1)) for a task. For recall,
    `context` is how long the agent stays away from the cue; next-frame uses reasoning episodes."""
    from worldsim.maze import episodes as ep  # the maze renderer loads only for maze tasks

    size = dict(maze_size=maze_size, image_size=image_size)
    if task == "retrieval":
        return [ep.retrieval_episode(i, context, **size) for i in range(count)]
    if task in ("reasoning", "next-frame"):
        return [ep.reasoning_episode(i, context, generate, **size) for i in range(count)]
    if task == "recall":
        return [ep.cue_recall_episode(i, context, **size) for i in range(count)]
    raise ValueError(f"unknown task {task!r}; choose from {TASKS}")


def maze_size(config: dict) -> int:
    """The maze a checkpoint was trained on (its source env), for episodes of the same kind."""
    source = config.get("source") or {}
    if source.get("env_id") not in (None, MAZE_ID):
        raise ValueError(f"this checkpoint simulates {source['env_id']!r}, not the built-in maze: maze tasks do "
                         "not apply; use --task next-frame --data DIR with shards of that env")
    return int(source.get("env_kwargs", {}).get("maze_size", 9))


def shard_clips(directory: str, count: int, context: int, generate: int) -> list[Clip]:
    """`count` windows of context + generate steps spread evenly over a shard directory."""
    from worldsim.data.shards import ShardWindowDataset

    ds = ShardWindowDataset(directory, context + generate)
    picks = np.unique(np.linspace(0, len(ds) - 1, count).round().astype(int))
    return [Clip(ds[int(i)]["frames"], ds[int(i)]["actions"], context, int(i)) for i in picks]


@torch.no_grad()
def rollout(sim: Simulator, episodes, generate: int | None = None, teacher_forced: bool = False,
            batch_size: int = 16, context_kept: int | None = None) -> Rollouts:
    """The model's frames after each episode's context (at most `generate` of them).

    `context_kept`: the model observes only the last K frames of each context (the episode, and
    what is scored, stay the same). With K at the attention window, a teacher-forced run differs
    from one given the whole context only by what the SSM state carried from the frames before:
    the gain of the whole context is memory, measured without the drift of free-running frames.

    Up to `batch_size` episodes run as one batch (the simulator's leading dimension), those of
    similar context and length together; episodes of different lengths share a batch too (cue
    recall's all differ), each generating as many frames as it needs while the batch runs to its
    longest. Each element draws its noise from a generator seeded with its episode's seed, so an
    episode's frames do not depend on its batch.
    """
    spans = [(e.context_length, len(e.frames) if generate is None else min(len(e.frames), e.context_length + generate))
             for e in episodes]
    if any(end <= c for c, end in spans):
        raise ValueError("every episode needs frames after its context")
    generated: list[np.ndarray | None] = [None] * len(episodes)
    order = sorted(range(len(episodes)), key=lambda i: spans[i])
    step_seconds = []
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        out = _generate(sim, [episodes[i].frames for i in idx], [torch.as_tensor(episodes[i].actions) for i in idx],
                        [spans[i] for i in idx], [int(episodes[i].seed) for i in idx], teacher_forced, step_seconds,
                        context_kept)
        for j, i in enumerate(idx):
            generated[i] = out[j]
    truth = [e.frames[c:end].numpy() for e, (c, end) in zip(episodes, spans)]
    return Rollouts(generated, truth, float(np.mean(step_seconds)))


def _generate(sim: Simulator, frames: list[torch.Tensor], actions: list[torch.Tensor], spans: list[tuple[int, int]],
              seeds: list[int], teacher_forced: bool, step_seconds: list[float] | None = None,
              context_kept: int | None = None) -> list[np.ndarray]:
    """Frames context..end-1 of each episode of a batch: uint8 [end - context, H, W, 3] each, for
    per-episode frames uint8 [T_i, H, W, 3], actions [T_i] and spans (context, end), the model
    given the last `context_kept` context frames (all if None). Appends each step's time to
    `step_seconds`."""
    first = [0 if context_kept is None else max(0, c - context_kept) for c, _ in spans]
    sim.reset([f[s:c] for f, s, (c, _) in zip(frames, first, spans)],
              [a[s:c - 1] for a, s, (c, _) in zip(actions, first, spans)], seeds)
    steps = max(end - c for c, end in spans)
    # the frame each element generates at each step; one that is done repeats its last (its output is cut)
    t = [torch.arange(c, c + steps).clamp(max=end - 1) for c, end in spans]
    produced = torch.stack([a[tj - 1] for a, tj in zip(actions, t)])  # [B, steps]: the action into each
    true = torch.stack([f[tj] for f, tj in zip(frames, t)]) if teacher_forced else None  # [B, steps, H, W, 3]
    out = []
    for s in range(steps):
        memory = sim.cache.snapshot() if teacher_forced else None
        out.append(sim.step(produced[:, s])[0].numpy())
        if step_seconds is not None:
            step_seconds.append(sim.last_step_seconds)
        if teacher_forced:
            sim.cache = memory  # forget the generated frame, remember the true one
            sim.observe(true[:, s:s + 1], produced[:, s:s + 1])
    out = np.stack(out, 1)  # [B, steps, H, W, 3]
    return [out[j, :end - c] for j, (c, end) in enumerate(spans)]


def evaluate(sim: Simulator, episodes, generate: int | None = None, teacher_forced: bool = False,
             batch_size: int = 16, lpips_net: LPIPS | None = None,
             context_kept: int | None = None) -> tuple[dict, Rollouts]:
    """Roll the model out on the episodes (see `rollout`) and score every generated frame (see
    metrics.summarize); LPIPS too, given its network (`lpips.load_lpips`)."""
    r = rollout(sim, episodes, generate, teacher_forced, batch_size, context_kept)
    result = {
        "episodes": [{"seed": int(e.seed), "context_length": int(e.context_length), "generated": len(g)}
                     for e, g in zip(episodes, r.generated)],
        "seconds_per_step": r.seconds_per_step,
        "metrics": score(r, lpips_net),
    }
    return result, r


def evaluate_task(task: str, sim: Simulator, episodes, generate: int | None = None, **options) -> tuple[dict, Rollouts]:
    """`evaluate` (`options` its keywords) for one of TASKS; for cue recall the result also holds the
    cue colour's scores (`recall_scores`) under "recall"."""
    result, rollouts = evaluate(sim, episodes, generate, **options)
    if task == "recall":
        result["recall"] = recall_scores(episodes, rollouts)
    return result, rollouts


def score(r: Rollouts, lpips_net: LPIPS | None = None) -> dict:
    """Every generated frame of `r` against its true frame, summarised (metrics.summarize); LPIPS
    too, given its network and frames large enough for it."""
    height, width = r.truth[0].shape[1:3]
    note = LPIPS_UNAVAILABLE
    if lpips_net is not None and min(height, width) < LPIPS_MIN_SIZE:
        lpips_net = None
        note = (f"LPIPS not computed: AlexNet needs frames of at least {LPIPS_MIN_SIZE} pixels a side, these are "
                f"{height}x{width}")
    per_frame = [frame_metrics(g, t, lpips_net) for g, t in zip(r.generated, r.truth)]
    return summarize({k: [m[k] for m in per_frame] for k in per_frame[0]}, note)


# --- cue recall: which colour did the model paint where the cue ball should reappear? -----------

# Ball colours are saturated (max-min >= 0.83 max); walls, floors and ceiling are muted (<= 0.55),
# so a pixel counts as showing a ball only above this saturation.
BALL_SATURATION = 0.7


def read_cue_colour(frames: np.ndarray, masks: np.ndarray, candidates: np.ndarray) -> int | None:
    """The candidate colour most pixels inside `masks` show, or None if no pixel there looks like a ball.

    frames uint8 [G, H, W, 3]; masks bool [G, H, W]; candidates uint8 [K, 3]. Each saturated
    pixel votes for the candidate of the nearest hue (cosine of RGB vectors, so the ball's
    shading does not matter)."""
    px = frames[masks].astype(np.float64)  # [P, 3]
    if len(px) == 0:
        return None
    bright = px.max(1)
    px = px[(bright > 0) & ((bright - px.min(1)) >= BALL_SATURATION * bright)]
    if len(px) == 0:
        return None
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    votes = np.bincount((unit(px) @ unit(candidates.astype(np.float64)).T).argmax(1), minlength=len(candidates))
    return int(votes.argmax())


def final_run(visible: np.ndarray) -> np.ndarray:
    """bool [G] -> bool [G]: only the last contiguous run of True (the agent back at the cue)."""
    out = np.zeros_like(visible)
    seen = np.flatnonzero(visible)
    if len(seen):
        gaps = np.flatnonzero(~visible[:seen[-1]])
        out[(gaps[-1] + 1 if len(gaps) else 0):seen[-1] + 1] = True
    return out


def border_mask(height: int, width: int) -> np.ndarray:
    """bool [H, W]: the frame border, where the maze shows the target ball's colour (core.render)."""
    w = max(1, width // 32)
    mask = np.zeros((height, width), dtype=bool)
    mask[:w], mask[-w:], mask[:, :w], mask[:, -w:] = True, True, True, True
    return mask


def recall_scores(episodes, rollouts: Rollouts) -> dict:
    """Accuracy of the cue colour read off the generated frames, against chance.

    Scored on the final run of frames in which the true maze shows the cue (the agent back and
    looking at it), within the pixels the true frames show it in (minus the target-colour border).
    The same reader applied to the true frames checks the reader itself (should be 1.0).

    The border shows the current target ball's colour in every frame. Where it shows the cue's at the
    end of the context, drawing the ball in the border's colour scores without memory: in half the
    episodes before 2026-12-06, in the few that `cue_recall_episode` cannot avoid since. `accuracy` is
    therefore taken over the other episodes, where only memory of the cue gives its colour;
    `accuracy_all` over every scored episode, as before."""
    rows = []
    for e, gen, truth in zip(episodes, rollouts.generated, rollouts.truth):
        mask = e.cue_mask[e.context_length:e.context_length + len(gen)].numpy() & ~border_mask(*e.cue_mask.shape[1:])
        frames_scored = final_run(mask.any((1, 2)))
        candidates = np.asarray(OBJECT_COLOURS[:default_n_objects(e.maze_size)], dtype=np.uint8)
        ctx_seen = np.flatnonzero(e.cue_mask[:e.context_length].any((1, 2)).numpy())
        sel = mask & frames_scored[:, None, None]
        rows.append({
            "seed": int(e.seed), "cue_object": int(e.cue_object), "cue_colour": list(e.cue_colour),
            "predicted": read_cue_colour(gen, sel, candidates),
            "read_from_truth": read_cue_colour(truth, sel, candidates),
            "frames_scored": int(frames_scored.sum()),
            # the target colour the border shows in the context's last frame
            "border_colour": context_border_colour(e),
            # frames between the cue's last sighting in the context and the end of the context
            "cue_gap": int(e.context_length - 1 - ctx_seen[-1]) if len(ctx_seen) else None,
            "chance": 1.0 / len(candidates),
        })
    scored = [r for r in rows if r["frames_scored"]]
    memory = [r for r in scored if tests_memory(r)]

    def accuracy(key, of):
        return float(np.mean([r[key] == r["cue_object"] for r in of])) if of else None

    return {"accuracy": accuracy("predicted", memory), "chance": float(np.mean([r["chance"] for r in rows])),
            **answers_shuffled(rows), "episodes_scored": len(memory),
            "border_shows_cue": len(scored) - len(memory), "accuracy_all": accuracy("predicted", scored),
            "answers_in_border_colour": sum(r["predicted"] == r["border_colour"] for r in scored),
            "reader_accuracy_on_truth": accuracy("read_from_truth", scored),
            # how the episodes were built (maze.episodes.cue_recall_episode); results without it: 1
            "protocol": episodes[0].protocol if episodes else None, "per_episode": rows}


def context_border_colour(e) -> int | None:
    """The ball whose colour the border shows in a maze episode's last context frame (the target then)."""
    last = e.frames[e.context_length - 1:e.context_length].numpy()  # [1, H, W, 3]
    candidates = np.asarray(OBJECT_COLOURS[:default_n_objects(e.maze_size)], dtype=np.uint8)
    return read_cue_colour(last, border_mask(*last.shape[1:3])[None], candidates)


def tests_memory(row: dict) -> bool:
    """Whether a recall episode's score needs memory: it has scored frames and its border does not
    show the cue's colour (rows saved before the border was recorded count as before)."""
    return row["frames_scored"] > 0 and row.get("border_colour") != row["cue_object"]


def answers_shuffled(per_episode: list[dict], shuffles: int = 20000) -> dict:
    """Cue recall's null model: the model's own answers, shuffled across the episodes that test memory.

    1/K is chance only for a model that answers each colour equally often on equally many cues of
    each colour; a model that mostly draws one colour scores more where that colour is the cue more
    often, without remembering anything. Shuffling keeps its answers (none included) and the cues and
    breaks only their pairing: `shuffled_chance` is the accuracy expected so, and `p_value` the share
    of `shuffles` seeded shuffles scoring at least the observed accuracy (one-sided)."""
    rows = [r for r in per_episode if tests_memory(r)]
    if not rows:
        return {"shuffled_chance": None, "p_value": None}
    answer = np.array([-1 if r["predicted"] is None else r["predicted"] for r in rows])
    cue = np.array([r["cue_object"] for r in rows])
    order = np.random.default_rng(0).random((shuffles, len(rows))).argsort(1)
    right = (answer[order] == cue).sum(1)  # [shuffles]
    return {"shuffled_chance": float(right.mean() / len(rows)),
            "p_value": float((right >= (answer == cue).sum()).mean())}
