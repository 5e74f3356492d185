"""`worldsim/Maze-v0`: the Gymnasium contract, determinism, checked actions, keyboard play mapping."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import worldsim  # noqa: F401  registers the ids
from envs.maze import MazeEnv
from worldsim.maze.core import MazeWorld


@pytest.fixture(autouse=True)
def headless(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def test_check_env_passes_without_warnings():
    env = gym.make("worldsim/Maze-v0", render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)  # also builds the env in "human" mode through its spec
    env.close()


def test_same_seed_same_frames_different_seed_different_frames():
    a, b = MazeEnv(), MazeEnv()
    obs_a, info_a = a.reset(seed=3)
    obs_b, info_b = b.reset(seed=3)
    assert np.array_equal(obs_a, obs_b) and info_a == info_b
    for action in [1, 1, 2, 5, 4, 3, 0, 1]:
        obs_a, reward_a, term_a, trunc_a, _ = a.step(action)
        obs_b, reward_b, *_ = b.step(action)
        assert np.array_equal(obs_a, obs_b) and reward_a == reward_b
        assert term_a is False and trunc_a is False
    assert not np.array_equal(a.reset(seed=4)[0], b.reset(seed=3)[0])


def test_observations_are_the_maze_worlds_frames():
    env = MazeEnv(maze_size=11, image_size=32)
    obs, info = env.reset(seed=0)
    assert obs.shape == (32, 32, 3) and obs.dtype == np.uint8 and obs in env.observation_space
    world = MazeWorld(1, maze_size=11, image_size=32)
    assert np.array_equal(world.reset(seeds=[info["maze_seed"]])[0].numpy(), obs)
    assert np.array_equal(env.step(1)[0], world.step(torch.tensor([1]))[0][0].numpy())


def test_invalid_actions_raise_value_error_naming_the_action():
    env = MazeEnv()
    env.reset(seed=0)
    for bad in (6, -1, 1.5, "1", None):
        with pytest.raises(ValueError, match=f"invalid action {bad!r}"):
            env.step(bad)
    env.step(np.int64(2))  # numpy ints are fine


def test_frames_vary_under_random_actions():
    env = gym.make("worldsim/Maze-v0")
    env.reset(seed=1)
    env.action_space.seed(1)
    frames = {env.step(env.action_space.sample())[0].tobytes() for _ in range(40)}
    assert len(frames) > 20


def test_time_limit_truncates_and_render_modes_work():
    env = gym.make("worldsim/Maze-v0", render_mode="rgb_array", max_episode_steps=3)
    obs, _ = env.reset(seed=0)
    assert np.array_equal(env.render(), obs)
    truncated = [env.step(0)[3] for _ in range(3)]
    assert truncated == [False, False, True]
    human = gym.make("worldsim/Maze-v0", render_mode="human")
    human.reset(seed=0)
    human.step(1)
    human.close()
    with pytest.raises(ValueError, match="render_mode"):
        MazeEnv(render_mode="video")


def test_keys_to_action_is_a_valid_play_mapping():
    import pygame

    keys = MazeEnv().get_keys_to_action()
    assert keys[(pygame.K_UP,)] == 1 and keys[(ord("a"),)] == 2 and keys[(pygame.K_UP, pygame.K_RIGHT)] == 5
    assert all(isinstance(k, tuple) and all(isinstance(c, int) for c in k) for k in keys)
    assert set(keys.values()) == {1, 2, 3, 4, 5}
