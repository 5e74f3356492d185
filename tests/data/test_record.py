"""`worldsim record`: any Gymnasium env with pixels -> shards the reader loads."""

import json

import gymnasium as gym
import numpy as np
import pytest

from worldsim.cli import main
from worldsim.sources import to_frame
from worldsim.data.shards import ShardWindowDataset, read_shard, scan_directory


@pytest.fixture(autouse=True)
def headless(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def test_record_cartpole_from_its_rgb_array_render(tmp_path):
    out = tmp_path / "cartpole"
    assert main(["record", "--env", "CartPole-v1", "--episodes", "2", "--steps", "30", "--out", str(out),
                 "--size", "32", "--seed", "0"]) == 0
    infos = scan_directory(out)
    assert sorted(i.episode_id for i in infos) == [0, 1] and all(i.env_id == "CartPole-v1" for i in infos)
    shard = read_shard(infos[0].path)
    T = shard.info.length
    assert 1 <= T <= 30 and shard.frames.shape == (T, 32, 32, 3)
    assert shard.frames.float().std() > 10  # a picture of the cart, not a blank
    assert set(shard.actions.tolist()) <= {0, 1} and shard.info.action_space["n"] == 2
    assert shard.terminated[:-1].sum() == 0
    # The same command records the same data; the recorded frames are what the env rendered.
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    assert np.array_equal(shard.frames[0].numpy(), to_frame(env.render(), 32))
    assert json.loads((out / "dataset.json").read_text())["env_id"] == "CartPole-v1"


def test_record_maze_with_the_explorer(tmp_path):
    out = tmp_path / "maze"
    assert main(["record", "--env", "worldsim/Maze-v0", "--episodes", "1", "--steps", "40", "--out", str(out),
                 "--policy", "explore", "--seed", "3"]) == 0
    shard = read_shard(scan_directory(out)[0].path)
    assert shard.frames.shape == (40, 64, 64, 3)
    env = gym.make("worldsim/Maze-v0")
    first, _ = env.reset(seed=3)
    assert np.array_equal(shard.frames[0].numpy(), first)
    for action in shard.actions[:-1]:
        frame = env.step(int(action))[0]
    assert np.array_equal(shard.frames[-1].numpy(), frame)  # actions and frames line up
    assert len(ShardWindowDataset(out, window=16)) == 40 - 16 + 1


def test_record_box_actions(tmp_path):
    out = tmp_path / "pendulum"
    assert main(["record", "--env", "Pendulum-v1", "--episodes", "1", "--steps", "5", "--out", str(out),
                 "--size", "16", "--policy", "explore"]) == 0  # explore falls back to random here
    shard = read_shard(scan_directory(out)[0].path)
    assert shard.actions.shape == (5, 1) and shard.info.action_space["type"] == "Box"
    assert shard.actions.abs().max() <= 2.0


def test_record_reports_bad_arguments(tmp_path, capsys):
    assert main(["record", "--env", "CartPole-v1", "--episodes", "0", "--steps", "5", "--out", str(tmp_path)]) == 2
    assert "episodes >= 1" in capsys.readouterr().err


def test_to_frame_converts_and_resizes():
    grey = np.full((10, 20), 7, dtype=np.uint8)
    frame = to_frame(grey, 8)
    assert frame.shape == (8, 8, 3) and (frame == 7).all()
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    assert to_frame(rgba, 8).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="uint8 image"):
        to_frame(np.zeros((8, 8, 3), dtype=np.float32), 8)
