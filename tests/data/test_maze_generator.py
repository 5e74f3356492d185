"""The on-the-fly window generator: shapes, Gym alignment, episodes continuing across windows."""

import pytest
import torch

from worldsim.data.generator import MazeWindowGenerator
from worldsim.maze.core import TRAIN_SEED_LIMIT, MazeWorld


def make(**kw):
    args = dict(batch_size=2, window=6, seed=0, image_size=32, episode_length=15)
    return MazeWindowGenerator(**{**args, **kw})


def test_window_shapes_and_dtypes():
    batch = make().next_window()
    assert batch.frames.shape == (2, 6, 32, 32, 3) and batch.frames.dtype == torch.uint8
    assert batch.actions.shape == (2, 6) and batch.actions.dtype == torch.int64
    assert batch.rewards.shape == (2, 6) and batch.rewards.dtype == torch.float32
    assert batch.terminated.shape == (2, 6) and batch.terminated.dtype == torch.bool
    assert batch.first.tolist() == [True, True]
    assert ((batch.actions >= 0) & (batch.actions < 6)).all() and not batch.terminated.any()


def test_windows_follow_gym_alignment_and_continue_the_episode():
    gen = make()
    w1, w2 = gen.next_window(), gen.next_window()
    assert w2.first.tolist() == [False, False]
    seeds = gen.world.seed.tolist()
    assert all(0 <= s < TRAIN_SEED_LIMIT for s in seeds)
    # Replaying the actions in a fresh world gives frames[t + 1] from actions[t], across the boundary.
    world = MazeWorld(2, image_size=32)
    frame = world.reset(seeds=seeds)
    actions = torch.cat([w1.actions, w2.actions], 1)
    frames = torch.cat([w1.frames, w2.frames], 1)
    rewards = torch.cat([w1.rewards, w2.rewards], 1)
    for t in range(12):
        assert torch.equal(frames[:, t], frame)
        frame, reward, _ = world.step(actions[:, t])
        assert torch.equal(rewards[:, t], reward)


def test_new_episodes_start_only_at_window_boundaries():
    gen = make()  # episodes of 15 steps, windows of 6: 6 + 6 fit, a third window would straddle
    firsts, seeds = [], []
    for _ in range(5):
        firsts.append(bool(gen.next_window().first[0]))
        seeds.append(gen.world.seed.tolist())
    assert firsts == [True, False, True, False, True]
    assert seeds[0] == seeds[1] != seeds[2] == seeds[3] != seeds[4]
    fresh = MazeWorld(2, image_size=32).reset(seeds=seeds[4])
    gen2 = make()
    for _ in range(4):
        gen2.next_window()
    assert torch.equal(gen2.next_window().frames[:, 0], fresh)  # the window starts at the reset frame


def test_window_length_can_change_between_calls():
    gen = make(episode_length=40)
    assert gen.next_window(4).frames.shape[1] == 4
    batch = gen.next_window(10)
    assert batch.frames.shape[1] == 10 and not batch.first.any()
    with pytest.raises(ValueError, match="window"):
        gen.next_window(41)


def test_same_seed_same_data_and_random_policy():
    a, b = make(policy="random").next_window(), make(policy="random").next_window()
    assert torch.equal(a.frames, b.frames) and torch.equal(a.actions, b.actions)
    assert not torch.equal(make(seed=1).next_window().frames, make(seed=0).next_window().frames)
    with pytest.raises(ValueError, match="policy"):
        make(policy="greedy")
