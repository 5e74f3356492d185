"""The examples run as they stand (tiny checkpoint, few steps)."""

import importlib.util
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pygame
import pytest

from worldsim.checkpoint import load_config, resolve
from worldsim.sources import to_frame
from worldsim.data.shards import scan_directory
from worldsim.rollout import upscale

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_branching_planner_records_only_the_chosen_path(tiny_checkpoint, tmp_path, one_thread):
    pytest.importorskip("moviepy", reason="RecordVideo writes mp4 through moviepy (the dev extra)")
    planner = load("branching_planner")
    out = tmp_path / "videos"  # RecordVideo makes it (and warns when it exists)
    planner.main(["--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--steps", "4", "--horizon", "2",
                  "--out", str(out)])
    videos = list(out.glob("*.mp4"))
    assert len(videos) == 1
    assert 4 <= iio.imread(videos[0]).shape[0] <= 5  # reset frame + the 4 chosen steps, none of the branch steps


def test_batched_branches_score_what_one_env_would_see(tiny_checkpoint, one_thread):
    planner = load("branching_planner")
    env = gym.make("LSSVWM-v0", checkpoint=str(tiny_checkpoint), device="cpu")
    branches = gym.make_vec("LSSVWM-v0", num_envs=6, checkpoint=str(tiny_checkpoint), device="cpu")
    env.reset(seed=3)
    env.step(1)
    snapshot = env.unwrapped.get_state()
    scores = planner.imagined_returns(branches, snapshot, horizon=3)
    after_imagining = env.step(2)[0]
    env.reset(seed=3)
    env.step(1)
    assert (after_imagining == env.step(2)[0]).all()  # imagining left the acting env's memory untouched
    one_by_one = []
    for action in range(6):  # the same look-ahead with one env, restored after each branch
        env.unwrapped.set_state(snapshot)
        one_by_one.append(sum(env.step(action)[1] for _ in range(3)))
    np.testing.assert_allclose(scores, one_by_one, rtol=1e-5, atol=1e-6)
    assert np.ptp(scores) > 0  # the actions lead to different predicted rewards: the check is not vacuous


@pytest.fixture
def no_screen(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def frame_after(checkpoint, action, steps):
    """The frame a plain LSSVWM-v0 env shows after `steps` steps of `action` from reset(seed=0)."""
    env = gym.make("LSSVWM-v0", checkpoint=str(checkpoint), device="cpu")
    env.reset(seed=0)
    for _ in range(steps):
        frame = env.step(action)[0]
    return frame


@pytest.mark.parametrize("ui", ["viewer", "gymnasium"])
def test_play_keyboard_steps_with_the_env_key_map(ui, tiny_checkpoint, no_screen, one_thread):
    play_keyboard = load("play_keyboard")
    pygame.display.init()
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=ord("w")))  # W held down from the first frame
    frame = play_keyboard.main(["--ui", ui, "--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--frames", "4",
                                "--fps", "1000"])
    assert frame.shape == (16, 16, 3) and frame.dtype == np.uint8
    # 4 frames with W held = 4 steps of "forward" (action 1), not of noop
    np.testing.assert_array_equal(frame, frame_after(tiny_checkpoint, 1, 4))
    assert not np.array_equal(frame, frame_after(tiny_checkpoint, 0, 4))


def test_record_rollouts_writes_both_videos(tiny_checkpoint, tmp_path, one_thread):
    pytest.importorskip("moviepy", reason="RecordVideo writes mp4 through moviepy (the dev extra)")
    record_rollouts = load("record_rollouts")
    wrapper_video, cli_video = record_rollouts.main(["--checkpoint", str(tiny_checkpoint), "--steps", "4",
                                                     "--out", str(tmp_path / "videos"), "--device", "cpu"])
    # RecordVideo: the reset frame + 4 steps, at the model's 16x16 (moviepy 2.2 drops the last frame
    # of some lengths, 6 or 7 at 15 fps among them; 5 frames are written whole)
    assert iio.imread(wrapper_video).shape == (5, 16, 16, 3)
    # worldsim rollout --twin: the 4 generated frames, model | 2-pixel gap | true maze, upscaled 16x to 256
    assert iio.imread(cli_video).shape == (4, 256, (16 + 2 + 16) * 16, 3)


def test_own_environment_records_trains_and_plays_back_cartpole(tmp_path, no_screen, one_thread):
    own_environment = load("own_environment")
    out = tmp_path / "cartpole"
    args = ["--episodes", "6", "--steps", "30", "--size", "16", "--train-steps", "2", "--playback-steps", "6",
            "--out", str(out), "--device", "cpu"]
    video = own_environment.main(args)

    shards = scan_directory(out / "data")
    assert sorted(s.episode_id for s in shards) == list(range(6))
    assert {(s.env_id, s.frame_size) for s in shards} == {("CartPole-v1", 16)}
    checkpoint = resolve(out / "run")
    assert checkpoint.name == "step-0000002" and load_config(checkpoint)["source"]["env_id"] == "CartPole-v1"
    env = gym.make("LSSVWM-v0", checkpoint=str(out / "run"), device="cpu")
    assert env.action_space == gym.spaces.Discrete(2) and env.observation_space.shape == (16, 16, 3)
    # 6 frames of model | 2-pixel gap | real CartPole, upscaled 16x to 256
    frames = iio.imread(video)
    assert frames.shape == (6, 256, (16 + 2 + 16) * 16, 3)
    real = gym.make("CartPole-v1", render_mode="rgb_array")
    real.action_space.seed(0)
    real.reset(seed=0)
    real.step(real.action_space.sample())
    first_real = upscale(to_frame(real.render(), 16), 16)
    assert np.abs(frames[0, :, -256:].astype(int) - first_real).mean() < 8  # up to H.264's losses

    with pytest.raises(SystemExit):  # a second run would append to the data and mix two trainings
        own_environment.main(args)
