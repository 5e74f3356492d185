"""`worldsim rollout`: headless mp4s of the requested length, policies, action files and their errors."""

import json

import imageio.v3 as iio
import pytest

from worldsim import cli, simulator
from worldsim.step_graph import StepGraph

pytestmark = pytest.mark.usefixtures("one_thread")


def run(tiny_checkpoint, *args):
    return cli.main(["rollout", "--checkpoint", str(tiny_checkpoint), "--device", "cpu", *map(str, args)])


@pytest.mark.parametrize("policy", ["random", "explore"])
def test_rollout_writes_the_requested_frames(tiny_checkpoint, tmp_path, capsys, policy):
    out = tmp_path / f"{policy}.mp4"
    assert run(tiny_checkpoint, "--steps", 12, "--policy", policy, "--out", out) == 0
    frames = iio.imread(out)
    assert frames.shape == (12, 256, 256, 3)  # 16x16 frames upscaled 16x
    assert "frames/s" in capsys.readouterr().out


def test_sampler_settings_reach_the_model(tiny_checkpoint, tmp_path):
    videos = {}
    for noise in ("0.02", "0.02", "1.0"):
        out = tmp_path / f"noise{noise}.mp4"
        assert run(tiny_checkpoint, "--steps", 6, "--policy", "random", "--context-noise", noise, "--out", out) == 0
        videos.setdefault(noise, []).append(iio.imread(out))
    assert (videos["0.02"][0] == videos["0.02"][1]).all()  # same settings, same frames
    assert (videos["0.02"][0] != videos["1.0"][0]).any()  # committing frames as pure noise changes what follows


def test_twin_rollout_puts_the_true_env_beside_the_model(tiny_checkpoint, tmp_path):
    out = tmp_path / "twin.mp4"
    assert run(tiny_checkpoint, "--steps", 6, "--twin", "--scale", 3, "--fps", 10, "--out", out) == 0
    assert iio.imread(out).shape == (6, 48, 102, 3)  # (16 | 2-pixel gap | 16) x 16, upscaled 3x


def test_actions_from_files(tiny_checkpoint, tmp_path):
    text = tmp_path / "actions.txt"
    text.write_text("# forward, then turn\n1\n1\n\n2  # left\n3\n")
    assert run(tiny_checkpoint, "--policy", text, "--out", tmp_path / "a.mp4") == 0
    assert len(iio.imread(tmp_path / "a.mp4")) == 4  # every action of the file
    listed = tmp_path / "actions.json"
    listed.write_text(json.dumps({"actions": [1, 4, 5, 0, 0]}))
    assert run(tiny_checkpoint, "--policy", listed, "--steps", 3, "--out", tmp_path / "b.mp4") == 0
    assert len(iio.imread(tmp_path / "b.mp4")) == 3


@pytest.mark.parametrize("content, message", [
    ("1\n7\n", "actions.txt:2: invalid action 7"),
    ("1\nforward\n", "actions.txt:2: cannot read 'forward'"),
    ("[1, 2.5]", "action 1: invalid action 2.5"),
    ("[1, 2", "not valid JSON"),
    ("# nothing\n", "no actions"),
    ("1\n2\n", "holds 2 actions, fewer than --steps 5"),
])
def test_bad_action_files_are_named(tiny_checkpoint, tmp_path, capsys, content, message):
    path = tmp_path / "actions.txt"
    path.write_text(content)
    assert run(tiny_checkpoint, "--policy", path, "--steps", 5, "--out", tmp_path / "x.mp4") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()


def test_missing_checkpoint_and_unknown_policy_are_clear_errors(tiny_checkpoint, tmp_path, capsys):
    assert cli.main(["rollout", "--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "x.mp4")]) == 2
    assert "nope" in capsys.readouterr().err
    assert run(tiny_checkpoint, "--policy", "greedy", "--out", tmp_path / "x.mp4") == 2
    assert "not 'random', 'explore'" in capsys.readouterr().err


def test_cuda_graph_option_reaches_the_simulator(tiny_checkpoint, tmp_path, monkeypatch):
    """--cuda-graph: every step after an episode's first runs through a StepGraph (without capture
    on a CPU), and the video is the same."""
    replays = []
    call = StepGraph.__call__
    monkeypatch.setattr(StepGraph, "__call__", lambda self, *a: replays.append(self) or call(self, *a))
    videos = []
    for flag in ([], ["--cuda-graph"]):
        out = tmp_path / f"graph{bool(flag)}.mp4"
        assert run(tiny_checkpoint, "--steps", 6, "--policy", "random", *flag, "--out", out) == 0
        videos.append(iio.imread(out))
    assert len(replays) == 6 - 1 and (videos[0] == videos[1]).all()


def test_compile_option_reaches_the_simulator(tiny_checkpoint, tmp_path, monkeypatch):
    """--compile: the simulator compiles its step model (torch.compile recorded here, not run: a
    compiled step's frames are tests/test_simulator.py's)."""
    calls = []
    monkeypatch.setattr(simulator.torch, "compile", lambda model, **kw: calls.append(kw) or model)
    assert run(tiny_checkpoint, "--steps", 2, "--policy", "random", "--out", tmp_path / "plain.mp4") == 0
    assert calls == []
    assert run(tiny_checkpoint, "--steps", 2, "--policy", "random", "--compile", "--out", tmp_path / "c.mp4") == 0
    assert calls == [{"dynamic": False}]
