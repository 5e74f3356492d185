"""worldsim.rl.SB3VecEnv: Gymnasium vector envs (NEXT_STEP autoreset) as Stable-Baselines3 VecEnvs."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

pytest.importorskip("stable_baselines3", reason="worldsim.rl needs the rl extra (stable-baselines3)")
from stable_baselines3.common.vec_env import VecMonitor  # noqa: E402

from worldsim.rl import SB3VecEnv, split_info  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

N, K = 2, 3  # envs, steps per episode
MAZE = {"maze_size": 5, "image_size": 16}  # the tiny checkpoint's source, so both envs have 16x16 frames


@pytest.fixture(params=[("worldsim/Maze-v0", "sync"), ("worldsim/Maze-v0", "vector_entry_point"),
                        ("LSSVWM-v0", "vector_entry_point")], ids=lambda p: "-".join(p))
def envs(request, tiny_checkpoint):
    """(vector env of N envs truncated after K steps, the same env as N single envs): Gymnasium's
    SyncVectorEnv and worldsim's batched vector envs."""
    env_id, mode = request.param
    kwargs = {"max_episode_steps": K}
    kwargs.update(MAZE if env_id == "worldsim/Maze-v0" else {"checkpoint": str(tiny_checkpoint), "device": "cpu"})
    vector = gym.make_vec(env_id, num_envs=N, vectorization_mode=mode, **kwargs)
    return vector, [gym.make(env_id, **kwargs) for _ in range(N)]


def test_done_envs_restart_in_the_same_step_and_no_action_is_dropped(envs):
    """SB3's contract, step for step against single envs: a done env returns the first frame of its
    next episode, its last frame in `terminal_observation`; the next action acts on the new episode
    (under NEXT_STEP it would be ignored, with reward 0, if the adapter passed the flags through)."""
    vector, singles = envs
    env = SB3VecEnv(vector)
    env.seed(7)
    obs = env.reset()
    for i, single in enumerate(singles):
        np.testing.assert_array_equal(obs[i], single.reset(seed=7 + i)[0])
    rng = np.random.default_rng(0)
    for t in range(2 * K + 1):
        actions = rng.integers(6, size=N)
        obs, reward, done, infos = env.step(actions)
        assert reward.dtype == np.float32 and done.dtype == np.bool_
        for i, single in enumerate(singles):
            frame, r, terminated, truncated, _ = single.step(int(actions[i]))
            assert reward[i] == pytest.approx(r, abs=1e-6)
            assert done[i] == (t % K == K - 1) == truncated and not terminated
            assert infos[i]["TimeLimit.truncated"] == truncated
            if done[i]:
                np.testing.assert_array_equal(infos[i]["terminal_observation"], frame)
                frame, _ = single.reset()
            else:
                assert "terminal_observation" not in infos[i]
            np.testing.assert_array_equal(obs[i], frame)


def test_vec_monitor_counts_whole_episodes(envs):
    vector, _ = envs
    env = VecMonitor(SB3VecEnv(vector))
    env.reset()
    total = np.zeros(N)
    for _ in range(K):
        _, reward, done, infos = env.step(np.ones(N, dtype=np.int64))
        total += reward
    assert done.all()
    for i in range(N):
        assert infos[i]["episode"]["l"] == K
        assert infos[i]["episode"]["r"] == pytest.approx(total[i], abs=1e-4)


def test_spaces_and_attributes_come_from_the_vector_env(envs):
    vector, _ = envs
    env = SB3VecEnv(vector)
    assert env.num_envs == N
    assert env.observation_space == gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)
    assert env.action_space == gym.spaces.Discrete(6)
    assert env.get_attr("num_envs") == [N, N]
    assert env.env_is_wrapped(gym.Wrapper) == [False, False]


def test_same_step_autoreset_is_refused():
    vector = gym.make_vec("worldsim/Maze-v0", num_envs=N, vectorization_mode="sync",
                          vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **MAZE)
    with pytest.raises(ValueError, match="NEXT_STEP or DISABLED"):
        SB3VecEnv(vector)


def test_split_info_follows_the_masks_into_nested_dicts():
    info = {"frame_index": np.array([4, 5]), "_frame_index": np.array([True, True]),
            "source_seed": np.array([-1, 9]), "_source_seed": np.array([False, True]),
            "episode": {"r": np.array([1.5, 0.0]), "_r": np.array([True, False])},
            "_episode": np.array([True, False])}
    assert split_info(info, 2) == [{"frame_index": 4, "episode": {"r": 1.5}},
                                   {"frame_index": 5, "source_seed": 9}]
