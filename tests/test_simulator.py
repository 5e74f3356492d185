"""Simulator construction: the checkpoint's sampler settings, overrides, and bad settings."""

import dataclasses

import pytest
import torch

from worldsim.checkpoint import load_model
from worldsim.diffusion import SamplerSettings
from worldsim.simulator import Simulator


def test_for_checkpoint_takes_the_shipped_sampler_settings_unless_overridden(tiny_checkpoint):
    model, config = load_model(tiny_checkpoint)
    sim = Simulator.for_checkpoint(model, config, device="cpu")
    assert config["sampling"] == {"steps": 2, "context_noise": 0.02}  # what the tiny fixture ships
    assert sim.sampler == SamplerSettings(steps=2, context_noise=0.02)  # the rest at their defaults
    sim = Simulator.for_checkpoint(model, config, sampling_steps=5, context_noise=0.0, device="cpu", dtype="bfloat16")
    assert (sim.sampler.steps, sim.sampler.context_noise, sim.dtype) == (5, 0.0, torch.bfloat16)
    sim = Simulator.for_checkpoint(model, {}, device="cpu")  # a config without sampling: the defaults
    assert sim.sampler == SamplerSettings() and (sim.sampler.steps, sim.sampler.context_noise) == (4, 0.5)


@pytest.mark.parametrize("field, keyword, shipped, given", [
    ("commit_in_sampler", "commit_in_sampler", True, False), ("schedule_power", "schedule_power", 2.5, 1.5),
    ("steps", "sampling_steps", 3, 1), ("context_noise", "context_noise", 0.25, 0.0)])
def test_each_sampler_setting_comes_from_the_checkpoint_unless_overridden(tiny_checkpoint, field, keyword, shipped,
                                                                          given):
    model, config = load_model(tiny_checkpoint)
    shipped_config = {**config, "sampling": {**config["sampling"], field: shipped}}
    assert getattr(Simulator.for_checkpoint(model, shipped_config, device="cpu").sampler, field) == shipped
    sim = Simulator.for_checkpoint(model, shipped_config, device="cpu", **{keyword: given})
    assert getattr(sim.sampler, field) == given


def test_sampler_settings_change_whole_are_checked_and_a_simulator_takes_nothing_else():
    sampler = SamplerSettings(steps=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sampler.steps = 3  # a simulator's CUDA graph is keyed by the settings object's value
    assert dataclasses.replace(sampler, schedule_power=2.0).levels() == [1.0, 0.25, 0.0]
    with pytest.raises(ValueError, match="sampling steps must be an int >= 1"):
        dataclasses.replace(sampler, steps=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'stepz'"):
        SamplerSettings.from_config({"sampling": {"stepz": 2}})  # a misspelt config.json key is not ignored
    with pytest.raises(TypeError, match=r"sampler must be a SamplerSettings, e.g. SamplerSettings\(steps=2\), got 2"):
        Simulator(None, 2)  # the step count where the settings go


@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": "float64"}, "dtype must be one of"),
    ({"sampling_steps": 0}, "sampling steps must be an int >= 1"),
    ({"context_noise": 2.0}, r"context_noise is a noise level in \[0, 1\]"),
    ({"context_noise": -0.1}, r"context_noise is a noise level in \[0, 1\]"),
    ({"schedule_power": 0.0}, "schedule_power must be > 0"),
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


def count_passes(model):
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def test_a_frame_is_committed_by_the_next_frames_first_pass(tiny_checkpoint, one_thread):
    """The fused engine: each step's first pass also commits the previous frame, so N steps of 2
    sampler steps make 2N passes, and the frames and memory are those of committing every frame by
    a pass of its own (reading `sim.cache` forces that commit)."""
    model, config = load_model(tiny_checkpoint)
    g = torch.Generator().manual_seed(0)
    context = torch.randint(0, 256, (2, 5, 16, 16, 3), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, 6, (6, 2), generator=g)
    runs = []
    for commit_alone in (False, True):
        sim = Simulator.for_checkpoint(model, config, 2, 0.5, device="cpu")
        sim.reset(context, actions[:4].T, seeds=[3, 4])
        calls, handle = count_passes(sim.model)
        frames = []
        for a in actions:
            frames.append(sim.step(a)[0])
            assert sim.frame_index.tolist() == [5 + len(frames)] * 2  # the pending frame counts
            if commit_alone:
                sim.cache  # noqa: B018 -- reading the memory commits the pending frame by its own pass
        handle.remove()
        runs.append((torch.stack(frames), sim.cache.state_dict(), len(calls)))
    assert runs[0][2] == 2 * len(actions) and runs[1][2] == 3 * len(actions)
    torch.testing.assert_close(runs[0][0].float(), runs[1][0].float(), rtol=0, atol=1)  # uint8: rounding only
    for name, x in runs[1][1].items():
        torch.testing.assert_close(runs[0][1][name], x, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("context", [1, 3])
def test_a_restart_beside_pending_frames_commits_with_them(tiny_checkpoint, one_thread, context):
    """reset_indices while the batch's latest frames wait to be committed: the restarted element's
    last context frame waits with them and the next step's first pass commits it. The frames and
    memory are those of committing the batch first and prefilling the whole context (what reading
    `sim.cache` forces), with one model pass fewer."""
    model, config = load_model(tiny_checkpoint)
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 3, 16, 16, 3), dtype=torch.uint8, generator=g)
    restart = torch.randint(0, 256, (1, context, 16, 16, 3), dtype=torch.uint8, generator=g)
    restart_actions = torch.randint(0, 6, (1, context - 1), generator=g) if context > 1 else None
    actions = torch.randint(0, 6, (6, 2), generator=g)
    runs = []
    for commit_first in (True, False):
        sim = Simulator.for_checkpoint(model, config, 2, 0.5, device="cpu")
        sim.reset(frames, actions[:2].T, seeds=[3, 4])
        sim.step(actions[2])
        calls, handle = count_passes(sim.model)
        if commit_first:
            sim.cache  # noqa: B018 -- reading the memory commits the pending frame by its own pass
        sim.reset_indices([1], restart, restart_actions, seeds=[9])
        assert sim.frame_index.tolist() == [4, context]
        out = [sim.step(a) for a in actions[3:]]
        handle.remove()
        runs.append((out, sim.cache.state_dict(), len(calls)))
    prefill = 1 if context > 1 else 0  # the restarted context but its last frame: one pass, if any
    assert runs[0][2] == 1 + 1 + 2 * 3 and runs[1][2] == prefill + 2 * 3
    for eager, waiting in zip(runs[0][0], runs[1][0]):
        torch.testing.assert_close(waiting[0].float(), eager[0].float(), rtol=0, atol=1)  # uint8: rounding only
        torch.testing.assert_close(waiting[1], eager[1], rtol=1e-4, atol=1e-5)
    for name, x in runs[0][1].items():
        torch.testing.assert_close(runs[1][1][name], x, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("steps, power, saves_a_pass", [(2, 1.0, True), (4, 1.0, True), (3, 1.0, False),
                                                       (2, 2.0, False), (4, 0.5, True)])
def test_commit_in_sampler_commits_the_pass_at_the_context_noise_level(tiny_checkpoint, one_thread, steps, power,
                                                                      saves_a_pass):
    """The sampler's frame is the same either way; with commit_in_sampler the memory is that of the
    sampler's pass at the context-noise level (tau 0.5 is a sampler level for 2 and 4 evenly spaced
    steps and for 4 steps at power 0.5, the fourth pass; not for 3 steps, nor for 2 at power 2, at
    levels 1 and 0.25; those commit by the next step's first pass as usual)."""
    model, config = load_model(tiny_checkpoint)
    g = torch.Generator().manual_seed(0)
    context = torch.randint(0, 256, (2, 5, 16, 16, 3), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, 6, (2, 4), generator=g)
    sims, passes = [], []
    for commit_in_sampler in (False, True):
        sim = Simulator.for_checkpoint(model, config, steps, 0.5, device="cpu", commit_in_sampler=commit_in_sampler,
                                       schedule_power=power)
        sim.reset(context, actions, seeds=[3, 4])
        frames, reward, _ = sim.step(torch.tensor([1, 2]))
        calls, handle = count_passes(sim.model)
        memory = sim.cache.state_dict()  # commits the frame by a pass of its own unless it is in
        handle.remove()
        sims.append((frames, reward, memory))
        passes.append(len(calls))
    assert passes == ([1, 0] if saves_a_pass else [1, 1])
    torch.testing.assert_close(sims[1][0], sims[0][0], rtol=0, atol=0)  # the same generated frames
    differs = any(not torch.equal(sims[0][2][k], sims[1][2][k]) for k in sims[0][2] if k != "t")
    assert differs == saves_a_pass  # without a pass at the level, nothing changes at all


@pytest.mark.parametrize("power, levels", [(1.0, [1, 2 / 3, 1 / 3]), (2.0, [1, 4 / 9, 1 / 9])])
def test_the_sampler_passes_run_at_the_schedule_levels(tiny_checkpoint, one_thread, power, levels):
    """Pass i of 3 runs the new frame at noise level (1 - i/3) ** power; the first pass also carries
    the previous frame at the context noise, for its commit."""
    model, config = load_model(tiny_checkpoint)
    sim = Simulator.for_checkpoint(model, config, 3, 0.5, device="cpu", schedule_power=power)
    assert sim.sampler.schedule_power == power
    g = torch.Generator().manual_seed(0)
    sim.reset(torch.randint(0, 256, (2, 5, 16, 16, 3), dtype=torch.uint8, generator=g),
              torch.randint(0, 6, (2, 4), generator=g), seeds=[3, 4])
    sim.step(torch.tensor([1, 2]))
    seen = []
    handle = sim.model.register_forward_hook(lambda _m, args, _out: seen.append(args[1].clone()))
    sim.step(torch.tensor([0, 3]))
    handle.remove()
    assert [x.shape for x in seen] == [(2, 2), (2, 1), (2, 1)]
    torch.testing.assert_close(seen[0][:, 0], torch.full((2,), 0.5))  # the previous frame, committed
    torch.testing.assert_close(torch.stack([x[:, -1] for x in seen], 1), torch.tensor([levels, levels]))


def test_commit_in_sampler_memory_holds_the_estimate_one_step_before_the_end(tiny_checkpoint, one_thread):
    """With 2 steps the second pass sees the first pass's estimate noised to 0.5 with the initial
    noise (at tau = 1 the DDIM noise estimate is that noise): committing that frame by a separate
    pass gives the same memory."""
    from worldsim.diffusion import add_noise, alpha_sigma, sample_next_frame

    model, _ = load_model(tiny_checkpoint)
    model.eval()
    g = torch.Generator().manual_seed(1)
    cache = model(torch.rand(2, 3, 3, 16, 16, generator=g) * 2 - 1, torch.zeros(2, 3),
                  torch.randint(0, 6, (2, 3), generator=g), update_cache=True).cache
    noise = torch.randn(2, 3, 16, 16, generator=g)
    action = torch.tensor([0, 5])
    with torch.no_grad():
        sampler = SamplerSettings(steps=2, context_noise=0.5, commit_in_sampler=True)
        _, _, _, fast, pending = sample_next_frame(model, cache, action, noise, sampler)
        assert pending is None
        z = noise[:, None]
        v = model(z, torch.ones(2, 1), action[:, None], cache=cache).prediction
        a, s = alpha_sigma(torch.ones(2, 1, 1, 1, 1))
        first_estimate = (a * z - s * v).clamp(-1, 1)
        level = torch.full((2, 1), 0.5)
        by_hand = model(add_noise(first_estimate, level, z), level, action[:, None], cache=cache,
                        update_cache=True).cache
    for name, x in by_hand.state_dict().items():
        torch.testing.assert_close(fast.state_dict()[name], x, rtol=1e-4, atol=1e-5, msg=name)


def test_a_bfloat16_memory_holds_keys_in_bfloat16_and_changes_no_frame(tiny_checkpoint, one_thread):
    """A bfloat16 simulator keeps its attention keys/values (and conv tails) in bfloat16, as
    attention reads them, and its SSM states in float32; the frames equal those from a float32 memory."""
    model, config = load_model(tiny_checkpoint)
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 6, 16, 16, 3), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, 6, (2, 5), generator=g)
    steps = {}
    for memory in ("bfloat16", "float32"):
        sim = Simulator.for_checkpoint(model, config, device="cpu", dtype="bfloat16")
        sim.reset(frames, actions, seeds=[1, 2])
        dtypes = {name: x.dtype for layer in sim.cache.layers for name, x in layer.items()}
        assert dtypes["k"] == dtypes["v"] == dtypes["conv"] == torch.bfloat16 and dtypes["ssm"] == torch.float32
        if memory == "float32":
            sim.cache = sim.cache.map(lambda x: x.float() if x.is_floating_point() else x)
        steps[memory] = [sim.step(torch.tensor([1, 4]))[0] for _ in range(3)]
    for a, b in zip(steps["bfloat16"], steps["float32"]):
        assert torch.equal(a, b)


# Compiling from a cold inductor cache takes minutes on a slow CPU: 5 min 46 s on this project's AVX2-only
# machine with two evaluations beside it (2026-12-07), over the suite's 300 s per test; 65 s with a warm cache.
@pytest.mark.timeout(900)
def test_a_compiled_simulator_generates_the_plain_frames(tiny_checkpoint, one_thread):
    """`compile` runs the sampler's passes through torch.compile: the same episode from the same
    context, seeds and actions gives the plain simulator's frames (to a grey level: the compiler
    fuses float ops in another order), with the compiled model in the step and only there."""
    model, config = load_model(tiny_checkpoint)
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 3, 16, 16, 3), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, 6, (2, 2), generator=g)
    episodes = {}
    for compile in (False, True):
        sim = Simulator.for_checkpoint(model, config, device="cpu", compile=compile)
        assert (sim.step_model is sim.model) != compile and sim.model is model
        sim.reset(frames, actions, seeds=[1, 2])
        episodes[compile] = torch.stack([sim.step(torch.tensor([i % 6, 5 - i % 6]))[0] for i in range(3)])
    diff = (episodes[True].int() - episodes[False].int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01, (diff.max(), (diff > 0).float().mean())


def test_frames_come_back_contiguous_channels_last(tiny_checkpoint, one_thread):
    """[B, H, W, 3] in memory order, so the envs' numpy copies of them are plain memcpys."""
    model, config = load_model(tiny_checkpoint)
    sim = Simulator.for_checkpoint(model, config, device="cpu")
    sim.reset(torch.zeros(2, 1, 16, 16, 3, dtype=torch.uint8), None, seeds=[0, 1])
    frames, _, _ = sim.step(torch.tensor([1, 2]))
    assert frames.shape == (2, 16, 16, 3) and frames.is_contiguous()
