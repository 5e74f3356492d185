"""worldsim/Maze-v0 vectorised: one MazeWorld batch equal to N MazeEnvs; NEXT_STEP autoreset."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from envs.maze_vector import MazeVectorEnv

pytestmark = pytest.mark.usefixtures("one_thread")

N, K = 3, 4  # envs, steps per episode
SMALL = {"maze_size": 5, "image_size": 16}


def test_make_vec_uses_the_batched_vector_entry_point():
    envs = gym.make_vec("worldsim/Maze-v0", num_envs=N, **SMALL)
    assert isinstance(envs.unwrapped, MazeVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.unwrapped.max_episode_steps == 1000  # passed on by make_vec from the registration
    assert envs.single_observation_space == gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)
    assert envs.single_action_space == gym.spaces.Discrete(6)


def test_env_i_is_maze_env_with_seed_s_plus_i_across_autoresets():
    envs = gym.make_vec("worldsim/Maze-v0", num_envs=N, max_episode_steps=K, **SMALL)
    singles = [gym.make("worldsim/Maze-v0", max_episode_steps=K, **SMALL) for _ in range(N)]
    obs, info = envs.reset(seed=5)
    for i, single in enumerate(singles):
        frame, single_info = single.reset(seed=5 + i)
        np.testing.assert_array_equal(obs[i], frame)
        assert info["maze_seed"][i] == single_info["maze_seed"] and info["_maze_seed"][i]
    rng = np.random.default_rng(0)
    restarted = False
    for t in range(2 * K + 2):
        actions = rng.integers(6, size=N)
        obs, reward, terminated, truncated, info = envs.step(actions)
        for i, single in enumerate(singles):
            if t % (K + 1) == K:  # the step after truncation: a new episode, the action ignored
                frame, single_info = single.reset()
                assert reward[i] == 0.0 and not truncated[i]
                restarted = True
            else:
                frame, r, _, trunc, single_info = single.step(int(actions[i]))
                assert reward[i] == r and truncated[i] == trunc
            assert not terminated[i]
            np.testing.assert_array_equal(obs[i], frame)
            assert info["target"][i] == single_info["target"] and info["maze_seed"][i] == single_info["maze_seed"]
            np.testing.assert_allclose(info["position"][i], single_info["position"])
            np.testing.assert_array_equal(info["target_colour"][i], single_info["target_colour"])
    assert restarted


def test_reset_mask_restarts_only_those_envs():
    envs = gym.make_vec("worldsim/Maze-v0", num_envs=N, **SMALL)
    envs.reset(seed=0)
    before, *_ = envs.step(np.ones(N, dtype=np.int64))
    obs, info = envs.reset(seed=[None, 9, None], options={"reset_mask": np.array([False, True, False])})
    np.testing.assert_array_equal(obs[[0, 2]], before[[0, 2]])
    np.testing.assert_array_equal(obs[1], gym.make("worldsim/Maze-v0", **SMALL).reset(seed=9)[0])
    np.testing.assert_array_equal(info["_maze_seed"], [False, True, False])


def test_bad_actions_and_options_are_refused():
    envs = MazeVectorEnv(N, **SMALL)
    with pytest.raises(RuntimeError, match="reset"):
        envs.step(np.zeros(N, dtype=np.int64))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action 6"):
        envs.step(np.array([0, 6, 0]))
    with pytest.raises(ValueError, match="integer"):
        envs.step(np.zeros(N))
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.zeros(N, dtype=bool)})
    with pytest.raises(ValueError, match="unknown reset options"):
        envs.reset(options={"frames": None})
