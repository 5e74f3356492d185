"""examples/rl_in_imagination.py end to end at tiny settings: PPO in the (tiny) world model and on
the real maze, then both plus a random policy evaluated on the true maze."""

import argparse
import importlib.util
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3", reason="the example needs the rl extra (stable-baselines3)")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rl_in_imagination.py"
STEPS, NUM_ENVS, EPISODE_STEPS, EVAL_EPISODES, EVAL_SEED = 32, 2, 6, 2, 500
AGENTS = ("ppo_imagination", "ppo_real", "random")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("rl_in_imagination", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def args(checkpoint, out, *extra):
    return ["--checkpoint", str(checkpoint), "--device", "cpu", "--cnn", "small", "--sampling-steps", "1",
            "--steps", str(STEPS), "--num-envs", str(NUM_ENVS), "--n-steps", "8", "--batch-size", "8",
            "--n-epochs", "1", "--seeds", "0,1", "--episode-steps", str(EPISODE_STEPS),
            "--eval-episodes", str(EVAL_EPISODES), "--eval-seed", str(EVAL_SEED), "--out", str(out), *extra]


def test_trains_in_imagination_and_on_the_maze_and_evaluates_all_three(script, tiny_checkpoint, tmp_path,
                                                                        one_thread, capsys):
    returned = script.main(args(tiny_checkpoint, tmp_path))
    results = json.loads((tmp_path / "results.json").read_text())
    assert results == json.loads(json.dumps(returned))
    assert results["eval_seeds"] == [EVAL_SEED + i for i in range(EVAL_EPISODES)]
    for key in AGENTS:
        runs = results["agents"][key]
        assert [r["seed"] for r in runs] == [0, 1]
        for r in runs:
            assert len(r["episode_returns"]) == EVAL_EPISODES
            assert r["return"] == pytest.approx(np.mean(r["episode_returns"]))
            # evaluated on the true maze: +1 per touched target, never a world model's fractional reward
            assert all(float(x).is_integer() and x >= 0 for x in r["episode_returns"])
    for key in ("ppo_imagination", "ppo_real"):
        for r in results["agents"][key]:
            assert r["train_steps"] >= STEPS and r["train_seconds"] > 0
            assert r["train_return"] is not None  # episodes of 6 steps ended during training
    # the imagination agent's training return is the world model's reward head: fractional, not +1s
    assert not float(results["agents"]["ppo_imagination"][0]["train_return"]).is_integer()

    table = (tmp_path / "results.md").read_text()
    for name in ("| PPO in imagination | LSSVWM-v0 |", "| PPO on the real env | worldsim/Maze-v0 |", "| random policy |"):
        assert name in table
    assert "python examples/rl_in_imagination.py --checkpoint" in table
    printed = capsys.readouterr().out
    assert "| PPO in imagination |" in printed and results["command"] in printed


def test_evaluation_plays_the_same_true_mazes_to_truncation(script, one_thread):
    a = argparse.Namespace(episode_steps=EPISODE_STEPS, eval_episodes=EVAL_EPISODES, eval_seed=EVAL_SEED, device="cpu")
    source = {"env_id": "worldsim/Maze-v0", "env_kwargs": {"maze_size": 5, "image_size": 16}}
    seen = []

    def forward(obs):
        seen.append(obs.copy())
        return np.ones(len(obs), dtype=np.int64)

    returns = script.evaluate(a, source, forward)
    assert len(returns) == EVAL_EPISODES and len(seen) == EPISODE_STEPS
    for i in range(EVAL_EPISODES):
        maze = gym.make("worldsim/Maze-v0", **source["env_kwargs"])
        np.testing.assert_array_equal(seen[0][i], maze.reset(seed=EVAL_SEED + i)[0])
        total = sum(maze.step(1)[1] for _ in range(EPISODE_STEPS))
        assert returns[i] == total


def test_nature_cnn_on_tiny_frames_is_refused_with_the_fix(script, tiny_checkpoint, tmp_path, one_thread, capsys):
    with pytest.raises(SystemExit):
        script.main(args(tiny_checkpoint, tmp_path, "--cnn", "nature"))
    assert "--cnn small" in capsys.readouterr().err
