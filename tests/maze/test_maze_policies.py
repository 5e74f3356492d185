"""Exploration policies and the revisit measure."""

import gymnasium
import numpy as np
import torch

from worldsim.maze.core import N_ACTIONS, MazeWorld
from worldsim.maze.policies import ExplorePolicy, PersistentRandomPolicy, frames_since_seen, revisit_fraction


def rollout(world, act, steps):
    """Move (no rendering) for `steps` steps; returns places, cells, actions: int64 [B, steps]."""
    places, cells, actions = [], [], []
    for _ in range(steps):
        places.append(world.place())
        cells.append(world.cell())
        actions.append(act())
        world.move(actions[-1])
    return torch.stack(places, 1), torch.stack(cells, 1), torch.stack(actions, 1)


def test_explorer_travels_and_comes_back():
    world = MazeWorld(8, maze_size=9)
    world.reset(seeds=list(range(8)))
    places, cells, actions = rollout(world, ExplorePolicy(world).act, 1000)
    free = (~world.grid).flatten(1).sum(1)
    coverage = torch.tensor([len(set(c.tolist())) for c in cells]) / free
    assert coverage.mean() > 0.6  # it travels ...
    explore = revisit_fraction(places)
    world.reset(seeds=list(range(8)))
    random = PersistentRandomPolicy(gymnasium.spaces.Discrete(N_ACTIONS), 8, seed=0)
    random_places, _, _ = rollout(world, lambda: torch.from_numpy(random.act()), 1000)
    assert explore > 0.3 and explore > 1.3 * revisit_fraction(random_places)  # ... and comes back
    assert set(actions.unique().tolist()) == set(range(N_ACTIONS))


def test_explorer_trajectory_depends_only_on_the_maze_seed():
    pair, single = MazeWorld(2), MazeWorld(1)
    pair.reset(seeds=[10, 11])
    single.reset(seeds=[11])
    _, _, pair_actions = rollout(pair, ExplorePolicy(pair).act, 300)
    _, _, single_actions = rollout(single, ExplorePolicy(single).act, 300)
    assert torch.equal(pair_actions[1], single_actions[0])
    assert not torch.equal(pair_actions[0], pair_actions[1])


def test_revisit_fraction_counts_whole_visits_after_a_long_absence():
    # place 0 for 10 frames, place 1 for 200, place 0 again for 10, place 2 for 30.
    places = torch.tensor([[0] * 10 + [1] * 200 + [0] * 10 + [2] * 30])
    assert revisit_fraction(places, gap=100) == 10 / 250
    assert revisit_fraction(places, gap=202) == 0  # absent for 201 frames only
    short = torch.tensor([[0] * 10 + [1] * 50 + [0] * 10])
    assert revisit_fraction(short, gap=100) == 0


def test_frames_since_seen_dates_each_frame_by_its_visits_first_frame():
    # places: a, a, b, a, c, b, b -> first sights; a visit's frames share the gap of its first frame
    assert frames_since_seen(torch.tensor([[5, 5, 7, 5, 9, 7, 7]]))[0].tolist() == [-1, -1, -1, 2, -1, 3, 3]


def test_persistent_random_policy_holds_actions_in_any_space():
    policy = PersistentRandomPolicy(gymnasium.spaces.Discrete(3, start=2), batch_size=4, seed=0, mean_hold=5)
    actions = np.stack([policy.act() for _ in range(200)])  # [200, 4]
    assert set(np.unique(actions)) == {2, 3, 4}
    changes = (actions[1:] != actions[:-1]).mean()
    assert 0.05 < changes < 0.4  # held ~5 steps, not i.i.d. (which changes 2/3 of the time)
    again = PersistentRandomPolicy(gymnasium.spaces.Discrete(3, start=2), batch_size=4, seed=0, mean_hold=5)
    assert np.array_equal(actions, np.stack([again.act() for _ in range(200)]))

    box = gymnasium.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    sample = PersistentRandomPolicy(box, batch_size=3, seed=1).act()
    assert sample.shape == (3, 2) and sample.dtype == np.float32 and np.abs(sample).max() <= 1
