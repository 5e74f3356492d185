"""The examples run as they stand (tiny checkpoint, few steps)."""

import importlib.util
from pathlib import Path

import imageio.v3 as iio
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_branching_planner_restores_state_and_records_video(tiny_checkpoint, tmp_path, one_thread):
    pytest.importorskip("moviepy", reason="RecordVideo writes mp4 through moviepy (the dev extra)")
    planner = load("branching_planner")
    planner.main(["--checkpoint", str(tiny_checkpoint), "--steps", "4", "--horizon", "2", "--out", str(tmp_path)])
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1
    assert 4 <= iio.imread(videos[0]).shape[0] <= 5  # reset frame + the 4 chosen steps, none of the 48 branch steps


def test_imagined_branches_leave_the_simulator_unchanged(tiny_checkpoint, one_thread):
    import gymnasium as gym

    planner = load("branching_planner")
    env = gym.make("LSSVWM-v0", checkpoint=str(tiny_checkpoint))
    env.reset(seed=3)
    planner.imagined_return(env, 1, horizon=3)
    after_branch = env.step(2)[0]
    env.reset(seed=3)
    straight = env.step(2)[0]
    assert (after_branch == straight).all()
