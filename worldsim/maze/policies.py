"""Behaviour policies that generate training and evaluation trajectories.

A world model only learns to remember if its training videos come back to places seen long ago,
so the maze policy is an explorer that travels and returns: it walks the maze cell by cell,
keeps the path it took on a stack, and every so often (always at a dead end) walks a random
stretch of that path back before branching off elsewhere. It looks around and pauses now and then
so that every action occurs. It reads the world's privileged state (grid, pose), is batched over
the B mazes of a `MazeWorld`, and draws its random numbers from the world's (seed, step) hash,
so a maze's trajectory depends only on its seed.

`PersistentRandomPolicy` is the generic fallback for any Gymnasium action space (used by
`worldsim record`): random actions, each held for a random number of steps.

`revisit_fraction` measures what matters: the share of frames showing a place (cell + coarse
heading) that was last seen at least `gap` frames earlier.
"""

import copy

import gymnasium
import numpy as np
import torch

from worldsim.maze.core import (FORWARD, FORWARD_LEFT, FORWARD_RIGHT, NOOP, TURN_LEFT, TURN_RIGHT,
                                MazeWorld, hash_uniform)

ARRIVED = 0.15  # distance to a cell centre that counts as being there (a move is 0.2)


def heading_error(world: MazeWorld, goal_xy: torch.Tensor) -> torch.Tensor:
    """Signed heading steps from each agent's heading to the heading that points best at goal_xy
    (float32 [B, 2]): int64 [B], > 0 means turn right. Integer arithmetic on the heading table
    (no atan2), so decisions don't depend on the batch."""
    to_goal = goal_xy - world.position  # [B, 2]
    alignment = (to_goal.unsqueeze(1) * world.directions).sum(-1)  # [B, n_headings]
    best = alignment.argmax(1)
    nh = world.n_headings
    return (best - world.heading + nh // 2) % nh - nh // 2


def steer(world: MazeWorld, goal_xy: torch.Tensor, curves: bool = True) -> torch.Tensor:
    """Actions that drive each agent to goal_xy (float32 [B, 2]): int64 [B].

    Forward when aimed at it; with `curves`, forward while turning when nearly aimed and not too
    close (a smooth curve); otherwise turn in place (the shortest way round). Without curves only
    noop/forward/turn occur, whose reversal retraces a path exactly (retrieval episodes).
    """
    err = heading_error(world, goal_xy)
    # Facing away: +-180 degrees is a tie; break it by step parity so U-turns go both ways.
    err = torch.where(err == -(world.n_headings // 2), torch.where(world.t % 2 == 0, -err, err), err)
    far = ((goal_xy - world.position) ** 2).sum(1) > 0.5**2
    right = err > 0
    return torch.where(
        err == 0, FORWARD,
        torch.where((err.abs() <= 2) & far & curves,
                    torch.where(right, FORWARD_RIGHT, FORWARD_LEFT),
                    torch.where(right, TURN_RIGHT, TURN_LEFT)))


def cell_centre(world: MazeWorld, cell: torch.Tensor) -> torch.Tensor:
    """Centre (x, y) of cells given as row * N + col: float32 [B, 2]."""
    N = world.maze_size
    return torch.stack([cell % N, cell // N], 1).float() + 0.5


class ExplorePolicy:
    """Travel-and-return explorer over the B mazes of `world`: call `act()` before every step.

    At each cell centre it picks the next cell: with probability p_backtrack (and always at a
    dead end) it starts walking back along its path for a random number of cells; otherwise it
    moves to a random open neighbour other than the one it came from, preferring to go straight
    (straight_bias). On arrival it also may look around (a 90-360 degree spin, p_look) or pause
    (noops, p_pause). The path is a stack of the last `stack_size` cells. `curves`: see `steer`.
    """

    def __init__(self, world: MazeWorld, *, stack_size: int = 256, p_backtrack: float = 0.05,
                 straight_bias: float = 0.5, p_look: float = 0.04, p_pause: float = 0.02, curves: bool = True):
        self.world, self.curves = world, curves
        self.stack_size, self.p_backtrack, self.straight_bias = stack_size, p_backtrack, straight_bias
        self.p_look, self.p_pause = p_look, p_pause
        B, dev = world.batch_size, world.device
        self.stack = torch.zeros(B, stack_size, dtype=torch.int64, device=dev)  # path, oldest first
        self.depth = torch.zeros(B, dtype=torch.int64, device=dev)  # entries on the stack; top = goal
        self.backtrack = torch.zeros(B, dtype=torch.int64, device=dev)  # cells still to walk back
        self.hold = torch.zeros(B, dtype=torch.int64, device=dev)  # steps left of a held action
        self.hold_action = torch.zeros(B, dtype=torch.int64, device=dev)
        N = world.maze_size
        self._offsets = torch.tensor([-N, 1, N, -1], device=dev)  # to the cells north, east, south, west
        self.reset()

    def reset(self, indices=None):
        """Forget the paths of all mazes (or of `indices`); call after `world.reset`."""
        i = slice(None) if indices is None else torch.as_tensor(indices, dtype=torch.int64, device=self.world.device)
        self.stack[i, 0] = self.world.cell()[i]
        self.depth[i], self.backtrack[i], self.hold[i] = 1, 0, 0

    @property
    def goal(self) -> torch.Tensor:
        """The cell each agent is heading for (the top of its path): int64 [B]."""
        return self.stack.gather(1, (self.depth - 1)[:, None]).squeeze(1)

    @torch.no_grad()
    def act(self) -> torch.Tensor:
        """The next action of every maze: int64 [B]."""
        w = self.world
        u = hash_uniform(w.seed, w.t, range(101, 111))  # [B, 10] this step's random numbers
        arrived = ((cell_centre(w, self.goal) - w.position) ** 2).sum(1) < ARRIVED**2
        decide = arrived & (self.hold == 0)
        self._next_cell(decide, u)
        look = decide & (u[:, 6] < self.p_look)
        pause = decide & ~look & (u[:, 7] < self.p_pause)
        spin_length = w.n_headings // 4 + (u[:, 8] * (w.n_headings * 3 // 4)).long()  # 90-360 degrees
        pause_length = 2 + (u[:, 8] * 6).long()  # 2-7 steps (look and pause exclude each other)
        self.hold = torch.where(look, spin_length, torch.where(pause, pause_length, self.hold))
        spin = torch.where(u[:, 9] < 0.5, TURN_LEFT, TURN_RIGHT)
        self.hold_action = torch.where(look, spin, torch.where(pause, NOOP, self.hold_action))

        action = torch.where(self.hold > 0, self.hold_action, steer(w, cell_centre(w, self.goal), self.curves))
        self.hold = (self.hold - 1).clamp(min=0)
        return action

    def _next_cell(self, decide, u):
        """For the agents in `decide` (bool [B]), push the next cell or pop one (walk back)."""
        w, S = self.world, self.stack_size
        cur = self.goal
        prev = self.stack.gather(1, (self.depth - 2).clamp(min=0)[:, None]).squeeze(1)
        prev = torch.where(self.depth >= 2, prev, -1)
        neighbours = cur[:, None] + self._offsets  # [B, 4]
        open_ = ~w.grid.view(w.batch_size, -1).gather(1, neighbours)  # cur is inside: no overflow
        onward = open_ & (neighbours != prev[:, None])
        dead_end = ~onward.any(1)

        start_back = decide & (self.backtrack == 0) & (self.depth >= 2) & (dead_end | (u[:, 0] < self.p_backtrack))
        self.backtrack = torch.where(start_back, 1 + (u[:, 1] * (self.depth - 1)).long(), self.backtrack)
        back = decide & (self.backtrack > 0) & (self.depth >= 2)
        self.depth = torch.where(back, self.depth - 1, self.depth)
        self.backtrack = torch.where(back, self.backtrack - 1, self.backtrack)

        straight = neighbours == (2 * cur - prev)[:, None]
        score = u[:, 2:6] + self.straight_bias * straight
        choice = torch.where(onward, score, -1.0).argmax(1, keepdim=True)
        push = decide & ~back & ~dead_end
        full = push & (self.depth == S)  # drop the oldest cell to make room
        self.stack = torch.where(full[:, None], self.stack.roll(-1, 1), self.stack)
        self.depth = torch.where(full, S - 1, self.depth)
        slot = self.depth.clamp(max=S - 1)[:, None]
        pushed = torch.where(push[:, None], neighbours.gather(1, choice), self.stack.gather(1, slot))
        self.stack.scatter_(1, slot, pushed)
        self.depth = torch.where(push, self.depth + 1, self.depth)


class PersistentRandomPolicy:
    """Random actions for any Gymnasium action space, each held for a random number of steps.

    Holding actions (geometric durations, mean `mean_hold`) gives trajectories that go somewhere,
    unlike i.i.d. random actions that jitter in place. `act()` returns a numpy array [B, *shape]
    of B independent streams (Discrete spaces are sampled in one call, others one by one).
    """

    def __init__(self, action_space, batch_size: int = 1, seed: int | None = None, mean_hold: float = 4.0):
        if mean_hold < 1:
            raise ValueError(f"mean_hold must be >= 1 step, got {mean_hold}")
        self.space = copy.deepcopy(action_space)  # seeding our copy leaves the env's space alone
        self.space.seed(seed)
        self.rng = np.random.default_rng(seed)
        self.batch_size, self.mean_hold = batch_size, mean_hold
        self.actions = np.stack([self.space.sample() for _ in range(batch_size)])
        self.hold = np.zeros(batch_size, dtype=np.int64)

    def reset(self, indices=None):
        """Draw fresh actions at the next `act()` for all streams (or `indices`)."""
        self.hold[slice(None) if indices is None else indices] = 0

    def act(self) -> np.ndarray:
        expired = np.flatnonzero(self.hold == 0)
        if len(expired):
            if isinstance(self.space, gymnasium.spaces.Discrete):  # one vectorised draw
                new = self.space.start + self.rng.integers(self.space.n, size=len(expired))
            else:
                new = np.stack([self.space.sample() for _ in expired])
            self.actions[expired] = new
            self.hold[expired] = self.rng.geometric(1 / self.mean_hold, size=len(expired))
        self.hold -= 1
        return self.actions.copy()


def frames_since_seen(places: torch.Tensor) -> torch.Tensor:
    """Per frame, how many frames before its visit began its place was last seen; -1 at a first sight.

    places: int64 [B, T], e.g. `world.place()` recorded at every frame (cell + coarse heading).
    A visit is a run of consecutive frames in one place; all its frames share the gap of its first
    (a place in view for 20 frames is not "seen 1 frame ago" 19 times). Returns int64 [B, T].
    """
    places = torch.as_tensor(places)
    if places.dim() != 2:
        raise ValueError(f"places must be [B, T], got shape {tuple(places.shape)}")
    B, T = places.shape
    # Sorted by (place, time), every frame comes right after the previous sighting of its place.
    sorted_places, when = torch.sort(places, dim=1, stable=True)
    seen = torch.zeros(B, T, dtype=torch.bool, device=places.device)
    seen[:, 1:] = sorted_places[:, 1:] == sorted_places[:, :-1]
    since = torch.zeros_like(when)
    since[:, 1:] = when[:, 1:] - when[:, :-1]  # frames since the previous sighting
    visit_start = ~(seen & (since == 1))
    # Each frame inherits the gap of its visit's first frame; then back into time order.
    position = torch.arange(T, device=places.device).expand(B, T)
    first_of_visit = torch.where(visit_start, position, 0).cummax(1).values
    gap = torch.where(seen, since, -1).gather(1, first_of_visit)
    return torch.empty_like(gap).scatter_(1, when, gap)


def revisit_fraction(places: torch.Tensor, gap: int = 100) -> float:
    """Share of frames that show a place last seen at least `gap` frames earlier.

    places: int64 [B, T], as `frames_since_seen`: all frames of a visit count when the place was
    seen before the visit and its previous sighting is >= gap frames before the visit began. First
    visits and returns after a short absence don't count.
    """
    since = frames_since_seen(places)
    return (since >= max(gap, 0)).sum().item() / max(1, since.numel())
