"""The training configs shipped in configs/: each must load, build its model, and -- where it starts
from the shipped checkpoint -- fit that checkpoint's tensors, so a GPU lease is not spent on a
config that fails at its first line."""

import functools
from pathlib import Path

import pytest

from worldsim.checkpoint import load_model
from worldsim.model import LSSVWM
from worldsim.train.config import load_train_config
from worldsim.train.trainer import map_layers

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.json"))


def shapes(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@functools.cache
def checkpoint_shapes(name: str) -> dict:
    """Tensor shapes of a checkpoint, loaded once for all the configs that start from it."""
    return shapes(load_model(name)[0])


def test_the_config_folder_is_found():
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_its_model_builds(path):
    cfg = load_train_config(str(path))
    assert cfg.total_steps > 0 and cfg.window_at(cfg.total_steps) >= 1
    model = LSSVWM(cfg.model)
    if cfg.init_from:
        theirs = checkpoint_shapes(cfg.init_from)
        if cfg.init_layers:  # a grown model: its layers from theirs as mapped, the new ones its own
            depth = len({k.split(".")[1] for k in theirs if k.startswith("layers.")})
            theirs = map_layers(theirs, shapes(model), cfg.init_layers, depth)
        assert shapes(model) == theirs, \
            f"{path.name}: its model does not take the weights of {cfg.init_from!r}"
