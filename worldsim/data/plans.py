"""Maze plans: trajectories of the built-in maze stored as their seeds and actions, rendered where used.

A maze trajectory is fixed by its maze seed and its actions, so a file of plans is tiny (a
thousand 704-frame trajectories take 0.7 MB, against 8.7 GB of frames) and the training device
renders them as it renders the live maze. Plans carry trajectories that a live policy would make
too seldom: `cue_recall_trajectory` ones see a ball, stay out of its sight and come back to it.

Format, version 1: one safetensors file holding

    seeds      int64    [N]     training maze seeds, in [0, TRAIN_SEED_LIMIT)
    actions    uint8    [N, L]  actions[i, t] follows frame t of plan i (Gym's alignment)
    end_poses  float32  [N, 3]  x, y (cells), heading (radians) at the last frame, as recorded: a check
                                that a replay on another device walks the same way

with header metadata format "worldsim-maze-plans", version "1", maze_size, image_size and a free
`builder` string saying how they were made. Every problem a reader finds raises `PlanError`.
"""

from dataclasses import dataclass
import os
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file
import torch

from worldsim.data.batch import TrajectoryBatch
from worldsim.maze.core import N_ACTIONS, TRAIN_SEED_LIMIT, MazeWorld

FORMAT = "worldsim-maze-plans"
VERSION = "1"


class PlanError(ValueError):
    """A plans file is missing, corrupt or inconsistent."""


@dataclass
class MazePlans:
    seeds: torch.Tensor  # int64 [N]
    actions: torch.Tensor  # uint8 [N, L]
    end_poses: torch.Tensor  # float32 [N, 3]
    maze_size: int
    image_size: int
    builder: str = ""

    def __len__(self) -> int:
        return self.seeds.shape[0]

    @property
    def length(self) -> int:
        return self.actions.shape[1]


def save_plans(path, plans: MazePlans) -> None:
    """Write atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    meta = {"format": FORMAT, "version": VERSION, "maze_size": str(plans.maze_size),
            "image_size": str(plans.image_size), "builder": plans.builder}
    save_file({"seeds": plans.seeds.contiguous(), "actions": plans.actions.contiguous(),
               "end_poses": plans.end_poses.contiguous()}, str(tmp), metadata=meta)
    os.replace(tmp, path)


def load_plans(path) -> MazePlans:
    path = Path(path)

    def fail(what):
        raise PlanError(f"{path}: {what}")

    if not path.is_file():
        fail("no such plans file")
    try:
        with safe_open(str(path), framework="pt") as f:  # one read: the header and the tensors
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError) as e:
        fail(f"unreadable or truncated safetensors file ({e})")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        fail(f"not a version-{VERSION} maze plans file (format={meta.get('format')!r}, version={meta.get('version')!r})")
    if set(tensors) != {"seeds", "actions", "end_poses"}:
        fail(f"expected tensors seeds, actions, end_poses; found {sorted(tensors)}")
    seeds, actions, poses = tensors["seeds"], tensors["actions"], tensors["end_poses"]
    N = seeds.shape[0]
    if (seeds.dtype, actions.dtype, poses.dtype) != (torch.int64, torch.uint8, torch.float32):
        fail(f"dtypes must be int64, uint8, float32; got {seeds.dtype}, {actions.dtype}, {poses.dtype}")
    if seeds.dim() != 1 or N == 0 or actions.dim() != 2 or actions.shape[0] != N or actions.shape[1] < 2 \
            or tuple(poses.shape) != (N, 3):
        fail(f"shapes must be seeds [N], actions [N, L >= 2], end_poses [N, 3] with N >= 1; got "
             f"{list(seeds.shape)}, {list(actions.shape)}, {list(poses.shape)}")
    if not ((seeds >= 0) & (seeds < TRAIN_SEED_LIMIT)).all():
        fail(f"maze seeds must be training seeds, in [0, {TRAIN_SEED_LIMIT}): evaluation mazes are never trained on")
    if not (actions < N_ACTIONS).all():
        fail(f"actions must lie in [0, {N_ACTIONS})")
    try:
        maze_size, image_size = int(meta["maze_size"]), int(meta["image_size"])
    except (KeyError, ValueError):
        fail("metadata needs integer maze_size and image_size")
    return MazePlans(seeds, actions, poses, maze_size, image_size, meta.get("builder", ""))


@torch.no_grad()
def replay(plans: MazePlans, indices: list[int], device="cpu") -> tuple[TrajectoryBatch, torch.Tensor]:
    """Render plans[indices] whole on `device`: a TrajectoryBatch of T = plans.length frames, and the
    pose the replay reached at its last frame (float32 [B, 3], to compare with plans.end_poses)."""
    B, T, H = len(indices), plans.length, plans.image_size
    world = MazeWorld(B, plans.maze_size, H, device)
    observation = world.reset(seeds=plans.seeds[indices].tolist())
    actions = plans.actions[indices].to(device, torch.int64)
    frames = torch.empty(B, T, H, H, 3, dtype=torch.uint8, device=device)
    rewards = torch.empty(B, T, dtype=torch.float32, device=device)
    terminated = torch.empty(B, T, dtype=torch.bool, device=device)
    for t in range(T):
        frames[:, t] = observation
        if t == T - 1:
            end_poses = torch.cat([world.position, world.heading_radians()[:, None]], 1)
        observation, rewards[:, t], terminated[:, t] = world.step(actions[:, t])
    return TrajectoryBatch(frames, actions, rewards, terminated, torch.ones(B, dtype=torch.bool, device=device)), end_poses
