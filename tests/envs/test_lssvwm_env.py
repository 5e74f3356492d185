"""LSSVWM-v0: the Gymnasium contract, seeding, context prefill, snapshot/restore, errors."""

import json
import shutil
import warnings

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from worldsim.checkpoint import CheckpointError
from worldsim.sources import SourceEnv, env_frame, to_frame

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def make(tiny_checkpoint):
    def make(**kwargs):
        return gym.make("LSSVWM-v0", checkpoint=str(tiny_checkpoint), device="cpu", **kwargs)
    return make


@pytest.fixture(autouse=True)
def no_screen(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def test_check_env_and_passive_checker(make):
    env = make(render_mode="rgb_array")
    check_env(env.unwrapped)  # also re-makes the env in each render mode, "human" included
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the passive checker gym.make adds warns on any breach
        obs, info = env.reset(seed=0)
        for action in range(6):
            obs, reward, terminated, truncated, info = env.step(action)
        assert env.render().shape == (16, 16, 3)
    assert env.observation_space == gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)
    assert env.action_space == gym.spaces.Discrete(6)
    assert obs.dtype == np.uint8 and isinstance(reward, float) and terminated is False
    assert info == {"frame_index": 7}
    assert env.unwrapped.last_step_seconds > 0
    env.close()


def test_reset_starts_from_the_source_env_frame(make):
    env = make()
    obs, info = env.reset(seed=3)
    maze = gym.make("worldsim/Maze-v0", maze_size=5, image_size=16)
    truth, _ = maze.reset(seed=3)
    assert info == {"frame_index": 1, "source_seed": 3}
    np.testing.assert_array_equal(obs, truth)


def test_same_seed_same_frames_other_seed_other_frames(make):
    env = make()
    def episode(seed):
        env.reset(seed=seed)
        return np.stack([env.step(a)[0] for a in (1, 1, 2, 5, 0)])
    first, again, other = episode(7), episode(7), episode(8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_truncation_from_max_episode_steps(make):
    env = make(max_episode_steps=3)
    env.reset(seed=0)
    assert [env.step(1)[3] for _ in range(3)] == [False, False, True]


def test_reset_from_user_frames_prefills_the_context(make):
    env = make()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    obs, info = env.reset(seed=0, options={"frames": frames, "actions": [1, 2, 3]})
    np.testing.assert_array_equal(obs, frames[-1])
    assert info == {"frame_index": 4, "source_seed": None}
    # the context matters: other earlier frames, other next frame
    a = env.step(1)[0]
    env.reset(seed=0, options={"frames": np.concatenate([frames[:1] // 2, frames[1:]]), "actions": [1, 2, 3]})
    assert not np.array_equal(a, env.step(1)[0])


@pytest.mark.parametrize("options, message", [
    ({"frames": np.zeros((2, 64, 64, 3), np.uint8), "actions": [1]}, "16, 16, 3"),
    ({"frames": np.zeros((2, 16, 16, 3), np.float32), "actions": [1]}, "uint8"),
    ({"frames": np.zeros((3, 16, 16, 3), np.uint8)}, "2 actions"),
    ({"frames": np.zeros((3, 16, 16, 3), np.uint8), "actions": [1]}, "shape (2,)"),
    ({"frames": np.zeros((3, 16, 16, 3), np.uint8), "actions": [1, 9]}, "entry 1"),
    ({"actions": [1]}, "without options['frames']"),
    ({"frame": np.zeros((1, 16, 16, 3), np.uint8)}, "unknown reset options"),
])
def test_bad_reset_options_are_named(make, options, message):
    env = make()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        env.reset(seed=0, options=options)


@pytest.mark.parametrize("action", [6, -1, 1.5, "1", [1], np.array([1, 2]), True, None])
def test_invalid_actions_raise_a_clear_error(make, action):
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"invalid action.*Discrete\(6\)"):
        env.unwrapped.step(action)


def test_numpy_integer_actions_are_accepted(make):
    env = make()
    env.reset(seed=0)
    a = env.unwrapped.step(np.int64(1))[0]
    env.reset(seed=0)
    np.testing.assert_array_equal(a, env.unwrapped.step(np.array(1, np.int32))[0])


def test_snapshot_restore_gives_identical_frames(make):
    env = make().unwrapped
    env.reset(seed=1)
    for a in (1, 1, 4):
        env.step(a)
    state = env.get_state()
    actions = [1, 5, 5, 2, 0, 1]
    first = np.stack([env.step(a)[0] for a in actions])
    for _ in range(2):  # a state can be restored more than once
        env.set_state(state)
        assert env.frame_index == state.frame_index == 4
        np.testing.assert_array_equal(env.get_state().observation, state.observation)
        np.testing.assert_array_equal(np.stack([env.step(a)[0] for a in actions]), first)
    with pytest.raises(ValueError, match="EnvState"):
        env.set_state({"not": "a state"})


def test_memory_does_not_grow_with_the_frame_index(make):
    """Constant cost per frame, checked through its cause: the simulator's memory has a fixed size."""
    env = make().unwrapped
    env.reset(seed=0)
    for _ in range(9):
        env.step(1)
    assert env.frame_index == 10
    at_10 = env.memory_bytes()
    for t in range(190):
        env.step(t % 6)
    assert env.frame_index == 200
    assert env.memory_bytes() == at_10 > 0


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")  # CPU autocast + RMSNorm
def test_bfloat16_runs_under_autocast(make):
    env = make(dtype="bfloat16").unwrapped
    env.reset(seed=0)
    frames = [env.step(a)[0] for a in (1, 2, 3)]
    assert frames[-1].shape == (16, 16, 3) and env.frame_index == 4
    assert env.simulator.model.pos.dtype == torch.float32  # weights stay float32


def test_sampler_settings_reach_the_simulator(make):
    env = make(sampling_steps=3, context_noise=0.25, commit_in_sampler=True)
    sim = env.unwrapped.simulator
    assert (sim.sampler.steps, sim.sampler.context_noise, sim.sampler.commit_in_sampler) == (3, 0.25, True)
    env.reset(seed=0)
    assert env.step(1)[0].shape == env.observation_space.shape
    env.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": "float64"}, "dtype must be one of"),
    ({"sampling_steps": 0}, "sampling steps must be an int >= 1"),
    ({"render_mode": "ansi"}, "render_mode"),
])
@pytest.mark.filterwarnings("ignore:.*not in the possible render_modes")  # gym.make's, before ours
def test_bad_constructor_arguments_are_named(make, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_record_video_writes_a_readable_mp4(make, tmp_path):
    pytest.importorskip("moviepy", reason="gymnasium's RecordVideo writes through moviepy")
    env = gym.wrappers.RecordVideo(make(render_mode="rgb_array", max_episode_steps=12), str(tmp_path / "videos"),
                                   episode_trigger=lambda episode: True, disable_logger=True)
    env.reset(seed=0)
    truncated = False
    while not truncated:
        *_, truncated, _ = env.step(1)
    env.close()
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1
    frames = iio.imread(videos[0])
    assert frames.shape[1:] == (16, 16, 3)
    # the reset frame and 12 steps were recorded; moviepy 2.x can drop a clip's last frame when
    # it rounds the duration (Zulko/moviepy#2507), which is moviepy's, not the env's
    assert len(frames) in (12, 13)


def test_human_render_mode_opens_an_upscaled_window(make):
    import pygame

    env = make(render_mode="human")
    env.reset(seed=0)
    env.step(1)
    assert pygame.display.get_surface().get_size() == (512, 512)
    env.close()


def test_keys_to_action_drive_gymnasium_play(make):
    import matplotlib
    import pygame

    backend = matplotlib.get_backend()
    with warnings.catch_warnings():  # play's import tries matplotlib's TkAgg backend, absent headless
        warnings.simplefilter("ignore")
        from gymnasium.utils.play import play
    matplotlib.use(backend)  # and may have switched the backend: put it back for later tests

    env = make(render_mode="rgb_array")
    keys = env.unwrapped.get_keys_to_action()
    assert keys[(ord("w"),)] == 1 and keys[(pygame.K_LEFT,)] == 2 and keys[(ord("d"),)] == 3
    assert keys[(ord("q"),)] == keys[tuple(sorted((ord("w"), ord("a"))))] == 4
    assert keys[(ord("e"),)] == keys[tuple(sorted((pygame.K_UP, pygame.K_RIGHT)))] == 5

    class Stop(Exception):
        pass

    steps = []
    def callback(obs_t, obs_tp1, action, reward, terminated, truncated, info):
        steps.append(action)
        if len(steps) == 3:
            raise Stop
    with pytest.raises(Stop):
        play(env, fps=1000, callback=callback, seed=0)
    pygame.quit()
    assert steps == [0, 0, 0]  # no key held: noop


def test_missing_checkpoint_is_named(tmp_path):
    missing = tmp_path / "no-such-checkpoint"
    with pytest.raises(CheckpointError, match="no-such-checkpoint"):
        gym.make("LSSVWM-v0", checkpoint=str(missing), device="cpu")


def test_corrupt_checkpoint_names_the_file(tiny_checkpoint, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    shard = next(broken.glob("model-*.safetensors"))
    shard.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=shard.name):
        gym.make("LSSVWM-v0", checkpoint=str(broken), device="cpu")
    (broken / "config.json").write_text("{ truncated")
    with pytest.raises(CheckpointError, match="config.json"):
        gym.make("LSSVWM-v0", checkpoint=str(broken), device="cpu")


def test_weights_of_another_shape_than_the_config_are_named(tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    config = json.loads((bad / "config.json").read_text())
    config["model"]["width"] *= 2
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"weights do not match the config .*other shapes"):
        gym.make("LSSVWM-v0", checkpoint=str(bad), device="cpu")


def test_action_space_must_match_the_model(tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    config = json.loads((bad / "config.json").read_text())
    config["source"]["action_space"] = {"type": "discrete", "n": 4}
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="n=4.*num_actions=6"):
        gym.make("LSSVWM-v0", checkpoint=str(bad), device="cpu")


def test_source_env_of_a_non_pixel_env_starts_from_its_rendered_frame():
    """A model of CartPole (recorded from render(), its observations are 4 floats) starts its
    episodes from the frame `worldsim record` would have recorded for that seed."""
    source = SourceEnv({"env_id": "CartPole-v1"}, 16)
    first = source.reset(seed=3)
    real = gym.make("CartPole-v1", render_mode="rgb_array")
    real.reset(seed=3)
    np.testing.assert_array_equal(first, to_frame(real.render(), 16))
    frame, _, _, _ = source.step(1)
    assert frame.shape == (16, 16, 3) and frame.dtype == np.uint8
    with pytest.raises(ValueError, match="neither image observations nor an rgb_array render mode"):
        env_frame(gym.make("CartPole-v1"), np.zeros(4, np.float32), 16)


def test_action_space_accepts_the_trainers_spelling(tiny_checkpoint, tmp_path):
    written = tmp_path / "written"
    shutil.copytree(tiny_checkpoint, written)
    config = json.loads((written / "config.json").read_text())
    config["source"]["action_space"] = {"type": "Discrete", "n": 6, "start": 0}  # as the trainer writes it
    (written / "config.json").write_text(json.dumps(config))
    assert gym.make("LSSVWM-v0", checkpoint=str(written), device="cpu").action_space == gym.spaces.Discrete(6)
