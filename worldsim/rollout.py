"""`worldsim rollout`: generate a rollout headless and write it to an mp4.

    worldsim rollout --steps 1000 --policy explore --out run.mp4 --twin --seed 3

Policies: `random` (uniform over the action space), `explore` (the maze's exploration policy
when the checkpoint simulates the built-in maze, else "persistent random": keep the last action
for a while, the way a person plays), or a FILE of actions: a JSON list (or {"actions": [...]}),
or text with one action per line (an integer for a discrete space, numbers separated by spaces or
commas for a box; blank lines and `#` comments skipped). A file is checked against the action
space before anything runs.

The video holds the `--steps` generated frames (the ground-truth starting frame is context, not
generated). With `--twin`, the true source env runs on the same actions, shown right of the
model (left). When an episode ends (predicted termination, or the twin's episode ends) both
restart from a new seed. Small frames are upscaled (nearest) to at least 256 pixels unless
`--scale` says otherwise.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from tqdm import tqdm

from worldsim.maze.policies import ExplorePolicy, PersistentRandomPolicy
from worldsim.simulator import add_sampling_arguments, sampling_options
from worldsim.sources import MAZE_ID, SourceEnv, check_action
from worldsim.video import mp4_writer

MIN_VIDEO_PIXELS = 256  # default upscaling target for small frames
GAP = 2  # pixels between the model and the twin (before upscaling)


def add_arguments(parser) -> None:
    parser.add_argument("--steps", type=int, default=None,
                        help="frames to generate (default: 300, or every action of a policy FILE)")
    parser.add_argument("--policy", default="explore", help="random | explore | FILE of actions (default: explore)")
    parser.add_argument("--out", default="rollout.mp4", help="mp4 to write (default: rollout.mp4)")
    parser.add_argument("--twin", action="store_true", help="write the true source env beside the model")
    parser.add_argument("--seed", type=int, default=0, help="episode and policy seed (default: 0)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint path or shipped name (default: maze)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    add_sampling_arguments(parser)
    parser.add_argument("--fps", type=int, default=None, help="video frame rate (default: the checkpoint's)")
    parser.add_argument("--scale", type=int, default=None, help="integer upscaling (default: to >= 256 pixels)")


def run(args) -> int:
    stats = rollout(args.checkpoint, args.steps, args.policy, args.out, twin=args.twin, seed=args.seed,
                    device=args.device, fps=args.fps, scale=args.scale, **sampling_options(args))
    print(f"wrote {stats['frames']} frames to {args.out}: {stats['frames_per_second']:.1f} frames/s generated "
          f"({1000 * stats['step_seconds']:.1f} ms/frame in the model, {stats['episodes']} episode(s))")
    return 0


def rollout(checkpoint, steps: int | None, policy: str, out, *, twin: bool = False, seed: int = 0,
            device: str = "auto", sampling_steps: int | None = None, context_noise: float | None = None,
            commit_in_sampler: bool | None = None, cuda_graph: bool | None = None, compile: bool = False,
            schedule_power: float | None = None, fps: int | None = None, scale: int | None = None,
            progress: bool = True) -> dict:
    """Generate `steps` frames with `policy` and write them to the mp4 `out`. Returns statistics."""
    # unwrapped: no TimeLimit, a rollout runs for --steps frames (episodes end only by termination)
    env = gym.make("LSSVWM-v0", checkpoint=checkpoint, device=device, sampling_steps=sampling_steps,
                   context_noise=context_noise, commit_in_sampler=commit_in_sampler, cuda_graph=cuda_graph,
                   compile=compile, schedule_power=schedule_power).unwrapped
    try:
        return _rollout(env, steps, policy, Path(out), twin, seed, fps, scale, progress)
    finally:
        env.close()


def _rollout(env, steps, policy_name, out, twin, seed, fps, scale, progress) -> dict:
    file_actions = None if policy_name in ("random", "explore") else read_actions(policy_name, env.action_space)
    if steps is None:
        steps = 300 if file_actions is None else len(file_actions)
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    if file_actions is not None and len(file_actions) < steps:
        raise ValueError(f"{policy_name} holds {len(file_actions)} actions, fewer than --steps {steps}")
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"--out must be an .mp4 file, got {out}")
    maze_explore = policy_name == "explore" and env.source.env_id == MAZE_ID
    # the twin, and the maze's explore policy (which steers by the true maze), need the real env
    truth = SourceEnv(env.source.source, env.observation_space.shape[0]) if twin or maze_explore else None
    size = env.observation_space.shape[0]
    scale = scale or max(1, MIN_VIDEO_PIXELS // size)
    fps = fps or env.metadata["render_fps"]

    obs, info = env.reset(seed=seed)
    truth_obs = None if truth is None else truth.reset(info["source_seed"])
    if file_actions is not None:
        policy = FileActions(file_actions)
    elif maze_explore:
        policy = ExplorePolicy(truth.env.world)
    else:  # random: a new action every step; explore elsewhere: actions held for a few steps
        policy = PersistentRandomPolicy(env.action_space, 1, seed, mean_hold=1.0 if policy_name == "random" else 4.0)

    episodes, step_seconds, start = 1, 0.0, time.perf_counter()
    with mp4_writer(out, fps) as writer:
        for t in tqdm(range(steps), desc="rollout", unit="frame", disable=not progress):
            action = single_action(policy.act(), env.action_space)
            obs, _, terminated, truncated, info = env.step(action)
            step_seconds += env.last_step_seconds
            ended = terminated or truncated
            if truth is not None:
                truth_obs, _, t_term, t_trunc = truth.step(action)
                ended = ended or t_term or t_trunc
            writer.append_data(video_frame(obs, truth_obs if twin else None, scale))
            if ended and t + 1 < steps:
                obs, info = env.reset()
                if truth is not None:
                    truth_obs = truth.reset(info["source_seed"])
                policy.reset()
                episodes += 1
    seconds = time.perf_counter() - start
    if truth is not None:
        truth.close()
    return {"frames": steps, "seconds": seconds, "frames_per_second": steps / seconds,
            "step_seconds": step_seconds / steps, "episodes": episodes}


def read_actions(path, space: spaces.Space) -> list:
    """Actions from a JSON or text file, each checked against `space`; errors name file and line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--policy {path}: not 'random', 'explore', nor an existing file of actions")
    text = path.read_text()
    if text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        if isinstance(data, dict):
            data = data.get("actions")
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of actions or {{\"actions\": [...]}}")
        entries = [(f"{path}: action {i}", a) for i, a in enumerate(data)]
    else:
        entries = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                entries.append((f"{path}:{n}", _parse_text_action(line, space, f"{path}:{n}")))
    if not entries:
        raise ValueError(f"{path}: no actions in the file")
    actions = []
    for where, a in entries:
        try:
            actions.append(check_action(space, a))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
    return actions


def _parse_text_action(line: str, space: spaces.Space, where: str):
    fields = line.replace(",", " ").split()
    try:
        if isinstance(space, spaces.Discrete):
            if len(fields) != 1:
                raise ValueError
            return int(fields[0])
        return [float(f) for f in fields]
    except ValueError:
        kind = "one integer" if isinstance(space, spaces.Discrete) else f"{space.shape[0]} numbers"
        raise ValueError(f"{where}: cannot read {line!r} as an action ({kind} for {space})") from None


class FileActions:
    """A policy file's actions in order, with the batched policies' interface (act, reset)."""

    def __init__(self, actions: list):
        self.actions = iter(actions)

    def act(self) -> np.ndarray:
        return np.asarray(next(self.actions))[None]

    def reset(self) -> None:
        """A file's actions run on across episodes."""


def single_action(batch, space: spaces.Space):
    """The one action of a batch of one ([1] or [1, A], numpy or torch) as the env takes it."""
    a = np.asarray(batch)[0]
    return int(a) if isinstance(space, spaces.Discrete) else a.astype(np.float32)


def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling, so small frames stay crisp."""
    return frame if scale == 1 else frame.repeat(scale, axis=0).repeat(scale, axis=1)


def video_frame(model: np.ndarray, truth: np.ndarray | None, scale: int) -> np.ndarray:
    """The model's frame (and the twin's on its right), upscaled and padded to even dimensions
    (H.264 with yuv420p needs them)."""
    frame = model
    if truth is not None:
        gap = np.full((model.shape[0], GAP, 3), 255, np.uint8)
        frame = np.concatenate([model, gap, truth], axis=1)
    frame = upscale(frame, scale)
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))
