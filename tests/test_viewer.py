"""`worldsim play`: the game loop driven directly, and the pygame window under SDL's dummy driver."""

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest

from worldsim import cli
from worldsim.sources import SourceEnv
from worldsim.viewer import Game

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def no_screen(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


@pytest.fixture
def game(tiny_checkpoint, tmp_path):
    env = gym.make("LSSVWM-v0", checkpoint=str(tiny_checkpoint), device="cpu").unwrapped
    game = Game(env, SourceEnv(env.source.source, 16), seed=0, record_dir=tmp_path / "videos", record_scale=2)
    yield game
    game.close()


def test_game_steps_pauses_resets_and_turns_the_sampler_knob(game):
    for _ in range(3):
        game.tick(1)
    assert game.sim_env.frame_index == 4 and game.frames_generated == 3
    game.tick(1, ["pause"])
    game.tick(1)
    assert game.paused and game.sim_env.frame_index == 4  # paused: nothing generated
    game.tick(1, ["pause", "more_steps"])
    assert game.sim_env.frame_index == 5 and game.sim_env.sampling_steps == 3
    for _ in range(5):
        game.command("fewer_steps")
    assert game.sim_env.sampling_steps == 1  # never below one
    game.tick(0, ["reset"])
    assert game.sim_env.frame_index == 2  # a new episode, then one step
    assert game.view().shape == (16, 16 + 2 + 16, 3)  # model | gap | true env
    hud = "\n".join(game.hud())
    assert "frame 2" in hud and "sampler steps 1" in hud and "commit with next frame" in hud and "MiB" in hud
    game.command("commit_mode")
    assert game.sim_env.simulator.sampler.commit_in_sampler and "commit in sampler" in "\n".join(game.hud())
    game.tick(1)
    assert game.sim_env.frame_index == 3
    with pytest.raises(ValueError, match="unknown command"):
        game.command("jump")


def test_twin_starts_where_the_model_starts(game):
    game.reset(seed=4)
    np.testing.assert_array_equal(game.obs, game.twin_obs)


def test_recording_toggle_writes_an_mp4(game, tmp_path):
    game.tick(1, ["record"])
    for _ in range(4):
        game.tick(1)
    path = game.recording_path
    game.command("record")
    frames = iio.imread(path)
    assert frames.shape == (5, 32, 68, 3)  # 5 frames of (16 | 2 | 16) x 16 pixels, upscaled 2x


def test_play_runs_n_frames_headless(tiny_checkpoint, tmp_path, capsys):
    code = cli.main(["play", "--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--max-frames", "5",
                     "--fps", "1000", "--twin", "--record-dir", str(tmp_path)])
    assert code == 0
    assert "5 frames" in capsys.readouterr().out
