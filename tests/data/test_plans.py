"""Maze plans: seeds + actions on disk, rendered where used; and the cue recall plan builder."""

import importlib.util
from pathlib import Path

import pytest
import torch

from worldsim.data.plans import MazePlans, PlanError, load_plans, replay, save_plans
from worldsim.maze.core import MazeWorld
from worldsim.maze.episodes import eval_seed

ROOT = Path(__file__).resolve().parents[2]


def random_plans(n=3, length=20, maze_size=5, image_size=16, seed=0) -> MazePlans:
    g = torch.Generator().manual_seed(seed)
    seeds = torch.randint(0, 2**31, (n,), generator=g)
    actions = torch.randint(0, 6, (n, length), generator=g).to(torch.uint8)
    plans = MazePlans(seeds, actions, torch.zeros(n, 3), maze_size, image_size)
    _, plans.end_poses = replay(plans, list(range(n)))
    return plans


def test_plans_round_trip_and_replay_the_maze_they_were_made_in(tmp_path):
    plans = random_plans()
    save_plans(tmp_path / "p.safetensors", plans)
    loaded = load_plans(tmp_path / "p.safetensors")
    assert torch.equal(loaded.actions, plans.actions) and torch.equal(loaded.seeds, plans.seeds)
    assert (len(loaded), loaded.length, loaded.maze_size, loaded.image_size) == (3, 20, 5, 16)
    batch, end = replay(loaded, [2, 0])
    assert batch.frames.shape == (2, 20, 16, 16, 3) and batch.actions.dtype == torch.int64
    assert torch.equal(end, plans.end_poses[[2, 0]])
    world = MazeWorld(1, 5, 16)
    frames = [world.reset(seeds=[int(plans.seeds[2])])[0]]
    for action in plans.actions[2, :-1].long():
        frames.append(world.step(action.view(1))[0][0])
    assert torch.equal(batch.frames[0], torch.stack(frames))


@pytest.mark.parametrize("change, message", [
    (lambda p: setattr(p, "seeds", p.seeds + eval_seed(0)), "must be training seeds"),
    (lambda p: p.actions.__setitem__((0, 3), 6), r"actions must lie in \[0, 6\)"),
    (lambda p: setattr(p, "actions", p.actions.long()), "dtypes must be int64, uint8, float32"),
    (lambda p: setattr(p, "end_poses", p.end_poses[:2]), "shapes must be"),
])
def test_bad_plans_files_are_refused_naming_what_is_wrong(tmp_path, change, message):
    plans = random_plans()
    change(plans)
    save_plans(tmp_path / "p.safetensors", plans)
    with pytest.raises(PlanError, match=message):
        load_plans(tmp_path / "p.safetensors")


def test_missing_truncated_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(PlanError, match="no such plans file"):
        load_plans(tmp_path / "none.safetensors")
    save_plans(tmp_path / "p.safetensors", random_plans())
    data = (tmp_path / "p.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:len(data) // 2])
    with pytest.raises(PlanError, match="unreadable or truncated"):
        load_plans(tmp_path / "cut.safetensors")
    from safetensors.torch import save_file
    save_file({"seeds": torch.zeros(1, dtype=torch.int64)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(PlanError, match="not a version-1 maze plans file"):
        load_plans(tmp_path / "other.safetensors")


def test_build_script_is_deterministic_and_continues_an_interrupted_file(tmp_path):
    spec = importlib.util.spec_from_file_location("build_recall_plans", ROOT / "scripts" / "build_recall_plans.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = ["--plans", "3", "--length", "400", "--away", "60", "100", "--maze-size", "7", "--image-size", "16"]
    whole, part = tmp_path / "whole.safetensors", tmp_path / "part.safetensors"
    assert script.main(args + ["--out", str(whole)]) == 0
    plans = load_plans(whole)
    assert len(plans) == 3 and plans.length == 400
    _, end = replay(plans, [0, 1, 2])
    assert torch.equal(end, plans.end_poses)
    first = MazePlans(plans.seeds[:1], plans.actions[:1], plans.end_poses[:1], 7, 16, plans.builder)
    save_plans(part, first)  # as if stopped after the first plan
    assert script.main(args + ["--out", str(part)]) == 0
    assert torch.equal(load_plans(part).actions, plans.actions)
    with pytest.raises(SystemExit):  # another command's file is not continued
        script.main(["--plans", "4"] + args[2:] + ["--out", str(part)])
