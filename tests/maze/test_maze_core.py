"""The batched maze world: determinism, layout, collisions, rewards, rendering, input checks."""

from collections import deque
import math

import numpy as np
import pytest
import torch

from worldsim.maze.core import (AGENT_RADIUS, FORWARD, OBJECT_COLOURS, MazeWorld, generate_layout,
                                hash_uniform)


def random_actions(steps, batch, seed):
    return torch.randint(0, 6, (steps, batch), generator=torch.Generator().manual_seed(seed))


def open_room(world):
    """Make maze 0 a single open room (walls only round the edge); returns it."""
    world.grid[0] = True
    world.grid[0, 1:-1, 1:-1] = False
    return world


def box_in_wall(world):
    """bool [B]: the agent's collision box overlaps a wall square."""
    x, y = world.position[:, 0], world.position[:, 1]
    r = AGENT_RADIUS - 1e-6
    hit = torch.zeros(world.batch_size, dtype=torch.bool)
    for dx in (-r, r):
        for dy in (-r, r):
            hit |= world._wall(torch.floor(y + dy).long(), torch.floor(x + dx).long())
    return hit


def test_same_seeds_give_identical_frames_and_different_seeds_differ():
    a, b = MazeWorld(2), MazeWorld(2)
    fa, fb = a.reset(seeds=[5, 6]), b.reset(seeds=[5, 6])
    assert fa.dtype == torch.uint8 and fa.shape == (2, 64, 64, 3)
    assert torch.equal(fa, fb)
    for actions in random_actions(30, 2, seed=0):
        fa, ra, _ = a.step(actions)
        fb, rb, _ = b.step(actions)
        assert torch.equal(fa, fb) and torch.equal(ra, rb)
    assert not torch.equal(fa[0], fa[1])
    assert not torch.equal(MazeWorld(1).reset(seeds=[7]), MazeWorld(1).reset(seeds=[8]))


def test_a_maze_renders_the_same_in_any_batch():
    big, small = MazeWorld(3), MazeWorld(1)
    big.reset(seeds=[1, 2, 3])
    small.reset(seeds=[2])
    for actions in random_actions(40, 3, seed=1):
        assert torch.equal(big.step(actions)[0][1], small.step(actions[1:2])[0][0])


@pytest.mark.parametrize("size", [9, 15])
def test_layouts_are_connected_mazes_with_outer_walls(size):
    for seed in range(5):
        m = generate_layout(seed, size, 4, 36)
        assert m.grid[0].all() and m.grid[-1].all() and m.grid[:, 0].all() and m.grid[:, -1].all()
        free = {tuple(c) for c in np.argwhere(~m.grid)}
        start = (int(m.start[1]), int(m.start[0]))
        seen, queue = {start}, deque([start])
        while queue:
            r, c = queue.popleft()
            for n in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if n in free and n not in seen:
                    seen.add(n)
                    queue.append(n)
        assert seen == free
        cells = {(int(y), int(x)) for x, y in m.objects} | {start}
        assert len(cells) == 5 and cells <= free  # balls and start on distinct free squares
    assert not np.array_equal(generate_layout(0, size, 4, 36).grid, generate_layout(1, size, 4, 36).grid)


def test_walking_forward_into_walls_never_enters_a_wall():
    world = MazeWorld(4)
    world.reset(seeds=[0, 1, 2, 3])
    world.heading[:] = torch.tensor([0, 9, 22, 31])  # axis-aligned and oblique
    start = world.position.clone()
    for _ in range(80):  # 16 cells of walking: every agent ends up against a wall
        world.move(torch.full((4,), FORWARD))  # move = step without rendering
        assert not box_in_wall(world).any()
    assert (world.position - start).abs().sum(1).min() > 0.25  # at least to the wall of its cell
    before = world.position.clone()
    world.move(torch.full((4,), FORWARD))
    assert torch.allclose(world.position, before, atol=1e-3)  # blocked (or slid into a corner)
    for actions in random_actions(300, 4, seed=2):
        world.move(actions)
        assert not box_in_wall(world).any()


def test_the_agent_slides_along_a_wall():
    world = open_room(MazeWorld(1))
    world.reset(seeds=[0])
    open_room(world)
    world.position[0] = torch.tensor([1.5, 6.5])
    world.heading[0] = 4  # 40 degrees: mostly +x, some +y (towards the bottom wall at y = 8)
    for _ in range(20):
        world.move(torch.tensor([FORWARD]))
    x, y = world.position[0].tolist()
    assert y == pytest.approx(8 - AGENT_RADIUS, abs=1e-3)  # stopped by the wall after ~10 steps ...
    assert x == pytest.approx(1.5 + 20 * 0.2 * math.cos(math.radians(40)), abs=1e-3)  # ... sliding along it


def test_reaching_the_target_gives_one_reward_and_a_new_target():
    world = MazeWorld(1, n_objects=3)
    world.reset(seeds=[0])
    open_room(world)
    world.objects[0] = torch.tensor([[6.5, 4.5], [1.5, 1.5], [7.5, 7.5]])
    world.target[0] = 0
    world.position[0] = torch.tensor([4.5, 4.5])
    world.heading[0] = 0  # facing +x, towards ball 0
    rewards = []
    for _ in range(10):
        _, reward, terminated = world.step(torch.tensor([FORWARD]))
        rewards.append(float(reward[0]))
        assert not terminated.any()
    # After k steps x = 4.5 + 0.2 k; the ball at 6.5 is touched when 2 - 0.2 k < 0.45: k = 8.
    assert rewards == [0.0] * 7 + [1.0] + [0.0] * 2
    assert int(world.target[0]) != 0


def test_border_shows_the_target_colour_and_walls_hide_balls():
    world = MazeWorld(1, n_objects=1)
    world.reset(seeds=[3])
    open_room(world)
    world.objects[0, 0] = torch.tensor([6.5, 4.5])
    world.position[0] = torch.tensor([3.5, 4.5])
    world.heading[0] = 0
    frame = world.render()[0]
    assert frame[0, 0].tolist() == list(OBJECT_COLOURS[0]) and frame[-1, 32].tolist() == list(OBJECT_COLOURS[0])
    ids = world.render_object_ids()[0]
    assert (ids == 0).sum() > 20  # the ball, straight ahead, covers pixels ...
    ball = frame[ids == 0].float()
    assert (ball[:, 0] > 1.5 * ball[:, 1]).all()  # ... in its colour (red, shaded)
    world.grid[0, 4, 5] = True  # a wall square between the agent and the ball
    assert not (world.render_object_ids()[0] == 0).any()


def test_frames_vary_under_random_actions():
    world = MazeWorld(1)
    frames = [world.reset(seeds=[4])]
    for actions in random_actions(60, 1, seed=3):
        frames.append(world.step(actions)[0])
    distinct = {f.numpy().tobytes() for f in frames}
    assert len(distinct) > 30


def test_partial_reset_changes_only_the_given_mazes():
    world = MazeWorld(3)
    before = world.reset(seeds=[1, 2, 3])
    after = world.reset(seeds=[99], indices=[1])
    assert torch.equal(after[0], before[0]) and torch.equal(after[2], before[2])
    assert torch.equal(after[1], MazeWorld(1).reset(seeds=[99])[0])


def test_bad_input_raises_clear_errors():
    world = MazeWorld(2)
    with pytest.raises(RuntimeError, match="reset"):
        world.step(torch.tensor([0, 0]))
    world.reset(seeds=[0, 1])
    with pytest.raises(ValueError, match="invalid action 6 for maze 1"):
        world.step(torch.tensor([0, 6]))
    with pytest.raises(ValueError, match="invalid action -1"):
        world.step(torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="shape"):
        world.step(torch.tensor([1]))
    with pytest.raises(ValueError, match="integer"):
        world.step(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="seeds"):
        world.reset(seeds=[2**32, 0])
    with pytest.raises(ValueError, match="maze_size"):
        MazeWorld(1, maze_size=8)


def test_hash_uniform_is_a_deterministic_uniform_stream():
    seed, counter = torch.arange(1000), torch.arange(1000) * 7
    u = hash_uniform(seed, counter, [0, 1])
    assert u.shape == (1000, 2) and u.min() >= 0 and u.max() < 1
    assert torch.equal(u, hash_uniform(seed, counter, [0, 1]))
    assert (u[:, 0] != u[:, 1]).float().mean() > 0.99
    assert abs(u.mean().item() - 0.5) < 0.03


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_runs_the_same_maze_as_cpu():
    cpu, gpu = MazeWorld(4), MazeWorld(4, device="cuda")
    cpu.reset(seeds=[0, 1, 2, 3])
    gpu.reset(seeds=[0, 1, 2, 3])
    for actions in random_actions(50, 4, seed=5):
        frames_cpu, reward_cpu, _ = cpu.step(actions)
        frames_gpu, reward_gpu, _ = gpu.step(actions.cuda())
        assert torch.equal(cpu.position, gpu.position.cpu()) and torch.equal(reward_cpu, reward_gpu.cpu())
        # Float rounding (e.g. fused multiply-adds) may move an edge by a pixel, no more.
        differ = (frames_cpu.int() - frames_gpu.cpu().int()).abs().amax(-1) > 2
        assert differ.float().mean() < 0.02
