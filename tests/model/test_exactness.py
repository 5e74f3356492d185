"""The parallel pass over T frames and the frame-by-frame engine compute the same thing.

For every mixer architecture: one forward over the whole video == prefill(T0) + single steps ==
consecutive temporal segments with the carried cache. And the checks are not vacuous: dropping
the carried SSM state or attention ring is caught.
"""

import dataclasses

import pytest
import torch

from worldsim.config import ARCHITECTURES, preset, variant
from worldsim.model import LSSVWM

T, T0, SEGMENT = 11, 4, 3
ATOL = 2e-4


def make_model(architecture="lssvwm", **overrides):
    torch.manual_seed(0)
    cfg = variant(preset("tiny", **overrides), architecture, sliding_window=3)
    model = LSSVWM(cfg).eval()
    with torch.no_grad():  # leave the zero init (adaLN-Zero) so every path carries signal
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def make_inputs(cfg, batch=2, frames=T, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, frames, cfg.channels, cfg.image_size, cfg.image_size, generator=g)
    levels = torch.rand(batch, frames, generator=g)
    actions = torch.randint(-1, cfg.num_actions, (batch, frames), generator=g)
    return x, levels, actions


def run_segments(model, x, levels, actions, bounds, between=None):
    """Process frames in consecutive segments [bounds[i], bounds[i+1]) carrying the cache."""
    cache, outs = None, []
    for s, e in zip(bounds[:-1], bounds[1:]):
        if cache is not None and between is not None:
            cache = between(cache)
        out = model(x[:, s:e], levels[:, s:e], actions[:, s:e], cache=cache, update_cache=True)
        cache = out.cache
        outs.append(out)
    cat = lambda name: torch.cat([getattr(o, name) for o in outs], dim=1)
    return cat("prediction"), cat("reward"), cat("termination"), cache


def max_diff(a, b):
    return max((u - v).abs().max().item() for u, v in zip(a, b))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@torch.no_grad()
def test_parallel_equals_prefill_then_single_steps(architecture):
    model = make_model(architecture)
    x, levels, actions = make_inputs(model.cfg)
    full = model(x, levels, actions)
    steps = run_segments(model, x, levels, actions, [0, T0, *range(T0 + 1, T + 1)])
    assert max_diff((full.prediction, full.reward, full.termination), steps[:3]) < ATOL


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@torch.no_grad()
def test_parallel_equals_temporal_segments(architecture):
    model = make_model(architecture)
    x, levels, actions = make_inputs(model.cfg)
    full = model(x, levels, actions)
    segs = run_segments(model, x, levels, actions, list(range(0, T, SEGMENT)) + [T])
    assert max_diff((full.prediction, full.reward, full.termination), segs[:3]) < ATOL


@pytest.mark.parametrize("blocks", [((1, 1), (1, 1)), ((4, 4), (4, 4)), ((4, 2), (1, 4))])
@torch.no_grad()
def test_block_shapes_single_token_and_whole_frame(blocks):
    """1x1 blocks step with the single-token recurrence; whole-frame and oblong blocks with the scan."""
    model = make_model(ssm_blocks=blocks)
    x, levels, actions = make_inputs(model.cfg)
    full = model(x, levels, actions)
    steps = run_segments(model, x, levels, actions, list(range(T + 1)))
    assert max_diff((full.prediction,), steps[:1]) < ATOL


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("blocks", [None, ((1, 1), (1, 1))])
@torch.no_grad()
def test_committing_the_first_frames_of_a_pass(architecture, blocks):
    """commit_frames=n: the pass predicts all its frames as usual, and the memory it returns is that
    of its first n frames alone (the simulator's fused commit + first sampler pass)."""
    model = make_model(architecture, **({} if blocks is None else {"ssm_blocks": blocks}))
    x, levels, actions = make_inputs(model.cfg)
    cache = model(x[:, :T0], levels[:, :T0], actions[:, :T0], update_cache=True).cache
    ahead = slice(T0, T0 + 3)
    full = model(x[:, ahead], levels[:, ahead], actions[:, ahead], cache=cache)
    for n in (1, 2):
        out = model(x[:, ahead], levels[:, ahead], actions[:, ahead], cache=cache, update_cache=True, commit_frames=n)
        assert max_diff((full.prediction, full.reward), (out.prediction, out.reward)) < ATOL
        first = slice(T0, T0 + n)
        alone = model(x[:, first], levels[:, first], actions[:, first], cache=cache, update_cache=True).cache
        assert torch.equal(out.cache.t, alone.t)
        for name, v in alone.state_dict().items():
            torch.testing.assert_close(out.cache.state_dict()[name], v, rtol=1e-4, atol=ATOL, msg=name)
    with pytest.raises(ValueError, match="commit_frames must be in"):
        model(x[:, ahead], levels[:, ahead], actions[:, ahead], cache=cache, update_cache=True, commit_frames=4)


@pytest.mark.parametrize("drop", ["ssm", "attention"])
@torch.no_grad()
def test_a_broken_carry_is_caught(drop):
    """Sanity check of the checks above: losing part of the memory between segments shows."""
    model = make_model("lssvwm")
    x, levels, actions = make_inputs(model.cfg)
    full = model(x, levels, actions)
    fresh = model.init_cache(x.shape[0])

    def forget(cache):
        if drop == "ssm":
            return cache.reset_ssm(torch.ones(x.shape[0], dtype=torch.bool))
        layers = [{n: (fresh.layers[i][n] if n in ("k", "v", "time") else s) for n, s in layer.items()}
                  for i, layer in enumerate(cache.layers)]
        return dataclasses.replace(cache, layers=layers)

    broken = run_segments(model, x, levels, actions, [0, T0, T], between=forget)
    assert max_diff((full.prediction,), broken[:1]) > 100 * ATOL


@torch.no_grad()
def test_reading_the_cache_does_not_change_it():
    model = make_model("lssvwm")
    x, levels, actions = make_inputs(model.cfg)
    cache = model(x[:, :T0], levels[:, :T0], actions[:, :T0], update_cache=True).cache
    before = cache.snapshot()
    out = model(x[:, T0:T0 + 1], levels[:, T0:T0 + 1], actions[:, T0:T0 + 1], cache=cache)
    assert out.cache is None
    for a, b in zip(before.state_dict().values(), cache.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("architecture,grows", [("lssvwm", False), ("sliding_attention", False),
                                                ("mamba2", False), ("full_attention", True)])
@torch.no_grad()
def test_cache_size_is_fixed_except_for_full_attention(architecture, grows):
    model = make_model(architecture)
    x, levels, actions = make_inputs(model.cfg, batch=1, frames=20)
    cache = model(x[:, :5], levels[:, :5], actions[:, :5], update_cache=True).cache
    early = cache.nbytes()
    for t in range(5, 20):
        cache = model(x[:, t:t + 1], levels[:, t:t + 1], actions[:, t:t + 1], cache=cache, update_cache=True).cache
    assert int(cache.t) == 20
    if grows:
        assert cache.nbytes() > 3 * early
    else:
        assert cache.nbytes() == early


@torch.no_grad()
def test_batch_elements_are_independent():
    """Element 0's output does not depend on what element 1 sees (batching is only a dimension)."""
    model = make_model("lssvwm")
    x, levels, actions = make_inputs(model.cfg)
    both = model(x, levels, actions).prediction
    alone = model(x[:1], levels[:1], actions[:1]).prediction
    assert (both[:1] - alone).abs().max() < ATOL
