"""Training sources: maze plans cut into windows, and mixed into the live maze's batches."""

import dataclasses
import json

import pytest
import torch

from worldsim.config import preset
from worldsim.data.plans import MazePlans, replay, save_plans
from worldsim.train.config import TrainConfig
from worldsim.train.data import MixedSource, PlanSource, make_source
from worldsim.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def plans_file(tmp_path):
    """Four plans of 30 random actions in 9x9 mazes at 16 px (the tiny preset's)."""
    g = torch.Generator().manual_seed(0)
    plans = MazePlans(torch.randint(0, 2**31, (4,), generator=g),
                      torch.randint(0, 6, (4, 30), generator=g).to(torch.uint8), torch.zeros(4, 3), 9, 16)
    _, plans.end_poses = replay(plans, list(range(4)))
    save_plans(tmp_path / "plans.safetensors", plans)
    return tmp_path / "plans.safetensors", plans


def find_window(plans: MazePlans, actions: torch.Tensor) -> tuple[int, int]:
    """(plan, start) of the plan slice these window actions were cut from."""
    T = actions.shape[0]
    for i in range(len(plans)):
        for s in range(plans.length - T + 1):
            if torch.equal(plans.actions[i, s:s + T].long(), actions):
                return i, s
    raise AssertionError("window not found in any plan")


def test_plan_windows_are_slices_of_the_plans_rendered_whole(plans_file):
    path, plans = plans_file
    source = PlanSource(str(path), "cpu", seed=1, pool_size=3)
    batch = source.next(12, 5)  # more windows than a pool: the pool is refilled
    assert batch.frames.shape == (5, 12, 16, 16, 3) and batch.actions.shape == (5, 12)
    whole = replay(plans, list(range(4)))[0]
    for b in range(5):
        i, s = find_window(plans, batch.actions[b])
        assert torch.equal(batch.frames[b], whole.frames[i, s:s + 12])
        assert bool(batch.first[b]) == (s == 0)
    with pytest.raises(ValueError, match="longer than the plans' 30 frames"):
        source.next(31, 1)


def test_mixed_batches_draw_the_plans_share_and_restart_reproducibly(plans_file):
    path, plans = plans_file
    cfg = TrainConfig(model=preset("tiny"), window_schedule=((0, 10),), maze_pool=4, episode_length=50,
                      plans=str(path), plans_fraction=0.5)
    source = make_source(cfg, "cpu")
    assert isinstance(source, MixedSource) and source.describe()["plans"] == str(path)
    from_plans = []
    for _ in range(6):
        batch = source.next(10, 4)
        assert batch.frames.shape == (4, 10, 16, 16, 3)
        from_plans.append(sum(_in_plans(plans, a) for a in batch.actions))
    assert 0 < sum(from_plans) < 24  # both sources contribute
    source.restart(3)
    first = source.next(10, 4)
    source.restart(3)
    assert torch.equal(source.next(10, 4).frames, first.frames)
    everything = make_source(dataclasses.replace(cfg, plans_fraction=1.0), "cpu")
    assert all(_in_plans(plans, a) for a in everything.next(10, 4).actions)


def _in_plans(plans, actions) -> bool:
    try:
        find_window(plans, actions)
        return True
    except AssertionError:
        return False


def test_plans_must_match_the_maze_and_mix_into_maze_data_only(plans_file, tmp_path):
    path, _ = plans_file
    with pytest.raises(ValueError, match="need data='maze' and plans_fraction in"):
        TrainConfig(model=preset("tiny"), data=str(tmp_path), plans=str(path))
    with pytest.raises(ValueError, match="plans_fraction in"):
        TrainConfig(model=preset("tiny"), plans=str(path), plans_fraction=0.0)
    cfg = TrainConfig(model=preset("tiny"), maze_size=7, maze_pool=4, plans=str(path))
    with pytest.raises(ValueError, match="plans of 9x9 mazes at 16 px, but training uses maze_size 7"):
        make_source(cfg, "cpu")


def test_a_run_with_plans_trains_and_records_them_in_its_checkpoint(plans_file, tmp_path):
    path, _ = plans_file
    cfg = TrainConfig(model=preset("tiny"), batch_size=2, window_schedule=((0, 8),), maze_pool=4, episode_length=40,
                      plans=str(path), plans_fraction=0.5, save_every=2, log_every=1, warmup_steps=1)
    trainer = Trainer(cfg, tmp_path / "run", device="cpu", show_progress=False)
    trainer.fit(2)
    config = json.loads((tmp_path / "run" / "step-0000002" / "config.json").read_text())
    assert config["source"]["plans"] == str(path) and config["train"]["plans_fraction"] == 0.5
    assert trainer.step == 2
