"""The built-in maze: B procedurally generated 3D mazes, stepped and raycast-rendered in torch.

A stand-in for DeepMind's Memory Maze (whose MuJoCo stack is too heavy to generate training data
on the fly): a grid maze seen first-person, walls textured by region so that places are
recognisable, a few coloured balls, the target colour shown as a frame border, the Memory Maze
action set, and +1 reward for touching the ball of the target colour.

Why torch and batched: the world model trains on windows from thousands of mazes at once, so
stepping and rendering are tensor ops over all B mazes at once, the same code on CPU (tests, CI)
and GPU (training). Only `reset` loops over mazes in Python (to generate their layouts), once per
episode.

Geometry. The maze is an N x N grid of unit squares, True = wall, with walls all round. A pose is
(x, y, heading): x along columns, y along rows (so y points "down" on a top-down map), heading an
integer in [0, n_headings) for the angle heading * 2pi / n_headings measured from +x towards +y.
Turning left decreases the heading. Headings are integers so that turning left then right lands on
exactly the same view (retrieval episodes rely on it) and so that sin/cos come from a table: no
transcendental functions run per step, which keeps frames bit-identical whatever the batch size.

Determinism. Everything about an episode follows from its seed: the layout from a numpy
Generator seeded with it, later random events (the next target colour) from a counter-based hash
of (seed, step). A maze's frames do not depend on the batch it runs in. Seeds are integers in
[0, 2**32): training data uses [0, TRAIN_SEED_LIMIT), evaluation episodes [EVAL_SEED_OFFSET, 2**32).

Rendering (per frame, all vectorised over B x H x W):
1. walls: for every screen column a ray; its distance to every vertical grid line x = k and every
   horizontal line y = k is computed at once, the first line whose far side is a wall cell is the
   hit (no DDA loop). Column height = focal / distance; texture by gather from a pattern atlas.
2. floor (tinted by region, checkered by cell) and ceiling: per row distance, world point, gather.
3. balls: disc billboards, brightest at the centre, hidden where their column's wall is nearer and
   painted far to near.
4. a border in the target's colour. Each pixel is then (material index, brightness): one gather
   from a per-maze colour table turns it into RGB.
"""

from dataclasses import dataclass
import math

import numpy as np
import torch

NOOP, FORWARD, TURN_LEFT, TURN_RIGHT, FORWARD_LEFT, FORWARD_RIGHT = range(6)
ACTION_NAMES = ("noop", "forward", "turn_left", "turn_right", "forward_left", "forward_right")
N_ACTIONS = len(ACTION_NAMES)

SEED_LIMIT = 2**32  # seeds are uint32 values
TRAIN_SEED_LIMIT = 2**31  # training seeds lie in [0, 2**31)
EVAL_SEED_OFFSET = 2**31  # evaluation seeds lie in [2**31, 2**32): never seen in training

# Bright ball colours (Memory Maze's set), index = object id; walls use muted colours so they never
# look like a ball.
OBJECT_COLOURS = (
    (230, 25, 25),  # red
    (25, 210, 25),  # green
    (40, 80, 255),  # blue
    (250, 220, 20),  # yellow
    (230, 40, 230),  # magenta
    (20, 225, 225),  # cyan
)
WALL_COLOURS = (
    (160, 92, 76),  # brick
    (204, 184, 132),  # sand
    (102, 122, 166),  # slate
    (115, 148, 97),  # moss
    (158, 133, 179),  # lavender
    (89, 153, 153),  # teal
    (153, 153, 153),  # grey
    (199, 140, 89),  # tan
)
CEILING_COLOUR = (190, 205, 220)

AGENT_RADIUS = 0.2  # the agent's collision box is [x - r, x + r] x [y - r, y + r]
BALL_RADIUS = 0.25
BALL_HEIGHT = 0.3  # ball centre above the floor; walls are 1 high, the eye at 0.5
BALL_NEAR = 0.25  # balls nearer than this (in depth) are clipped, as by a camera's near plane
REACH = AGENT_RADIUS + BALL_RADIUS  # touching the target ball gives the reward
TEXTURE_SIZE = 16

_M32 = 0xFFFFFFFF


def hash_uniform(seed: torch.Tensor, counter: torch.Tensor, salts) -> torch.Tensor:
    """Counter-based random numbers: uniform in [0, 1), a pure function of (seed, counter, salt).

    seed, counter: int64 [B]; salts: a list of ints (one stream each). Returns float32 [B, S].
    Integer ops only (every product stays below 2**63), so CPU and GPU agree bit for bit and a
    maze's random events don't depend on which batch it runs in.
    """
    salt = torch.as_tensor(salts, dtype=torch.int64, device=seed.device)
    x = ((seed[:, None] & _M32) * 0x2545F49) & _M32
    x = x ^ (((counter[:, None] & _M32) * 0x5BD1E99) & _M32)
    x = x ^ ((salt * 0x68E31DA) & _M32)
    for _ in range(3):  # the "hash32" finaliser: xorshift-multiply rounds
        x = (((x >> 16) ^ x) * 0x45D9F3B) & _M32
    x = (x >> 16) ^ x
    return (x >> 8).to(torch.float32) * (1.0 / (1 << 24))


def lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table[index] for a table [M, *rest] and any integer index: [*index.shape, *rest].

    Via index_select: on CPU, advanced indexing runs in parallel regions that cost milliseconds
    per call when the cores are shared; index_select doesn't.
    """
    return table.index_select(0, index.reshape(-1)).view(*index.shape, *table.shape[1:])


def default_n_objects(maze_size: int) -> int:
    """Memory Maze's ball count: 3 in 9x9, 4 in 11x11, 5 in 13x13, 6 in 15x15."""
    return min(6, max(3, 3 + (maze_size - 9) // 2))


def n_regions(maze_size: int) -> int:
    """How many differently textured regions a maze of this size has (3 to 8)."""
    return min(len(WALL_COLOURS), max(3, (maze_size - 1) // 2))


@dataclass
class MazeLayout:
    """One maze as numpy arrays: what `generate_layout` returns and `MazeWorld.reset` uploads."""

    grid: np.ndarray  # bool [N, N], True = wall
    region: np.ndarray  # int64 [N, N], region of every square (walls included)
    region_colour: np.ndarray  # int64 [R], index into WALL_COLOURS
    region_pattern: np.ndarray  # int64 [R], index into the pattern atlas
    objects: np.ndarray  # float32 [K, 2], ball centres (x, y)
    start: tuple  # (x, y, heading) of the agent
    target: int  # object id of the first target


def generate_layout(seed: int, maze_size: int, n_objects: int, n_headings: int) -> MazeLayout:
    """A maze from its seed: a random spanning tree of corridors, then loops and open rooms.

    A perfect maze (recursive backtracker over the odd squares) has exactly one path between two
    places; knocking out ~10% of the remaining inner walls and carving a few 3x3 rooms (Memory
    Maze has rooms too) gives loops, so that places can be reached again by other routes.
    """
    rng = np.random.default_rng(seed)
    n, cells = maze_size, (maze_size - 1) // 2
    grid = np.ones((n, n), dtype=bool)
    visited = np.zeros((cells, cells), dtype=bool)
    stack = [(int(rng.integers(cells)), int(rng.integers(cells)))]
    visited[stack[0]] = True
    grid[2 * stack[0][0] + 1, 2 * stack[0][1] + 1] = False
    while stack:
        i, j = stack[-1]
        options = [(i + di, j + dj) for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))
                   if 0 <= i + di < cells and 0 <= j + dj < cells and not visited[i + di, j + dj]]
        if not options:
            stack.pop()
            continue
        ni, nj = options[rng.integers(len(options))]
        grid[i + ni + 1, j + nj + 1] = False  # the wall square between the two cells
        grid[2 * ni + 1, 2 * nj + 1] = False
        visited[ni, nj] = True
        stack.append((ni, nj))

    inner = grid[1:-1, 1:-1]  # a view: edits below change grid
    rows, cols = np.indices(inner.shape)
    between = (rows % 2) != (cols % 2)  # wall squares separating two cells
    inner[between & (rng.random(inner.shape) < 0.1)] = False
    for _ in range(max(1, cells * cells // 12)):
        i, j = 2 * int(rng.integers(cells - 1)) + 1, 2 * int(rng.integers(cells - 1)) + 1
        grid[i:i + 3, j:j + 3] = False

    free = np.argwhere(~grid)  # [F, 2] (row, col)
    n_reg = n_regions(n)
    centres = free[rng.choice(len(free), size=n_reg, replace=False)]
    squares = np.indices((n, n)).reshape(2, -1).T  # [N*N, 2]
    d2 = ((squares[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    region = d2.argmin(1).reshape(n, n)

    picks = free[rng.choice(len(free), size=n_objects + 1, replace=False)]
    start_row, start_col = picks[0]
    objects = picks[1:, ::-1].astype(np.float32) + 0.5  # (row, col) -> (x, y) centres
    return MazeLayout(
        grid=grid,
        region=region.astype(np.int64),
        region_colour=rng.permutation(len(WALL_COLOURS))[:n_reg],
        region_pattern=rng.integers(len(_PATTERNS), size=n_reg),
        objects=objects,
        start=(start_col + 0.5, start_row + 0.5, int(rng.integers(n_headings))),
        target=int(rng.integers(n_objects)),
    )


def _pattern_atlas() -> torch.Tensor:
    """Wall patterns as brightness in [0.7, 1]: float32 [P, TEXTURE_SIZE, TEXTURE_SIZE] (v, u)."""
    v, u = torch.meshgrid(torch.arange(TEXTURE_SIZE), torch.arange(TEXTURE_SIZE), indexing="ij")
    dim = 0.78
    brick_joint = (u % 8) == torch.where((v // 4) % 2 == 0, 0, 4)
    patterns = [
        torch.where((u == 0) | (v == 0), 0.75, 1.0),  # panels
        torch.where(((v % 4) == 0) | brick_joint, 0.7, 1.0),  # bricks
        torch.where((u // 4) % 2 == 0, 1.0, dim),  # vertical stripes
        torch.where((v // 4) % 2 == 0, 1.0, dim),  # horizontal bands
        torch.where(((u // 4) + (v // 4)) % 2 == 0, 1.0, dim),  # checker
        torch.where(((u + v) // 4) % 2 == 0, 1.0, dim),  # diagonal stripes
    ]
    return torch.stack(patterns).float()


_PATTERNS = _pattern_atlas()


class MazeWorld:
    """B mazes stepped and rendered together on one device.

    State (all tensors on `device`, B = batch_size, N = maze_size, K = n_objects):
      grid bool [B, N, N] (True = wall), region int64 [B, N, N], objects float32 [B, K, 2],
      position float32 [B, 2] (x, y), heading int64 [B], target int64 [B] (object id),
      seed int64 [B], t int64 [B] (steps since reset).
    Policies and evaluation may read them; tests may write them to set up a situation.

    API: `reset(seeds, indices)` -> frames; `step(actions)` -> (frames, reward, terminated);
    `move(actions)` (step without rendering); `render()`; `render_object_ids()`; queries `cell()`,
    `place()`, `heading_radians()`, `target_colour()`. Frames are uint8 [B, H, W, 3].
    Episodes never terminate (as in Memory Maze): `terminated` is all False, callers truncate.
    """

    def __init__(self, batch_size: int, maze_size: int = 9, image_size: int = 64, device="cpu", *,
                 n_objects: int | None = None, seed: int = 0, fov_degrees: float = 90.0,
                 n_headings: int = 36, move_speed: float = 0.2):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if maze_size < 5 or maze_size % 2 == 0:
            raise ValueError(f"maze_size must be an odd integer >= 5 (e.g. 9 to 15), got {maze_size}")
        if image_size < 16 or image_size % 2:
            raise ValueError(f"image_size must be an even integer >= 16, got {image_size}")
        n_objects = default_n_objects(maze_size) if n_objects is None else n_objects
        if not 1 <= n_objects <= len(OBJECT_COLOURS):
            raise ValueError(f"n_objects must be in [1, {len(OBJECT_COLOURS)}], got {n_objects}")
        if not 0 < fov_degrees < 180:
            raise ValueError(f"fov_degrees must be in (0, 180), got {fov_degrees}")
        if n_headings < 4 or n_headings % 4:
            raise ValueError(f"n_headings must be a multiple of 4 (so the axes are headings), got {n_headings}")
        if not 0 < move_speed <= 0.5:
            raise ValueError(f"move_speed must be in (0, 0.5] cells per step, got {move_speed}")
        self.batch_size, self.maze_size, self.image_size = batch_size, maze_size, image_size
        self.n_objects, self.n_headings, self.move_speed = n_objects, n_headings, move_speed
        self.n_regions = n_regions(maze_size)
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)  # draws episode seeds when reset() is given none
        B, N, K, H, dev = batch_size, maze_size, n_objects, image_size, self.device

        self.grid = torch.ones(B, N, N, dtype=torch.bool, device=dev)
        self.region = torch.zeros(B, N, N, dtype=torch.int64, device=dev)
        self.region_pattern = torch.zeros(B, self.n_regions, dtype=torch.int64, device=dev)
        self.objects = torch.zeros(B, K, 2, device=dev)
        self.position = torch.zeros(B, 2, device=dev)
        self.heading = torch.zeros(B, dtype=torch.int64, device=dev)
        self.target = torch.zeros(B, dtype=torch.int64, device=dev)
        self.seed = torch.zeros(B, dtype=torch.int64, device=dev)
        self.t = torch.zeros(B, dtype=torch.int64, device=dev)
        self._is_reset = False

        # Colour table per maze, 0-255: R floor colours, R wall colours, ceiling, K balls.
        R = self.n_regions
        self._ceiling_material, self._ball_material = 2 * R, 2 * R + 1
        self.colours = torch.zeros(B, 2 * R + 1 + K, 3, device=dev)
        self.colours[:, 2 * R] = torch.tensor(CEILING_COLOUR, dtype=torch.float32)
        self.colours[:, 2 * R + 1:] = torch.tensor(OBJECT_COLOURS[:K], dtype=torch.float32)

        angles = torch.arange(n_headings, dtype=torch.float64) * (2 * math.pi / n_headings)
        self.directions = torch.stack([angles.cos(), angles.sin()], 1).float().to(dev)  # [nh, 2]
        self._plane = math.tan(math.radians(fov_degrees) / 2)  # half screen width at depth 1
        self._focal = image_size / (2 * self._plane)  # pixels per unit length at depth 1
        self._cam_x = ((torch.arange(H, device=dev) + 0.5) * (2 / H) - 1).view(1, H)  # [1, W]
        rows = torch.arange(H, device=dev, dtype=torch.float32) + 0.5 - H / 2
        self._row_offset = rows.view(1, H, 1)  # [1, H, 1] pixels below the horizon
        self._floor_dist = (0.5 * self._focal / rows[H // 2:]).view(1, H // 2, 1)  # [1, H/2, 1]
        self._ceiling_shade = (0.8 + 0.2 * torch.arange(H // 2, device=dev) / (H // 2)).view(1, H // 2, 1)
        self._floor_fog = 1 / (1 + 0.08 * self._floor_dist)
        squares = torch.arange(N * N, device=dev)
        self._floor_checker = torch.where((squares // N + squares % N) % 2 == 0, 1.0, 0.88)  # [N * N]
        self._patterns = _PATTERNS.to(dev).reshape(-1)  # [P * TS * TS]
        self._line_k = torch.arange(1, N, device=dev, dtype=torch.float32)  # inner grid lines
        # No ball pixel lies above this row (the nearest ball reaches highest up the screen).
        self._ball_top = max(0, int(H / 2 - max(0.0, BALL_HEIGHT + BALL_RADIUS - 0.5) * self._focal / BALL_NEAR))

    # ---------------------------------------------------------------- episodes

    @torch.no_grad()
    def reset(self, seeds=None, indices=None) -> torch.Tensor:
        """Start new episodes in all mazes (indices=None) or the given ones; returns all B frames.

        seeds: one int in [0, 2**32) per reset maze; None draws them from this world's Generator
        (seeded in the constructor) within the training range. Returns uint8 [B, H, W, 3].
        """
        idx = list(range(self.batch_size)) if indices is None else [int(i) for i in indices]
        if any(not 0 <= i < self.batch_size for i in idx):
            raise ValueError(f"indices must lie in [0, {self.batch_size}), got {idx}")
        if not self._is_reset and sorted(idx) != list(range(self.batch_size)):
            raise ValueError("the first reset() must reset every maze (indices=None)")
        if seeds is None:
            seeds = self.rng.integers(0, TRAIN_SEED_LIMIT, size=len(idx)).tolist()
        seeds = [int(s) for s in seeds]
        if len(seeds) != len(idx):
            raise ValueError(f"got {len(seeds)} seeds for {len(idx)} mazes to reset")
        if any(not 0 <= s < SEED_LIMIT for s in seeds):
            raise ValueError(f"seeds must lie in [0, 2**32), got {seeds}")
        layouts = [generate_layout(s, self.maze_size, self.n_objects, self.n_headings) for s in seeds]

        def upload(values, dtype):
            return torch.as_tensor(np.stack(values), dtype=dtype).to(self.device)

        i = torch.as_tensor(idx, dtype=torch.int64, device=self.device)
        R = self.n_regions
        wall_rgb = upload([np.asarray(WALL_COLOURS)[m.region_colour] for m in layouts], torch.float32)
        self.grid[i] = upload([m.grid for m in layouts], torch.bool)
        self.region[i] = upload([m.region for m in layouts], torch.int64)
        self.region_pattern[i] = upload([m.region_pattern for m in layouts], torch.int64)
        self.colours[i, :R] = 0.45 * wall_rgb + 0.25 * 128  # floors: darker, greyer walls
        self.colours[i, R:2 * R] = wall_rgb
        self.objects[i] = upload([m.objects for m in layouts], torch.float32)
        self.position[i] = upload([m.start[:2] for m in layouts], torch.float32)
        self.heading[i] = upload([m.start[2] for m in layouts], torch.int64)
        self.target[i] = upload([m.target for m in layouts], torch.int64)
        self.seed[i] = upload(seeds, torch.int64)
        self.t[i] = 0
        self._is_reset = True
        return self.render()

    @torch.no_grad()
    def move(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply one action per maze without rendering: returns (reward float32 [B], terminated bool [B]).

        Turning changes the heading by one step before the move; forward moves `move_speed` along
        the new heading, one axis at a time so that the agent slides along walls it runs into.
        """
        if not self._is_reset:
            raise RuntimeError("MazeWorld.reset() must be called before step()/move()")
        actions = torch.as_tensor(actions, device=self.device)
        if actions.shape != (self.batch_size,) or actions.dtype.is_floating_point or actions.dtype == torch.bool:
            raise ValueError(f"actions must be an integer tensor of shape ({self.batch_size},), "
                             f"got {actions.dtype} {tuple(actions.shape)}")
        bad = (actions < 0) | (actions >= N_ACTIONS)
        if bad.any():
            b = int(bad.nonzero()[0, 0])
            raise ValueError(f"invalid action {int(actions[b])} for maze {b}: actions are ints in "
                             f"[0, {N_ACTIONS}): " + ", ".join(f"{i} {n}" for i, n in enumerate(ACTION_NAMES)))
        left = (actions == TURN_LEFT) | (actions == FORWARD_LEFT)
        right = (actions == TURN_RIGHT) | (actions == FORWARD_RIGHT)
        self.heading = (self.heading + right.long() - left.long()) % self.n_headings
        forward = (actions == FORWARD) | (actions == FORWARD_LEFT) | (actions == FORWARD_RIGHT)
        delta = lookup(self.directions, self.heading) * (self.move_speed * forward.float())[:, None]  # [B, 2]
        x = self._slide(self.position[:, 0], self.position[:, 1], delta[:, 0], axis=0)
        y = self._slide(self.position[:, 1], x, delta[:, 1], axis=1)
        self.position = torch.stack([x, y], 1)

        target_xy = self.objects.gather(1, self.target.view(-1, 1, 1).expand(-1, 1, 2)).squeeze(1)
        reached = ((target_xy - self.position) ** 2).sum(1) < REACH**2
        # A new target: any other ball, picked by the hash of (seed, step).
        u = hash_uniform(self.seed, self.t, [0])[:, 0]
        offset = 1 + (u * (self.n_objects - 1)).long()
        self.target = torch.where(reached, (self.target + offset) % self.n_objects, self.target)
        self.t = self.t + 1
        return reached.float(), torch.zeros_like(reached)

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`move`, then render: returns (frames uint8 [B, H, W, 3], reward float32 [B], terminated bool [B])."""
        reward, terminated = self.move(actions)
        return self.render(), reward, terminated

    def _slide(self, along, other, delta, axis):
        """Move coordinate `along` by `delta` unless the box's leading edge enters a wall; then
        stop just short of it. `other` is the other coordinate. float32 [B] -> float32 [B]."""
        r = AGENT_RADIUS
        new = along + delta
        lead = torch.floor(new + torch.sign(delta) * r).long()  # cell the leading edge is in
        lo, hi = torch.floor(other - r).long(), torch.floor(other + r).long()
        if axis == 0:
            hit = self._wall(lo, lead) | self._wall(hi, lead)
        else:
            hit = self._wall(lead, lo) | self._wall(lead, hi)
        stop = torch.where(delta > 0, lead.float() - r - 1e-4, lead.float() + 1 + r + 1e-4)
        return torch.where(hit, stop, new)

    def _wall(self, row, col):
        """grid[b, row, col] for int64 row, col of shape [B, ...] (clamped to the grid)."""
        N = self.maze_size
        b = torch.arange(self.batch_size, device=self.device).view(-1, *[1] * (row.dim() - 1))
        flat = (b * N + row.clamp(0, N - 1)) * N + col.clamp(0, N - 1)
        return lookup(self.grid.view(-1), flat)

    # ---------------------------------------------------------------- queries

    def cell(self) -> torch.Tensor:
        """The grid square each agent stands in, as row * N + col: int64 [B]."""
        col, row = self.position.floor().long().unbind(1)
        return row * self.maze_size + col

    def place(self, n_heading_bins: int = 4) -> torch.Tensor:
        """A coarse place: cell and heading quantised to n_heading_bins centred on the axes. int64 [B]."""
        half = self.n_headings // (2 * n_heading_bins)
        heading_bin = ((self.heading + half) % self.n_headings) * n_heading_bins // self.n_headings
        return self.cell() * n_heading_bins + heading_bin

    def heading_radians(self) -> torch.Tensor:
        """float32 [B]."""
        return self.heading.float() * (2 * math.pi / self.n_headings)

    def target_colour(self) -> torch.Tensor:
        """RGB of every maze's current target ball: uint8 [B, 3]."""
        return torch.tensor(OBJECT_COLOURS, dtype=torch.uint8, device=self.device)[self.target]

    # ---------------------------------------------------------------- rendering

    @torch.no_grad()
    def render(self) -> torch.Tensor:
        """The first-person view of every maze with the target-colour border: uint8 [B, H, W, 3]."""
        material, shade = self._compose()
        B, w = self.batch_size, max(1, self.image_size // 32)
        target = (self._ball_material + self.target).view(B, 1, 1)
        for part in (material[:, :w], material[:, -w:], material[:, :, :w], material[:, :, -w:]):
            part.copy_(target.expand_as(part))
        for part in (shade[:, :w], shade[:, -w:], shade[:, :, :w], shade[:, :, -w:]):
            part.fill_(1.0)
        M = self.colours.shape[1]
        flat = material + (torch.arange(B, device=self.device) * M).view(B, 1, 1)
        rgb = torch.addcmul(torch.tensor(0.5, device=self.device), lookup(self.colours.view(-1, 3), flat), shade.unsqueeze(-1))
        return rgb.to(torch.uint8)  # [B, H, W, 3], rounded

    @torch.no_grad()
    def render_object_ids(self) -> torch.Tensor:
        """Which ball each pixel shows (-1 for none), without the border: int64 [B, H, W].

        For evaluation: e.g. the pixels where a cue ball must reappear.
        """
        material, _ = self._compose()
        return torch.where(material >= self._ball_material, material - self._ball_material, -1)

    def _compose(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Material index int64 [B, H, W] (into self.colours) and brightness float32 [B, H, W]."""
        if not self._is_reset:
            raise RuntimeError("MazeWorld.reset() must be called before render()")
        B, N, H, R = self.batch_size, self.maze_size, self.image_size, self.n_regions
        dev, TS = self.device, TEXTURE_SIZE
        px, py = self.position[:, 0:1], self.position[:, 1:2]  # [B, 1]
        d = lookup(self.directions, self.heading)  # [B, 2]
        # Ray of each column: dir + right * plane * cam_x, right = (-dir_y, dir_x). Not normalised,
        # so the distance along it is the depth (perpendicular distance: no fisheye).
        rdx = d[:, 0:1] - d[:, 1:2] * self._plane * self._cam_x  # [B, W]
        rdy = d[:, 1:2] + d[:, 0:1] * self._plane * self._cam_x
        rdx = torch.where(rdx.abs() < 1e-6, 1e-6, rdx)
        rdy = torch.where(rdy.abs() < 1e-6, 1e-6, rdy)
        b_flat = (torch.arange(B, device=dev) * (N * N)).view(B, 1, 1)  # offset of maze b in grid.view(-1)

        # 1. Walls: depth of the first grid line (x = k or y = k) whose far side is a wall square.
        k = self._line_k  # [N-1]

        def first_hit(p_a, p_b, r_a, r_b, along_x):
            t = (k - p_a.unsqueeze(-1)) / r_a.unsqueeze(-1)  # [B, W, N-1] depth of line k
            across = (k + torch.where(r_a > 0, 0.0, -1.0).unsqueeze(-1)).long()  # square entered
            other = torch.floor(p_b.unsqueeze(-1) + t * r_b.unsqueeze(-1)).long().clamp(0, N - 1)
            flat = b_flat + (other * N + across if along_x else across * N + other)
            hit = lookup(self.grid.view(-1), flat) & (t > 0)
            return torch.where(hit, t, torch.inf).amin(-1)  # [B, W]

        tx = first_hit(px, py, rdx, rdy, along_x=True)  # vertical lines x = k
        ty = first_hit(py, px, rdy, rdx, along_x=False)  # horizontal lines y = k
        y_side = ty < tx
        depth = torch.minimum(tx, ty)  # [B, W]
        hx, hy = px + depth * rdx, py + depth * rdy
        # The wall square hit (step into it across the line) and where along its face (u in [0, 1)).
        col = torch.where(y_side, hx.floor(), torch.where(rdx > 0, hx.round(), hx.round() - 1)).long()
        row = torch.where(y_side, torch.where(rdy > 0, hy.round(), hy.round() - 1), hy.floor()).long()
        u = torch.where(y_side, hx - hx.floor(), hy - hy.floor())
        wall_region = lookup(self.region.view(-1), b_flat.view(B, 1) + row.clamp(0, N - 1) * N + col.clamp(0, N - 1))
        pattern = self.region_pattern.gather(1, wall_region)  # [B, W]
        texel_col = (pattern * TS * TS + (u * TS).long().clamp(max=TS - 1)).unsqueeze(1)  # [B, 1, W]
        column_shade = (torch.where(y_side, 0.8, 1.0) / (1 + 0.08 * depth)).unsqueeze(1)  # side light, fog
        wall_material = (wall_region + R).unsqueeze(1)  # [B, 1, W]

        half = (0.5 * self._focal / depth).unsqueeze(1)  # [B, 1, W] half the column's height
        is_wall = self._row_offset.abs() < half  # [B, H, W]
        # Texture row of each pixel, (row_offset / half + 1) * TS / 2, clamped (only walls use it).
        texel_row = torch.addcmul(torch.tensor(TS / 2, device=dev), self._row_offset, TS / 2 / half)
        texel_row = texel_row.long().clamp(0, TS - 1)  # [B, H, W]
        wall_shade = lookup(self._patterns, torch.add(texel_col, texel_row, alpha=TS)) * column_shade

        # 2. Floor (lower half: region tint, cell checker) and ceiling (upper half: gradient).
        fd = self._floor_dist  # [1, H/2, 1] depth of each floor row
        fx = torch.addcmul(px.unsqueeze(1), rdx.unsqueeze(1), fd)  # [B, H/2, W] world point
        fy = torch.addcmul(py.unsqueeze(1), rdy.unsqueeze(1), fd)
        square = torch.add(fx.long().clamp(0, N - 1), fy.long().clamp(0, N - 1), alpha=N)  # clamped: trunc = floor
        floor_material = lookup(self.region.view(-1), b_flat + square)
        floor_shade = lookup(self._floor_checker, square) * self._floor_fog
        ceiling = torch.full((B, H // 2, H), self._ceiling_material, dtype=torch.int64, device=dev)
        material = torch.where(is_wall, wall_material, torch.cat([ceiling, floor_material], 1))
        shade = torch.where(is_wall, wall_shade, torch.cat([self._ceiling_shade.expand(B, H // 2, H), floor_shade], 1))

        # 3. Balls: disc billboards painted far to near (painter's algorithm), hidden where the
        # column's wall is nearer, only in the rows a ball can reach (from _ball_top down).
        # q is the squared distance from the disc centre in radii.
        rel = self.objects - self.position.unsqueeze(1)  # [B, K, 2]
        z = rel[..., 0] * d[:, 0:1] + rel[..., 1] * d[:, 1:2]  # depth [B, K]
        lateral = rel[..., 1] * d[:, 0:1] - rel[..., 0] * d[:, 1:2]  # along the screen's right
        order = torch.argsort(z, dim=1, descending=True, stable=True)
        z, lateral = z.gather(1, order), lateral.gather(1, order)
        zs = z.clamp(min=1e-3)
        centre_x = (H / 2) * (1 + lateral / (zs * self._plane))  # [B, K] in pixels
        centre_y = H / 2 + (0.5 - BALL_HEIGHT) * self._focal / zs
        radius = BALL_RADIUS * self._focal / zs
        top = self._ball_top
        columns = torch.arange(H, device=dev, dtype=torch.float32) + 0.5  # [W] pixel centres
        rows = self._row_offset[:, top:] + H / 2  # [1, H - top, 1]
        ball_q = torch.full((B, H - top, H), torch.inf, device=dev)
        ball_slot = torch.zeros((B, H - top, H), dtype=torch.int64, device=dev)
        for s in range(self.n_objects):
            qx = ((columns - centre_x[:, s:s + 1]) / radius[:, s:s + 1]) ** 2  # [B, W]
            qx = torch.where((z[:, s:s + 1] > BALL_NEAR) & (z[:, s:s + 1] < depth), qx, torch.inf)
            qy = ((rows - centre_y[:, s].view(B, 1, 1)) / radius[:, s].view(B, 1, 1)) ** 2  # [B, H - top, 1]
            q = qx.unsqueeze(1) + qy  # [B, H - top, W]
            inside = q < 1
            ball_q = torch.where(inside, q, ball_q)
            ball_slot = torch.where(inside, s, ball_slot)
        is_ball = ball_q < 1
        ball = lookup(order.view(-1), (torch.arange(B, device=dev) * self.n_objects).view(B, 1, 1) + ball_slot)
        material[:, top:] = torch.where(is_ball, ball + self._ball_material, material[:, top:])
        shade[:, top:] = torch.where(is_ball, 1 - 0.45 * ball_q, shade[:, top:])  # brightest at the centre
        return material, shade
