"""Simulator construction: the checkpoint's sampler settings, overrides, and bad settings."""

import pytest
import torch

from worldsim.checkpoint import load_model
from worldsim.simulator import DEFAULT_SAMPLING, Simulator


def test_for_checkpoint_takes_the_shipped_sampler_settings_unless_overridden(tiny_checkpoint):
    model, config = load_model(tiny_checkpoint)
    sim = Simulator.for_checkpoint(model, config, device="cpu")
    assert config["sampling"] == {"steps": 2, "context_noise": 0.02}  # what the tiny fixture ships
    assert (sim.sampling_steps, sim.context_noise) == (2, 0.02)
    sim = Simulator.for_checkpoint(model, config, sampling_steps=5, context_noise=0.0, device="cpu", dtype="bfloat16")
    assert (sim.sampling_steps, sim.context_noise, sim.dtype) == (5, 0.0, torch.bfloat16)
    sim = Simulator.for_checkpoint(model, {}, device="cpu")  # a config without sampling: the defaults
    assert (sim.sampling_steps, sim.context_noise) == (DEFAULT_SAMPLING["steps"], DEFAULT_SAMPLING["context_noise"])


@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": "float64"}, "dtype must be one of"),
    ({"sampling_steps": 0}, "sampling_steps must be >= 1"),
])
def test_bad_settings_are_named(tiny_checkpoint, kwargs, message):
    model, config = load_model(tiny_checkpoint)
    with pytest.raises(ValueError, match=message):
        Simulator.for_checkpoint(model, config, device="cpu", **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_cuda_device_is_a_clear_error(tiny_checkpoint):
    model, config = load_model(tiny_checkpoint)
    with pytest.raises(ValueError, match="no CUDA device"):
        Simulator.for_checkpoint(model, config, device="cuda")


def test_context_prefilled_in_segments_is_the_memory_of_one_pass(tiny_checkpoint, one_thread):
    model, config = load_model(tiny_checkpoint)
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 11, 16, 16, 3), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, 6, (2, 10), generator=g)
    caches = []
    for segment in (100, 4, 1):  # one pass, uneven segments, frame by frame
        sim = Simulator.for_checkpoint(model, config, device="cpu")
        sim.prefill_segment = segment
        caches.append(sim.prefill(frames, actions).state_dict())
    for other in caches[1:]:
        for name, x in caches[0].items():
            torch.testing.assert_close(other[name], x, rtol=1e-4, atol=1e-5, msg=name)
    assert any(x.abs().sum() > 0 for name, x in caches[0].items() if name != "t")  # the memory is not empty
