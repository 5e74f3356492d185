"""Evaluation episodes on the built-in maze: spatial retrieval, spatial reasoning, cue recall.

Each episode is a ground-truth video with its actions: the model under test gets the first
`context_length` frames (and the actions), then generates frames[context_length:] from
actions[context_length - 1:], and is scored against the true frames. The ground truth is what the
true maze renders for those actions, so collisions or drift can't make it wrong.

- retrieval (the paper's): explore for N frames, turn 180 degrees, replay the context actions in
  reverse with left and right swapped: the agent walks back to its start, seeing places it passed
  (from the other side). The context is explored without curved moves (forward+turn), so the way
  back retraces the way out exactly.
- reasoning (the paper's): explore for N frames, then held random actions.
- cue recall: walk to a ball (the cue) and look at it, stay out of its sight for >= 500 frames
  (wandering among the cells it cannot be seen from), come back and look at it again; the context
  ends as it comes back into view. `cue_colour` and `cue_mask` (the cue's pixels in every frame)
  let an evaluator score whether the model recalled the colour where the ball reappears.
- cue recall trajectories (`cue_recall_trajectory`): the same run in a *training* maze, followed by
  exploration, as training data that asks for a ball's colour (stored by worldsim.data.plans).

Seeds: training mazes use seeds in [0, TRAIN_SEED_LIMIT = 2**31); evaluation episode i uses seed
`eval_seed(i)` = EVAL_SEED_OFFSET + i (EVAL_SEED_OFFSET = 2**31), so no evaluation maze is ever
trained on. Alignment as everywhere: actions[t] follows frames[t]; the final action is a noop
placeholder so that frames and actions have the same length.
"""

from collections import deque
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch

from worldsim.maze.core import (EVAL_SEED_OFFSET, FORWARD, FORWARD_LEFT, FORWARD_RIGHT, N_ACTIONS, NOOP,
                                OBJECT_COLOURS, SEED_LIMIT, TRAIN_SEED_LIMIT, TURN_LEFT, TURN_RIGHT, MazeWorld,
                                default_n_objects)
from worldsim.maze.policies import (ARRIVED, ExplorePolicy, PersistentRandomPolicy, cell_centre, heading_error,
                                    steer)

__all__ = ["EVAL_SEED_OFFSET", "TRAIN_SEED_LIMIT", "MazeEpisode", "eval_seed", "reverse_actions",
           "retrieval_episode", "reasoning_episode", "cue_recall_episode", "cue_recall_trajectory"]

_MIRROR = torch.tensor([NOOP, FORWARD, TURN_RIGHT, TURN_LEFT, FORWARD_RIGHT, FORWARD_LEFT])


@dataclass
class MazeEpisode:
    kind: str  # "retrieval", "reasoning" or "cue_recall"
    seed: int  # maze seed (>= EVAL_SEED_OFFSET)
    frames: torch.Tensor  # uint8 [T, H, W, 3], ground truth
    actions: torch.Tensor  # int64 [T]; actions[t] follows frames[t]; the last is a noop placeholder
    rewards: torch.Tensor  # float32 [T]
    poses: torch.Tensor  # float32 [T, 3]: x, y (cells), heading (radians) at each frame
    context_length: int  # frames[:context_length] are given; the rest is to be generated
    maze_size: int
    cue_object: int | None = None  # cue recall: ball id of the cue
    cue_colour: tuple | None = None  # its RGB
    cue_mask: torch.Tensor | None = None  # bool [T, H, W]: pixels showing the cue ball
    ball_pixels: torch.Tensor | None = None  # cue recall: int64 [T, balls], each ball's pixels in view
    protocol: int | None = None  # cue recall: how it was built (cue_recall_episode)


def eval_seed(index: int) -> int:
    """The maze seed of evaluation episode `index` (disjoint from all training seeds)."""
    if not 0 <= index < SEED_LIMIT - EVAL_SEED_OFFSET:
        raise ValueError(f"evaluation index must be in [0, {SEED_LIMIT - EVAL_SEED_OFFSET}), got {index}")
    return EVAL_SEED_OFFSET + index


def reverse_actions(actions: torch.Tensor) -> torch.Tensor:
    """The way back after a 180 degree turn: actions in reverse order, left and right swapped."""
    return _MIRROR.to(actions.device)[actions.flip(0)]


class _Rollout:
    """Steps a one-maze world and keeps what an episode records."""

    def __init__(self, world: MazeWorld, cue: int | None = None):
        self.world, self.cue = world, cue
        self.frames, self.poses, self.masks, self.ball_pixels, self.actions, self.rewards = [], [], [], [], [], []
        self.targets = []  # the target ball at each frame (the border's colour)
        self.cue_last_seen = None  # the last frame showing the cue
        self._observe(world.render()[0])

    def _observe(self, frame):
        self.frames.append(frame.cpu())
        x, y = self.world.position[0].tolist()
        self.poses.append((x, y, float(self.world.heading_radians()[0])))
        self.targets.append(int(self.world.target[0]))
        if self.cue is not None:
            ids = self.world.render_object_ids()[0]
            self.masks.append((ids == self.cue).cpu())
            if self.masks[-1].any():
                self.cue_last_seen = len(self.masks) - 1
            self.ball_pixels.append(torch.bincount(ids[ids >= 0], minlength=self.world.n_objects).cpu())

    def step(self, action: int):
        frames, reward, _ = self.world.step(torch.tensor([int(action)], device=self.world.device))
        self.actions.append(int(action))
        self.rewards.append(float(reward[0]))
        self._observe(frames[0])

    def walk(self, cells: list[int]):
        """Walk through the centres of `cells` (row * N + col) in turn, without curved moves."""
        for cell in cells:
            goal = cell_centre(self.world, torch.tensor([cell], device=self.world.device))
            for _ in range(100):
                if ((goal - self.world.position) ** 2).sum() < ARRIVED**2:
                    break
                self.step(steer(self.world, goal, curves=False)[0])
            else:
                raise RuntimeError(f"could not reach cell {cell} (maze seed {int(self.world.seed[0])})")

    def face(self, xy: torch.Tensor):
        """Turn in place until facing the point xy (float32 [1, 2])."""
        while (err := int(heading_error(self.world, xy)[0])) != 0:
            self.step(TURN_RIGHT if err > 0 else TURN_LEFT)

    def explore(self, steps: int, curves: bool = True):
        policy = ExplorePolicy(self.world, curves=curves)
        for _ in range(steps):
            self.step(policy.act()[0])

    def episode(self, kind: str, context_length: int, **cue) -> MazeEpisode:
        return MazeEpisode(
            kind=kind, seed=int(self.world.seed[0]),
            frames=torch.stack(self.frames),
            actions=torch.tensor(self.actions + [NOOP], dtype=torch.int64),
            rewards=torch.tensor(self.rewards + [0.0], dtype=torch.float32),
            poses=torch.tensor(self.poses, dtype=torch.float32),
            context_length=context_length, maze_size=self.world.maze_size,
            cue_mask=torch.stack(self.masks) if self.masks else None,
            ball_pixels=torch.stack(self.ball_pixels) if self.ball_pixels else None, **cue)


def _world(seed, maze_size, image_size, device) -> MazeWorld:
    world = MazeWorld(1, maze_size=maze_size, image_size=image_size, device=device)
    world.reset(seeds=[seed])
    return world


def retrieval_episode(index: int, context_length: int = 400, *, maze_size: int = 9, image_size: int = 64,
                      device="cpu") -> MazeEpisode:
    """Explore for context_length frames, then the way back: T = 2 * context_length + n_headings/2 + 1."""
    run = _Rollout(_world(eval_seed(index), maze_size, image_size, device))
    run.explore(context_length, curves=False)
    for _ in range(run.world.n_headings // 2):
        run.step(TURN_LEFT)
    for action in reverse_actions(torch.tensor(run.actions[:context_length])).tolist():
        run.step(action)
    return run.episode("retrieval", context_length)


def reasoning_episode(index: int, context_length: int = 576, generate_length: int = 224, *, maze_size: int = 9,
                      image_size: int = 64, device="cpu") -> MazeEpisode:
    """Explore for context_length frames, then generate_length frames of held random actions."""
    run = _Rollout(_world(eval_seed(index), maze_size, image_size, device))
    run.explore(context_length)
    random = PersistentRandomPolicy(gymnasium.spaces.Discrete(N_ACTIONS), seed=eval_seed(index))
    for _ in range(generate_length - 1):
        run.step(random.act()[0])
    return run.episode("reasoning", context_length)


CUE_RECALL_PROTOCOLS = (1, 2)


def cue_recall_episode(index: int, away_length: int = 500, look_length: int = 8, *, maze_size: int = 9,
                       image_size: int = 64, device="cpu", cue: int | None = None, protocol: int = 2) -> MazeEpisode:
    """See a ball (the cue), stay out of its sight for >= away_length frames, come back and look at it
    for look_length frames; the context ends as the cue first comes back into view (protocol 2).

    Away, the agent walks to the cells from which the cue cannot be seen and wanders among them, so
    the generated frames need the cue's colour from >= away_length frames back, and the model draws
    them after only the true frames of the way back. Protocol 1 (every result before protocol 2,
    2026-12-06) explored instead, passing the cue again in 43 of 64 episodes (7 ended with it in
    view), and its context ended where the way back begins, so that the model drew the whole way
    back on its own.

    The frame border shows the target ball's colour, and a touched target moves on to another ball,
    which can be the cue; then the border would tell the cue's colour without memory. The balls are
    tried as the cue in a seeded order until one is not the target at the end of the context (each
    try walks its own path in the same maze). If every ball ends as the target, the last try is
    kept: cue recall's scoring leaves such episodes out (evaluation.tasks.tests_memory). `cue` fixes
    the ball instead (to rebuild an episode scored before 2026-12-06, whose cue was drawn without
    this check).
    """
    if protocol not in CUE_RECALL_PROTOCOLS:
        raise ValueError(f"cue recall protocol must be one of {CUE_RECALL_PROTOCOLS}, got {protocol!r}")
    run, context_length = _cue_recall(eval_seed(index), away_length, look_length, maze_size, image_size, device, cue,
                                      protocol)
    return run.episode("cue_recall", context_length, cue_object=run.cue, cue_colour=OBJECT_COLOURS[run.cue],
                       protocol=protocol)


def cue_recall_trajectory(seed: int, length: int, away_length: int, look_length: int = 8, *, maze_size: int = 9,
                          image_size: int = 64, device="cpu") -> tuple[torch.Tensor, torch.Tensor] | None:
    """Training data that asks for memory: a protocol-2 cue recall run (see a ball, stay out of its sight
    for away_length frames, come back to it) in the training maze `seed`, then the explorer until the
    trajectory has `length` frames. Returns (actions int64 [length], poses float32 [length, 3]), aligned
    as an episode's (the last action is the explorer's next), or None if the recall run alone is longer."""
    if not 0 <= seed < TRAIN_SEED_LIMIT:
        raise ValueError(f"training maze seeds lie in [0, {TRAIN_SEED_LIMIT}), got {seed}")
    run, _ = _cue_recall(seed, away_length, look_length, maze_size, image_size, device, None, protocol=2)
    if len(run.frames) > length:
        return None
    run.explore(length - len(run.frames) + 1)  # one more step: the action that follows the last frame
    return torch.tensor(run.actions, dtype=torch.int64), torch.tensor(run.poses[:length], dtype=torch.float32)


def _cue_recall(seed: int, away_length: int, look_length: int, maze_size: int, image_size: int, device,
                cue: int | None, protocol: int) -> tuple[_Rollout, int]:
    """The cue recall run whose cue is not the target at its context's end (see cue_recall_episode),
    and its context length."""
    order = np.random.default_rng(seed).permutation(default_n_objects(maze_size)) if cue is None else [cue]
    for ball in map(int, order):
        run, context_length = _cue_recall_run(seed, ball, away_length, look_length, maze_size, image_size, device,
                                              protocol)
        if run.targets[context_length - 1] != ball:
            break
    return run, context_length


def _cue_recall_run(seed: int, cue: int, away_length: int, look_length: int, maze_size: int, image_size: int,
                    device, protocol: int) -> tuple[_Rollout, int]:
    """A cue recall run with this cue, and its context length."""
    world = _world(seed, maze_size, image_size, device)
    N = maze_size
    grid = world.grid[0].cpu().numpy()
    cue_xy = world.objects[0:1, cue]  # [1, 2]
    cue_cell = int(cue_xy[0, 1]) * N + int(cue_xy[0, 0])
    run = _Rollout(world, cue=cue)

    def look():
        run.face(cue_xy)
        for _ in range(look_length):
            run.step(NOOP)

    to_cue = _path(grid, int(world.cell()[0]), cue_cell)
    viewpoint = to_cue[-2] if len(to_cue) > 1 else int(world.cell()[0])  # the cell before the cue's
    run.walk(to_cue[1:-1])
    look()
    if protocol == 1:
        away_start = len(run.actions)
        run.walk(_path(grid, viewpoint, int(_distances(grid, cue_cell).argmax()))[1:])
        run.explore(max(0, away_length - (len(run.actions) - away_start)))
    else:
        _wander_out_of_sight(run, grid, cue_cell, viewpoint, away_length)
    way_back = len(run.frames)
    run.walk(_path(grid, int(world.cell()[0]), viewpoint))  # via the centre of the current cell
    look()
    context_length = way_back
    if protocol == 2:  # the context runs up to the cue's return into view
        context_length = way_back + [bool(m.any()) for m in run.masks[way_back:]].index(True)
    return run, context_length


def _wander_out_of_sight(run: _Rollout, grid: np.ndarray, cue_cell: int, start: int, away_length: int):
    """Walk from `start` to the largest connected group of cells from which the cue cannot be seen,
    and wander among them (random cells in turn, seeded) until the cue has been out of view for
    away_length frames. Cells holding a ball are left out: touching the target ball moves the
    target on, and a wander among balls would leave it on a ball it never passes, often the cue."""
    hidden = _out_of_sight_cells(run.world, run.cue)
    balls = run.world.objects[0].long().cpu().numpy()  # [K, 2] cells as (col, row)
    hidden[balls[:, 1] * grid.shape[0] + balls[:, 0]] = False
    groups = _groups(grid, hidden)
    distance = _distances(grid, cue_cell)
    if not groups:
        raise ValueError(f"cue recall: ball {run.cue} can be seen from every free cell without a ball of maze seed "
                         f"{int(run.world.seed[0])} (maze_size {grid.shape[0]}), so it cannot be kept out of view; "
                         "use a larger maze")
    group = max(groups, key=lambda g: (len(g), distance[g].max()))
    run.walk(_path(grid, start, group[int(distance[group].argmax())])[1:])
    walls = np.ones_like(grid)
    walls.flat[group] = False  # the wander keeps to the group
    rng = np.random.default_rng(int(run.world.seed[0]))
    while len(run.frames) - 1 - run.cue_last_seen < away_length:
        if len(run.frames) > 20 * away_length + 1000:
            raise RuntimeError(f"could not keep the cue out of view (maze seed {int(run.world.seed[0])})")
        here = int(run.world.cell()[0])
        if len(group) == 1:  # a lone cell: look around in it
            run.step(TURN_LEFT)
        else:
            run.walk(_path(walls, here, int(rng.choice([c for c in group if c != here])))[1:])


@torch.no_grad()
def _out_of_sight_cells(world: MazeWorld, ball: int) -> np.ndarray:
    """bool [N * N]: the free cells from whose centre `ball` is out of view at every heading."""
    N, H = world.maze_size, world.n_headings
    free = np.flatnonzero(~world.grid[0].cpu().numpy().ravel())
    probe = MazeWorld(len(free) * H, N, world.image_size, world.device, n_objects=world.n_objects, n_headings=H)
    probe.reset(seeds=[int(world.seed[0])] * probe.batch_size)
    probe.position = cell_centre(probe, torch.as_tensor(free, device=world.device)).repeat_interleave(H, 0)
    probe.heading = torch.arange(H, device=world.device).repeat(len(free))
    in_view = (probe.render_object_ids() == ball).flatten(1).any(1).view(len(free), H).any(1).cpu().numpy()
    hidden = np.zeros(N * N, dtype=bool)
    hidden[free[~in_view]] = True
    return hidden


def _groups(grid: np.ndarray, cells: np.ndarray) -> list[np.ndarray]:
    """The connected groups (4-neighbours) of the free cells marked in `cells` (bool [N * N])."""
    walls = grid.copy()
    walls.flat[~cells] = True
    left, groups = set(np.flatnonzero(cells).tolist()), []
    while left:
        reach = np.flatnonzero(_distances(walls, left.pop()) >= 0)
        left -= set(reach.tolist())
        groups.append(reach)
    return groups


def _distances(grid: np.ndarray, source: int) -> np.ndarray:
    """Breadth-first step counts from `source` over free cells (4-neighbours): int [N * N], -1 if unreachable."""
    N = grid.shape[0]
    dist = np.full(N * N, -1)
    dist[source] = 0
    queue = deque([source])
    while queue:
        cell = queue.popleft()
        for nxt in (cell - N, cell + 1, cell + N, cell - 1):
            if not grid.flat[nxt] and dist[nxt] < 0:
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return dist


def _path(grid: np.ndarray, start: int, goal: int) -> list[int]:
    """A shortest path of cells from start to goal, both included."""
    dist, N = _distances(grid, goal), grid.shape[0]
    path = [start]
    while path[-1] != goal:
        cell = path[-1]
        path.append(next(n for n in (cell - N, cell + 1, cell + N, cell - 1) if dist[n] == dist[cell] - 1))
    return path
