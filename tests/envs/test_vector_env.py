"""LSSVWM-v0 vectorised: one batch through one simulator, equal to N single envs; NEXT_STEP autoreset."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from envs.lssvwm_vector import LSSVWMVectorEnv
from worldsim.checkpoint import save_model
from worldsim.config import preset
from worldsim.model import LSSVWM

pytestmark = pytest.mark.usefixtures("one_thread")

N = 3


@pytest.fixture
def make_vec(tiny_checkpoint):
    def make_vec(**kwargs):
        return gym.make_vec("LSSVWM-v0", num_envs=N, checkpoint=str(tiny_checkpoint), device="cpu", **kwargs)
    return make_vec


@pytest.fixture
def make(tiny_checkpoint):
    def make(**kwargs):
        return gym.make("LSSVWM-v0", checkpoint=str(tiny_checkpoint), device="cpu", **kwargs)
    return make


def test_make_vec_uses_the_batched_vector_entry_point(make_vec):
    for mode in (None, "vector_entry_point"):  # the default mode when a vector entry point exists
        envs = make_vec(vectorization_mode=mode)
        assert isinstance(envs.unwrapped, LSSVWMVectorEnv)
        assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        assert envs.unwrapped.max_episode_steps == 1000  # passed on by make_vec from the registration
        assert envs.single_action_space == gym.spaces.Discrete(6)
        assert envs.observation_space.shape == (N, 16, 16, 3)
        obs, info = envs.reset(seed=0)
        assert obs.shape == (N, 16, 16, 3) and obs.dtype == np.uint8
        obs, reward, terminated, truncated, info = envs.step(np.array([1, 2, 3]))
        assert reward.shape == terminated.shape == truncated.shape == (N,)
        np.testing.assert_array_equal(info["frame_index"], [2, 2, 2])
        assert info["_frame_index"].all()
        envs.close()


def test_compile_reaches_the_batched_simulator(make_vec):
    """compile=True: the vector env's simulator steps through torch.compile's wrapper of its model
    (built lazily: nothing is compiled until a step runs)."""
    sim = make_vec(compile=True).unwrapped.simulator
    assert isinstance(sim.step_model, torch._dynamo.eval_frame.OptimizedModule)
    assert sim.step_model._orig_mod is sim.model
    plain = make_vec().unwrapped.simulator
    assert plain.step_model is plain.model


def test_vector_env_equals_single_envs(make_vec, make):
    actions = np.random.default_rng(0).integers(0, 6, (8, N))
    envs = make_vec()
    first, _ = envs.reset(seed=10)
    frames = [first] + [envs.step(a)[0] for a in actions]
    for i in range(N):
        env = make()
        obs, info = env.reset(seed=10 + i)
        single = [obs] + [env.step(int(a))[0] for a in actions[:, i]]
        np.testing.assert_array_equal(np.stack(single), np.stack(frames)[:, i])


def test_next_step_autoreset_restarts_only_the_envs_that_ended(make_vec, make):
    envs = make_vec(max_episode_steps=2)
    envs.reset(seed=0)
    envs.step(np.array([1, 1, 1]))
    # restart env 0 alone: its episode now ends one step after the others'
    obs, info = envs.reset(options={"reset_mask": np.array([True, False, False])})
    np.testing.assert_array_equal(info["_source_seed"], [True, False, False])
    _, _, _, truncated, _ = envs.step(np.array([1, 1, 1]))
    np.testing.assert_array_equal(truncated, [False, True, True])
    obs, reward, terminated, truncated, info = envs.step(np.array([1, 1, 1]))
    # envs 1, 2 ended last step: this step ignores their actions and returns their next start
    np.testing.assert_array_equal(truncated, [True, False, False])
    np.testing.assert_array_equal(terminated, [False, False, False])
    np.testing.assert_array_equal(reward[1:], [0.0, 0.0])
    np.testing.assert_array_equal(info["frame_index"], [3, 1, 1])
    # each restart is what a single env seeded the same way gives on its next reset()
    for i in (1, 2):
        env = make()
        env.reset(seed=i)
        np.testing.assert_array_equal(obs[i], env.reset()[0])
    obs, _, _, truncated, info = envs.step(np.array([2, 2, 2]))
    np.testing.assert_array_equal(info["frame_index"], [1, 2, 2])  # env 0 restarted now
    np.testing.assert_array_equal(truncated, [False, False, False])


def test_vector_reset_from_user_frames(make_vec):
    envs = make_vec()
    frames = np.random.default_rng(0).integers(0, 256, (N, 3, 16, 16, 3), dtype=np.uint8)
    obs, info = envs.reset(seed=0, options={"frames": frames, "actions": np.ones((N, 2), np.int64)})
    np.testing.assert_array_equal(obs, frames[:, -1])
    np.testing.assert_array_equal(info["frame_index"], [3, 3, 3])
    with pytest.raises(ValueError, match="16, 16, 3"):
        envs.reset(options={"frames": np.zeros((N, 1, 8, 8, 3), np.uint8)})


@pytest.mark.parametrize("actions, message", [
    (np.array([1, 2]), r"shape \(3,\)"),
    (np.array([1, 2, 6]), r"env 2: invalid action"),
    (np.array([1.0, 2.0, 3.0]), r"env 0: invalid action"),
    (1, r"shape \(3,\)"),
])
def test_invalid_vector_actions_are_named(make_vec, actions, message):
    envs = make_vec()
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        envs.step(actions)


def test_vector_snapshot_restore(make_vec):
    envs = make_vec(max_episode_steps=2)  # the replay crosses an autoreset
    envs.reset(seed=0)
    envs.step(np.array([1, 2, 3]))
    state = envs.unwrapped.get_state()
    actions = np.array([[1, 1, 1], [4, 5, 0], [2, 2, 2]])
    first = np.stack([envs.step(a)[0] for a in actions])
    envs.unwrapped.set_state(state)
    np.testing.assert_array_equal(np.stack([envs.step(a)[0] for a in actions]), first)


def test_branches_continue_a_single_env_snapshot(make_vec, make):
    env = make()
    env.reset(seed=4)
    for a in (1, 5, 2):
        env.step(a)
    snapshot = env.unwrapped.get_state()
    envs = make_vec()
    obs = envs.unwrapped.branch(snapshot)
    np.testing.assert_array_equal(obs, np.repeat(snapshot.observation[None], N, axis=0))
    actions = np.random.default_rng(1).integers(0, 6, (4, N))
    steps = [envs.step(a) for a in actions]
    np.testing.assert_array_equal(steps[-1][4]["frame_index"], [snapshot.frame_index + 4] * N)
    for i in range(N):  # branch i is the future the single env shows for branch i's actions
        env.unwrapped.set_state(snapshot)
        single = [env.step(int(a)) for a in actions[:, i]]
        # the same noise and memory; only float rounding differs between batch sizes 3 and 1
        diff = np.abs(np.stack([s[0][i] for s in steps]).astype(int) - np.stack([s[0] for s in single]))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01
        np.testing.assert_allclose([s[1][i] for s in steps], [s[1] for s in single], rtol=1e-6, atol=1e-6)


def test_branch_takes_only_a_single_env_snapshot(make_vec):
    envs = make_vec()
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="EnvState from LSSVWMEnv.get_state"):
        envs.unwrapped.branch(envs.unwrapped.get_state())


def test_a_valid_batch_of_actions_is_checked_at_once_and_an_invalid_one_named(make_vec):
    """All valid: one array check and the int64 actions the simulator takes; any invalid: the env
    by env check names the first."""
    envs = make_vec()
    envs.reset(seed=0)
    assert envs.unwrapped._check_actions(np.array([1, 2, 5], np.int32)).dtype == np.int64
    for bad, env in ((np.array([True, False, True]), 0), (np.array([0, -1, 2]), 1)):
        with pytest.raises(ValueError, match=f"env {env}: invalid action"):
            envs.step(bad)


@pytest.fixture
def continuous_checkpoint(tmp_path):
    """A tiny model of 2-dimensional continuous actions in [-1, 1] and no source env."""
    torch.manual_seed(0)
    model = LSSVWM(preset("tiny", action_type="continuous", action_dim=2))
    source = {"action_space": {"type": "box", "low": [-1.0, -1.0], "high": [1.0, 1.0], "shape": [2]}}
    return save_model(tmp_path / "continuous", model, source, {"steps": 1, "context_noise": 0.0})


def test_continuous_vector_actions_are_checked_as_a_batch_and_named_when_invalid(continuous_checkpoint):
    envs = gym.make_vec("LSSVWM-v0", num_envs=N, checkpoint=str(continuous_checkpoint), device="cpu")
    frames = np.random.default_rng(0).integers(0, 256, (N, 1, 16, 16, 3), dtype=np.uint8)
    envs.reset(seed=0, options={"frames": frames})
    checked = envs.unwrapped._check_actions(np.array([[0.5, -1.0], [1, 0], [0.0, 0.25]]))
    assert checked.dtype == np.float32 and checked.shape == (N, 2)
    assert envs.step(checked)[0].shape == (N, 16, 16, 3)
    for bad, env in ((np.array([[0, 0], [0, 1.5], [0, 0]]), 1), (np.array([[0, 0], [0, 0], [np.nan, 0]]), 2)):
        with pytest.raises(ValueError, match=f"env {env}: invalid action"):
            envs.step(bad)
