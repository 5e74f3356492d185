"""Shared fixtures: a tiny random-init world-model checkpoint of the built-in maze, made once.

Random weights generate noise-like frames, which is all the env, viewer and rollout tests need:
shapes, dtypes, determinism, seeding, errors, files. The checkpoint's source is the real maze at
16x16 (the tiny preset's image size), so resets start from true maze frames.
"""

import pytest
import torch

import worldsim  # noqa: F401  (registers LSSVWM-v0 and worldsim/Maze-v0)
from worldsim.checkpoint import save_model
from worldsim.config import preset
from worldsim.model import LSSVWM

TINY_SOURCE = {
    "env_id": "worldsim/Maze-v0",
    "env_kwargs": {"maze_size": 5, "image_size": 16},
    "action_space": {"type": "discrete", "n": 6},
    "render_fps": 15,
}
TINY_SAMPLING = {"steps": 2, "context_noise": 0.02}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Directory of a tiny LSSVWM checkpoint (random init, 16x16 frames, maze source)."""
    return tiny_model_checkpoint(tmp_path_factory.mktemp("checkpoints") / "tiny", TINY_SOURCE)


@pytest.fixture(scope="session")
def tiny_checkpoint_maze7(tmp_path_factory):
    """The tiny checkpoint with a 7x7 maze as its source: cue recall needs cells out of the cue's
    sight, which a 5x5 maze may lack."""
    source = {**TINY_SOURCE, "env_kwargs": {**TINY_SOURCE["env_kwargs"], "maze_size": 7}}
    return tiny_model_checkpoint(tmp_path_factory.mktemp("checkpoints") / "tiny7", source)


def tiny_model_checkpoint(path, source):
    torch.manual_seed(0)
    model = LSSVWM(preset("tiny"))
    with torch.no_grad():
        # adaLN-Zero starts every residual branch at zero: perturb all weights so frames depend
        # on the context, the actions and the noise, and determinism checks are not vacuous
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        # a random termination head would end episodes at random steps; tests end them explicitly
        # (max_episode_steps), so make the predicted termination "never"
        model.heads[-1].bias[1] = -20.0
    return save_model(path, model, source, TINY_SAMPLING)


@pytest.fixture(autouse=True)
def no_fetched_lpips(tmp_path, monkeypatch):
    """Evaluations find no LPIPS weights unless a test gives them some: results must not depend on
    whether this machine ran `worldsim fetch-lpips`."""
    monkeypatch.setenv("WORLDSIM_LPIPS_WEIGHTS", str(tmp_path / "no-lpips-weights.safetensors"))


@pytest.fixture
def one_thread():
    """Run torch on one thread: tiny models gain nothing from intra-op threads, and OpenMP's
    spin-waiting makes them several times slower when the (2) CPUs are shared with other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
