"""The graphed step (worldsim/step_graph.py) generates what the plain step does, through every way
the simulator's memory changes hands: snapshots, an eager commit, new settings, a partial reset."""

import dataclasses

import pytest
import torch

from worldsim.checkpoint import load_model
from worldsim.config import preset, variant
from worldsim.diffusion import SamplerSettings
from worldsim.model import LSSVWM
from worldsim.simulator import Simulator
from worldsim.step_graph import StepGraph

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="capturing a CUDA graph needs a CUDA device"))]


def script(sim: Simulator) -> list[tuple]:
    """Drive a batch-2 simulator through resets, snapshots and setting changes; every step's output."""
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (2, 3, 16, 16, 3), dtype=torch.uint8, generator=g)
    sim.reset(frames, torch.randint(0, 6, (2, 2), generator=g), seeds=[5, 6])
    actions = torch.randint(0, 6, (24, 2), generator=g)
    out = []
    step = lambda i: out.append(tuple(x.clone() for x in sim.step(actions[i])))  # noqa: E731
    for i in range(4):
        step(i)
    snapshot = sim.get_state()
    sim.cache.snapshot()  # reading the memory commits the pending frame eagerly
    for i in range(4, 7):
        step(i)
    sim.sampler = dataclasses.replace(sim.sampler, steps=3)  # another sampler: another graph
    for i in range(7, 10):
        step(i)
    sim.set_state(snapshot)  # back in time: the same actions must give the same frames again
    for i in range(4, 7):
        step(i)
    sim.reset_indices([1], frames[1:, :1], None, seeds=[9])  # one element restarts
    for i in range(10, 14):
        step(i)
    out.append(tuple(sim.cache.state_dict().values()))
    return out


@pytest.mark.parametrize("device", DEVICES)
def test_graphed_steps_generate_what_plain_steps_do(tiny_checkpoint, one_thread, monkeypatch, device):
    model, config = load_model(tiny_checkpoint)
    replays = []
    call = StepGraph.__call__
    monkeypatch.setattr(StepGraph, "__call__", lambda self, *a: replays.append(self) or call(self, *a))
    runs = {graph: script(Simulator.for_checkpoint(model, config, context_noise=0.5, device=device, cuda_graph=graph))
            for graph in (False, True)}
    # every step but the first after reset() or an eager commit (2 of 17) ran from a graph, one graph
    # per sampler setting (a partial restart waits in the pending commit: its step is graphed too)
    assert len(replays) == 17 - 2 and len(set(map(id, replays))) == 2
    assert all(r.graph is not None for r in replays) == (device == "cuda")
    for plain, graphed in zip(*runs.values()):
        for i, (a, b) in enumerate(zip(plain, graphed)):
            if device == "cpu" and (len(plain) > 3 or i == 0):  # the frames and the memory: bit for bit
                assert torch.equal(a.cpu(), b.cpu())
            elif device == "cpu":
                # the reward and termination heads' small matmul may take another BLAS path for an input
                # at another address (seen as ~1e-7 differences on some CPUs): float32 rounding only
                torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6)
            else:
                torch.testing.assert_close(b.cpu().float(), a.cpu().float(), atol=1, rtol=1e-4)


def test_a_growing_memory_steps_without_a_graph(tiny_checkpoint, one_thread):
    """Full causal attention's memory grows every frame, so no fixed buffers hold it."""
    torch.manual_seed(0)
    model = LSSVWM(variant(preset("tiny"), "full_attention"))
    sim = Simulator(model, SamplerSettings(steps=1), device="cpu", cuda_graph=True)
    sim.reset(torch.zeros(1, 1, 16, 16, 3, dtype=torch.uint8))
    for a in range(3):
        sim.step(torch.tensor([a]))
    assert sim._graph is None and sim.frame_index.tolist() == [4]


def test_a_graph_of_a_step_that_commits_in_the_sampler_is_refused(tiny_checkpoint):
    """Such a step leaves no commit pending, which the graph's buffers are laid out for."""
    model, config = load_model(tiny_checkpoint)
    sim = Simulator.for_checkpoint(model, config, device="cpu")
    sim.reset(torch.zeros(1, 1, 16, 16, 3, dtype=torch.uint8))
    sim.step(torch.tensor([0]))
    state, noise = sim.get_state(), torch.zeros(2, 1, 3, 16, 16)
    assert state.pending is not None
    with pytest.raises(ValueError, match="with commit_in_sampler a sampler pass commits it"):
        StepGraph(sim.model, state.cache, state.pending, torch.tensor([1]), noise,
                  SamplerSettings(steps=2, context_noise=0.5, commit_in_sampler=True), torch.float32)


@pytest.mark.parametrize("device", DEVICES)
def test_the_graph_is_on_by_default_where_it_pays(device):
    """None (every default) means on for a CUDA device, off on a CPU, where it gains nothing."""
    model = LSSVWM(preset("tiny"))
    assert Simulator(model, device=device).cuda_graph == (device == "cuda")
    assert Simulator(model, device=device, cuda_graph=False).cuda_graph is False
