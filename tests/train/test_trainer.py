"""The trainer learns, checkpoints atomically, resumes, and each training strategy takes effect."""

import contextlib
import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from worldsim.checkpoint import load_model, load_tensors, resolve
from worldsim.config import preset, variant
from worldsim.diffusion import ObjectiveConfig, SamplerSettings, alpha_sigma, sample_noise_levels
from worldsim.model import LSSVWM
from worldsim.train.config import TrainConfig
from worldsim.train.objective import WindowObjective, own_context, plan_window, prepare_window
from worldsim.train.trainer import Trainer

HERE = Path(__file__).parent
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: threads only contend on a shared CPU


def tiny_cfg(**kw):
    base = dict(model=preset("tiny"), batch_size=4, window_schedule=((0, 8),), warmup_steps=5, total_steps=400,
                lr=3e-3, save_every=1000, log_every=1, ema_decay=0.9)
    return TrainConfig(**{**base, **kw})


def test_tiny_model_overfits_a_fixed_set_of_trajectories(tmp_path, fixed_source):
    trainer = Trainer(tiny_cfg(), tmp_path, device="cpu", source=fixed_source, show_progress=False)
    losses = []
    for _ in range(150):
        losses.append(trainer.train_step()["diffusion"])
    start, end = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert end < 0.5 * start, (start, end)


def test_checkpoint_is_safetensors_and_json_and_resumes_exactly(tmp_path, fixed_source):
    trainer = Trainer(tiny_cfg(), tmp_path, device="cpu", source=fixed_source)
    trainer.fit(6)
    ckpt = resolve(tmp_path)
    assert ckpt.name == "step-0000006"
    assert {p.suffix for p in ckpt.iterdir()} <= {".json", ".safetensors"}
    assert json.loads((ckpt / "trainer_state.json").read_text())["step"] == 6

    resumed = Trainer(tiny_cfg(), tmp_path, device="cpu", source=fixed_source)
    resumed.resume(tmp_path)
    assert resumed.step == 6
    for (name, a), b in zip(trainer.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(trainer.ema.parameters(), resumed.ema.parameters()):
        assert torch.equal(a, b)
    sa, sb = trainer.opt.state_dict()["state"], resumed.opt.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    resumed.fit(9)
    assert json.loads((resolve(tmp_path) / "trainer_state.json").read_text())["step"] == 9


def test_init_from_starts_a_new_run_from_another_runs_ema_weights(tmp_path, fixed_source):
    first = Trainer(tiny_cfg(), tmp_path / "a", device="cpu", source=fixed_source, show_progress=False)
    first.fit(4)
    second = Trainer(tiny_cfg(seed=1), tmp_path / "b", device="cpu", source=fixed_source, show_progress=False)
    assert not torch.equal(second.model.patch_in.weight, first.ema.patch_in.weight)
    second.init_from(tmp_path / "a")
    assert second.step == 0
    for (name, a), b in zip(first.ema.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert all(torch.equal(a, b) for a, b in zip(second.ema.parameters(), second.model.parameters()))
    other = Trainer(tiny_cfg(model=dataclasses.replace(preset("tiny"), width=24)), tmp_path / "c", device="cpu",
                    source=fixed_source)
    with pytest.raises(ValueError, match="parameters differ"):
        other.init_from(tmp_path / "a")
    # another SSM block layout keeps every tensor's shape: the weights carry over to a model that scans differently
    relaid = Trainer(tiny_cfg(model=dataclasses.replace(preset("tiny"), ssm_blocks=((4, 4), (4, 4)))), tmp_path / "d",
                     device="cpu", source=fixed_source)
    relaid.init_from(tmp_path / "a")
    for (name, a), b in zip(first.ema.state_dict().items(), relaid.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert relaid.model.cfg.ssm_blocks == ((4, 4), (4, 4))
    # re-seeded memory horizons: the named parameters keep the new model's own initialisation
    reseeded = Trainer(tiny_cfg(model=dataclasses.replace(preset("tiny"), ssm_dt_init="frame")), tmp_path / "e",
                       device="cpu", source=fixed_source)
    own = {k: v.clone() for k, v in reseeded.model.state_dict().items()}
    reseeded.init_from(tmp_path / "a", reinit=("ssm.dt_bias", "ssm.A_log"))
    kept = [k for k in own if k.endswith(("ssm.dt_bias", "ssm.A_log"))]
    assert len(kept) == 4
    for (name, a), b in zip(first.ema.state_dict().items(), reseeded.model.state_dict().values()):
        assert torch.equal(b, own[name] if name in kept else a), name
    assert not any(torch.equal(own[k], first.ema.state_dict()[k]) for k in kept)
    with pytest.raises(ValueError, match="'ssm.dt_scale' names no parameter"):
        reseeded.init_from(tmp_path / "a", reinit=("ssm.dt_scale",))


def test_init_layers_grows_the_trunk_with_new_layers_that_start_as_the_identity(tmp_path, fixed_source):
    first = Trainer(tiny_cfg(), tmp_path / "a", device="cpu", source=fixed_source, show_progress=False)
    first.fit(4)
    deep = dataclasses.replace(preset("tiny"), depth=4, ssm_blocks=((4, 4), (4, 4), (2, 2), (2, 2)))
    grown = Trainer(tiny_cfg(model=deep, init_from=str(tmp_path / "a"), init_layers=(0, -1, 1, -1)), tmp_path / "g",
                    device="cpu", source=fixed_source)
    own = {k: v.clone() for k, v in grown.model.state_dict().items()}
    grown.init_from(tmp_path / "a", layers=(0, -1, 1, -1))
    theirs, mine = first.ema.state_dict(), grown.model.state_dict()
    for name in mine:
        if name.startswith(("layers.1.", "layers.3.")):
            assert torch.equal(mine[name], own[name]), name  # the new layers keep their fresh init
        elif name.startswith("layers.2."):
            assert torch.equal(mine[name], theirs["layers.1." + name[len("layers.2."):]]), name
        else:
            assert torch.equal(mine[name], theirs[name]), name
    # the new layers are identity maps: the grown model draws what the trained one draws
    frames = torch.randn(2, 5, 3, 16, 16)
    levels, actions = torch.rand(2, 5), torch.randint(0, 6, (2, 5))
    with torch.no_grad():
        want = first.ema(frames, levels, actions).prediction
        got = grown.model(frames, levels, actions).prediction
    assert torch.allclose(got, want, atol=1e-6)
    with pytest.raises(ValueError, match="names a layer the checkpoint lacks"):
        grown.init_from(tmp_path / "a", layers=(0, 1, 2, -1))
    with pytest.raises(ValueError, match="init_layers maps each of the model's 4 layers"):
        TrainConfig(model=deep, init_from="maze", init_layers=(0, 1))
    with pytest.raises(ValueError, match="needs init_from"):
        TrainConfig(model=deep, init_layers=(0, 1, -1, -1))


def test_init_shut_layers_grows_copies_of_trained_layers_that_start_as_the_identity(tmp_path, fixed_source):
    first = Trainer(tiny_cfg(), tmp_path / "a", device="cpu", source=fixed_source, show_progress=False)
    first.fit(4)
    deep = dataclasses.replace(preset("tiny"), depth=3, ssm_blocks=((4, 4), (2, 2), (2, 2)))
    cfg = tiny_cfg(model=deep, init_from=str(tmp_path / "a"), init_layers=(0, 1, 1), init_shut_layers=(2,))
    grown = Trainer(cfg, tmp_path / "g", device="cpu", source=fixed_source)
    grown.init_from(cfg.init_from, layers=cfg.init_layers, shut=cfg.init_shut_layers)
    theirs, mine = first.ema.state_dict(), grown.model.state_dict()
    copy, source = grown.model.layers[2], grown.model.layers[1]
    D, S = copy.ada.in_features, copy.sublayers
    gates = torch.zeros(3 * S * D, dtype=torch.bool)
    for i in range(S):
        gates[(3 * i + 2) * D:(3 * i + 3) * D] = True
    for name, v in mine.items():
        if name.startswith("layers.2.ada."):  # the copy's shift and scale are its source's, its gates shut
            assert torch.equal(v[~gates], theirs["layers.1." + name[len("layers.2."):]][~gates]), name
            assert not v[gates].any() and theirs["layers.1." + name[len("layers.2."):]][gates].any(), name
        elif name.startswith("layers.2."):  # the sublayers compute what the source's compute
            assert torch.equal(v, theirs["layers.1." + name[len("layers.2."):]]), name
        else:
            assert torch.equal(v, theirs[name]), name
    assert all(torch.equal(v, grown.ema.state_dict()[k]) for k, v in mine.items())
    frames = torch.randn(2, 5, 3, 16, 16)
    levels, actions = torch.rand(2, 5), torch.randint(0, 6, (2, 5))
    with torch.no_grad():
        want = first.ema(frames, levels, actions).prediction
        got = grown.model(frames, levels, actions).prediction
        source.shut_gates()  # a shut source changes what the model draws: its gates were open
        assert not torch.allclose(grown.model(frames, levels, actions).prediction, want, atol=1e-4)
    assert torch.allclose(got, want, atol=1e-6)
    with pytest.raises(ValueError, match="init_shut_layers names layers of the model"):
        TrainConfig(model=deep, init_from="maze", init_layers=(0, 1, 1), init_shut_layers=(3,))
    with pytest.raises(ValueError, match="init_shut_layers names layers of the model"):
        TrainConfig(model=deep, init_shut_layers=(2,))


def test_sigterm_saves_the_current_step_and_stops(tmp_path, fixed_source):
    class KillAtStep4:
        def __getattr__(self, name):
            return getattr(fixed_source, name)

        calls = 0

        def next(self, window, batch):
            KillAtStep4.calls += 1
            if KillAtStep4.calls == 4:
                os.kill(os.getpid(), signal.SIGTERM)
            return fixed_source.next(window, batch)

    trainer = Trainer(tiny_cfg(save_every=1000), tmp_path, device="cpu", source=KillAtStep4())
    trainer.fit(50)
    assert trainer.step == 4  # the step in flight finished, then it saved and stopped
    assert json.loads((resolve(tmp_path) / "trainer_state.json").read_text())["step"] == 4
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_long_context_training_keeps_a_clean_prefix_out_of_the_loss():
    T = 10
    tau, mask = sample_noise_levels(256, T, ObjectiveConfig(long_context_prob=1.0), torch.Generator().manual_seed(0))
    prefix = (tau == 0).int().argmin(1)  # first noised frame
    assert ((prefix > T // 2) & (prefix < T)).all()
    assert torch.equal(mask, (tau > 0).float())
    tau0, mask0 = sample_noise_levels(256, T, ObjectiveConfig(long_context_prob=0.0), torch.Generator().manual_seed(0))
    assert (mask0 == 1).all() and (tau0 > 0).all()
    # half the windows by default
    _, mask_half = sample_noise_levels(4000, T, ObjectiveConfig(), torch.Generator().manual_seed(0))
    share = (mask_half[:, 0] == 0).float().mean()
    assert 0.45 < share < 0.55


def test_sparse_target_windows_keep_most_frames_clean_and_score_only_their_targets():
    T, gen = 64, torch.Generator().manual_seed(0)
    tau, mask = sample_noise_levels(512, T, ObjectiveConfig(long_context_prob=0.5, sparse_target_prob=1.0,
                                                            sparse_target_rate=0.25), gen)
    assert torch.equal(mask, (tau > 0).float())  # the targets, and only they, are noised and scored
    assert (mask[:, -1] == 1).all()  # every window has a target
    share = mask[:, :-1].mean()
    assert 0.23 < share < 0.27
    # no long-context prefix survives: targets are spread over the whole window
    assert mask[:, : T // 2].mean() > 0.2
    # at probability 0.5, half the windows are sparse; the others are as before
    tau_h, mask_h = sample_noise_levels(4000, T, ObjectiveConfig(long_context_prob=0.0, sparse_target_prob=0.5), gen)
    sparse = (mask_h == 0).any(1).float().mean()
    assert 0.46 < sparse < 0.54
    # a target keeps the level plain Diffusion Forcing would have drawn for it (uniform in [0, 1])
    plain, _ = sample_noise_levels(8, T, ObjectiveConfig(long_context_prob=0.0), torch.Generator().manual_seed(3))
    tau_s, mask_s = sample_noise_levels(8, T, ObjectiveConfig(long_context_prob=0.0, sparse_target_prob=1.0),
                                        torch.Generator().manual_seed(3))
    assert torch.equal(tau_s[mask_s == 1], plain[mask_s == 1]) and (tau_s[mask_s == 0] == 0).all()
    with pytest.raises(ValueError, match="sparse_target_rate"):
        TrainConfig(sparse_target_prob=0.5, sparse_target_rate=0.0)


def _loss_and_grads(model, window, plan):
    model.zero_grad()
    objective = WindowObjective(model, ObjectiveConfig())
    cache, total = None, 0.0
    for gi, spans in enumerate(plan.groups):
        loss, _, cache = objective(window, spans, cache, plan, gi == len(plan.groups) - 1)
        loss.backward()
        cache = None if cache is None else cache.detach()
        total += loss.detach().item()
    return total, [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.fixture
def window_and_model(fixed_source):
    torch.manual_seed(0)
    model = LSSVWM(dataclasses.replace(preset("tiny"), num_actions=6))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    b = fixed_source.next(12, 4)
    window = prepare_window(b.frames, b.actions, b.rewards, b.terminated, ObjectiveConfig(long_context_prob=0.0),
                            torch.Generator().manual_seed(3))
    return model, window


def test_temporal_segments_carry_state_and_truncate_the_gradient(window_and_model):
    model, window = window_and_model
    one = plan_window(4, 12, segment_frames=0, state_reset_prob=0.0)
    seg = plan_window(4, 12, segment_frames=4, state_reset_prob=0.0)
    assert seg.groups == [[(0, 4)], [(4, 8)], [(8, 12)]]
    loss_one, g_one = _loss_and_grads(model, window, one)
    loss_seg, g_seg = _loss_and_grads(model, window, seg)
    assert abs(loss_one - loss_seg) < 1e-6 * loss_one  # the carried state makes the forward exact
    assert max((a - b).abs().max() for a, b in zip(g_one, g_seg)) > 1e-6  # ...and the gradient is cut


def test_state_reset_zeroes_the_ssm_state_mid_window(window_and_model):
    model, window = window_and_model
    plan = plan_window(4, 12, segment_frames=0, state_reset_prob=1.0, generator=torch.Generator().manual_seed(1))
    assert plan.reset_at is not None and plan.reset_mask.all()
    assert len(plan.groups) == 1 and len(plan.groups[0]) == 2  # split at reset_at, one graph
    none = dataclasses.replace(plan, reset_mask=torch.zeros(4, dtype=torch.bool))
    loss_reset, _ = _loss_and_grads(model, window, plan)
    loss_kept, _ = _loss_and_grads(model, window, none)
    loss_one, _ = _loss_and_grads(model, window, plan_window(4, 12, 0, 0.0))
    assert abs(loss_kept - loss_one) < 1e-6 * loss_one
    assert abs(loss_reset - loss_one) > 1e-3 * loss_one
    # about p of the windows are chosen
    share = sum(plan_window(1, 12, 0, 0.1, torch.Generator().manual_seed(s)).reset_mask.item() for s in range(2000)) / 2000
    assert 0.07 < share < 0.13


def test_micro_batches_accumulate_the_same_loss_and_gradient_as_one_pass(tmp_path, fixed_source):
    trainer = Trainer(tiny_cfg(), tmp_path, device="cpu", source=fixed_source, show_progress=False)
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(0.2 * torch.randn_like(p))  # move the adaLN gates off zero: every tensor gets a gradient
    b = fixed_source.next(8, 4)
    w = prepare_window(b.frames, b.actions, b.rewards, b.terminated, ObjectiveConfig(long_context_prob=0.5),
                       torch.Generator().manual_seed(3))
    plan = plan_window(4, 8, segment_frames=4, state_reset_prob=0.5, generator=torch.Generator().manual_seed(0))
    assert plan.reset_at is not None and 0 < plan.reset_mask.sum() < 4  # parts differ in their resets
    assert (w.loss_mask.sum(1) < 8).any()  # and in their loss masks (a clean long-context prefix)
    results = {}
    for m in (1, 2, 3):  # 3: parts of 1, 1 and 2 windows
        trainer.cfg = dataclasses.replace(trainer.cfg, micro_batches=m)
        logs = trainer.accumulate_gradients(w, plan, contextlib.nullcontext())
        results[m] = logs, [p.grad.clone() for p in trainer.model.parameters()]
    (logs_one, grads_one) = results[1]
    for m in (2, 3):
        logs, grads = results[m]
        assert logs["diffusion"] == pytest.approx(logs_one["diffusion"], rel=1e-5)
        assert logs["heads"] == pytest.approx(logs_one["heads"], rel=1e-5)
        assert max(float((a - b).abs().max() / b.abs().max().clamp(min=1e-12)) for a, b in zip(grads, grads_one)) < 1e-4


def test_micro_batches_must_split_every_steps_windows():
    with pytest.raises(ValueError, match="micro_batches"):
        TrainConfig(batch_frames=64, window_schedule=((0, 16), (10, 32)), micro_batches=3)  # 2 windows at 32 frames
    assert TrainConfig(batch_frames=64, window_schedule=((0, 16), (10, 32)), micro_batches=2).micro_batches == 2
    with pytest.raises(ValueError, match="micro_batches"):
        TrainConfig(micro_batches=0)


def test_blind_attention_changes_only_the_chosen_windows_and_keeps_the_random_stream(window_and_model):
    model, window = window_and_model
    draw = lambda p: plan_window(4, 12, 0, 0.1, torch.Generator().manual_seed(2), attention_blind_prob=p)  # noqa: E731
    off, on = draw(0.0), draw(1.0)
    assert off.blind_mask is None and on.blind_mask.all()
    assert off.reset_at == on.reset_at and torch.equal(off.reset_mask, on.reset_mask)  # drawn after, so unchanged
    loss_off, _ = _loss_and_grads(model, window, off)
    loss_on, _ = _loss_and_grads(model, window, on)
    assert abs(loss_on - loss_off) > 1e-3 * loss_off
    # windows left out of the mask are the plain pass, to float tolerance
    none = dataclasses.replace(on, blind_mask=torch.zeros(4, dtype=torch.bool))
    assert abs(_loss_and_grads(model, window, none)[0] - loss_off) < 1e-6 * loss_off
    share = sum(plan_window(1, 12, 0, 0.0, torch.Generator().manual_seed(s), attention_blind_prob=0.25).blind_mask.item()
                for s in range(2000)) / 2000
    assert 0.22 < share < 0.28


def long_context_window(source, seed=3):
    b = source.next(12, 4)  # every window keeps a clean prefix of 7-11 frames
    return prepare_window(b.frames, b.actions, b.rewards, b.terminated, ObjectiveConfig(long_context_prob=1.0),
                          torch.Generator().manual_seed(seed))


def test_own_context_commits_the_models_estimates_of_the_chosen_windows_prefix(fixed_source):
    # A fresh model predicts v = 0 (its output layers start at zero), so its estimate of a frame
    # noised to level tau, z = a x0 + s e1, is a z, and committing it at tau gives a (a z) + s e2.
    torch.manual_seed(0)
    model = LSSVWM(dataclasses.replace(preset("tiny"), num_actions=6))
    w = long_context_window(fixed_source)
    chosen = torch.tensor([True, False, True, True])
    out = own_context(model, w, chosen, 0.5, torch.Generator().manual_seed(7))

    rows, prefix = chosen.nonzero().squeeze(1), w.loss_mask == 0
    g = torch.Generator().manual_seed(7)
    e1, e2 = (torch.randn(w.x0[rows].shape, generator=g) for _ in range(2))
    a, s = alpha_sigma(torch.tensor(0.5))
    expected = a * (a * (a * w.x0[rows] + s * e1)).clamp(-1, 1) + s * e2
    p = prefix[rows]
    torch.testing.assert_close(out.z[rows][p], expected[p], rtol=0, atol=1e-6)
    assert (out.tau[rows][p] == 0.5).all()
    # the frames that count in the loss, and the windows not chosen, are untouched
    assert torch.equal(out.z[rows][~p], w.z[rows][~p]) and torch.equal(out.tau[rows][~p], w.tau[rows][~p])
    assert torch.equal(out.z[~chosen], w.z[~chosen]) and torch.equal(out.tau[~chosen], w.tau[~chosen])
    assert torch.equal(out.x0, w.x0) and torch.equal(out.loss_mask, w.loss_mask)


def test_own_context_estimates_each_frame_from_the_frames_before_it_only(window_and_model, fixed_source):
    model, _ = window_and_model  # weights moved off their initialisation: predictions depend on the inputs
    w = long_context_window(fixed_source)
    chosen = torch.ones(4, dtype=torch.bool)
    later = w.x0.clone()
    later[:, 5:] = -later[:, 5:]
    out = own_context(model, w, chosen, 0.5, torch.Generator().manual_seed(7))
    out_later = own_context(model, dataclasses.replace(w, x0=later), chosen, 0.5, torch.Generator().manual_seed(7))
    torch.testing.assert_close(out_later.z[:, :5], out.z[:, :5], rtol=0, atol=1e-5)
    assert (out_later.z[:, 5:7] - out.z[:, 5:7]).abs().max() > 0.1  # frames 5, 6 are in every prefix


def test_own_context_prob_draws_its_windows_last_and_trains(tmp_path, fixed_source):
    draw = lambda p: plan_window(4, 12, 0, 0.1, torch.Generator().manual_seed(2), 0.25, own_context_prob=p)  # noqa: E731
    off, on = draw(0.0), draw(1.0)
    assert off.own_context_mask is None and on.own_context_mask.all()
    assert off.reset_at == on.reset_at and torch.equal(off.blind_mask, on.blind_mask)  # drawn after them
    losses = {}
    for p in (0.0, 1.0):
        trainer = Trainer(tiny_cfg(window_schedule=((0, 12),), long_context_prob=1.0, own_context_prob=p), tmp_path / str(p),
                          device="cpu", source=type(fixed_source)(), show_progress=False)
        trainer.train_step()  # the first step's loss is the same either way: a fresh model predicts 0
        losses[p] = trainer.train_step()["diffusion"]
    assert torch.isfinite(torch.tensor(losses[1.0])) and abs(losses[1.0] - losses[0.0]) > 1e-4 * losses[0.0]
    with pytest.raises(ValueError, match="own_context_noise"):
        TrainConfig(own_context_prob=0.5, own_context_noise=0.0)
    with pytest.raises(ValueError, match="long_context_prob"):
        TrainConfig(own_context_prob=0.5, long_context_prob=0.0)


def test_attention_blind_prob_needs_both_mixers():
    with pytest.raises(ValueError, match="attention_blind_prob"):
        TrainConfig(model=variant(preset("tiny"), "mamba2"), attention_blind_prob=0.5)
    with pytest.raises(ValueError, match="probabilities"):
        TrainConfig(attention_blind_prob=1.5)
    assert TrainConfig(attention_blind_prob=0.5).attention_blind_prob == 0.5


def test_checkpoint_and_sample_intervals_are_checked():
    # save_every=0 used to pass the config and crash the first step with a ZeroDivisionError
    with pytest.raises(ValueError, match="save_every must be >= 1"):
        TrainConfig(save_every=0)
    with pytest.raises(ValueError, match="sample_every >= 0"):
        TrainConfig(sample_every=-1)
    assert TrainConfig(save_every=1, sample_every=0).save_every == 1


def test_gradual_context_extension_grows_the_window(tmp_path, fixed_source):
    asked = []

    class Recording:
        def __getattr__(self, name):
            return getattr(fixed_source, name)

        def next(self, window, batch):
            asked.append((window, batch))
            return fixed_source.next(window, batch)

    cfg = tiny_cfg(window_schedule=((0, 4), (3, 8), (5, 12)), batch_frames=48)
    Trainer(cfg, tmp_path, device="cpu", source=Recording()).fit(7)
    assert asked == [(4, 12)] * 3 + [(8, 6)] * 2 + [(12, 4)] * 2  # frames per step stay 48
    logged = [json.loads(line)["window"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == [w for w, _ in asked]


def test_logged_throughput_counts_every_step_since_the_last_row(tmp_path, fixed_source):
    class SlowSecondFetch:  # like the maze pool's re-render: every third fetch, never on a logged step
        calls = 0

        def __getattr__(self, name):
            return getattr(fixed_source, name)

        def next(self, window, batch):
            SlowSecondFetch.calls += 1
            if SlowSecondFetch.calls % 3 == 2:
                time.sleep(0.2)
            return fixed_source.next(window, batch)

    Trainer(tiny_cfg(log_every=3), tmp_path, device="cpu", source=SlowSecondFetch(), show_progress=False).fit(6)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["interval_steps"]) for r in rows] == [(3, 3), (6, 3)]
    for r in rows:
        assert r["data_seconds"] < 0.2  # the logged step's own fetch was quick ...
        wall = 3 * r["frames"] / r["interval_frames_per_s"]
        assert r["interval_data_share"] * wall >= 0.2  # ... the interval's slow one is counted


def test_ddp_two_processes_on_gloo(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(HERE / "ddp_worker.py"), str(tmp_path)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    params = [load_tensors(tmp_path / f"rank{r}", "model") for r in range(2)]
    assert all(torch.equal(params[0][k], params[1][k]) for k in params[0])  # gradients were averaged
    assert json.loads((resolve(tmp_path / "run") / "trainer_state.json").read_text())["world_size"] == 2


def test_ema_forgets_the_random_initialisation_early():
    from worldsim.train.trainer import ema_decay_at

    weight_of_init = 1.0
    for step in range(2000):
        weight_of_init *= ema_decay_at(step, 0.999)
    assert weight_of_init < 1e-3  # a plain 0.999 EMA would still hold 0.999**2000 = 13.5%
    assert ema_decay_at(100_000, 0.999) == 0.999


# scripts/export_checkpoint.py: an inference checkpoint from a run, with the run's training lineage
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "export_checkpoint.py"


def load_script():
    spec = importlib.util.spec_from_file_location("export_checkpoint", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_keeps_the_ema_in_half_precision_and_chains_the_stages(tmp_path, fixed_source):
    export = load_script().export
    first = Trainer(tiny_cfg(), tmp_path / "run1", device="cpu", source=fixed_source, show_progress=False)
    first.fit(3)
    stage1 = export(tmp_path / "run1", tmp_path / "ship1")
    model, config = load_model(stage1)
    for (name, a), b in zip(first.ema.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a.half().float(), b), name
    assert config["trained"]["steps"] == 3 and len(config["trained"]["stages"]) == 1

    second = Trainer(tiny_cfg(init_from=str(stage1)), tmp_path / "run2", device="cpu", source=fixed_source,
                     show_progress=False)
    second.init_from(stage1)
    second.fit(2)
    trained = json.loads((export(tmp_path / "run2", tmp_path / "ship2") / "config.json").read_text())["trained"]
    assert [s["steps"] for s in trained["stages"]] == [3, 2] and trained["steps"] == 5
    assert trained["stages"][1]["init_from"] == str(stage1)
    # the loss curve goes on from the first stage's: one row per logged step, counted from stage 1's start
    curve = [json.loads(line) for line in (tmp_path / "ship2" / "metrics.jsonl").read_text().splitlines()]
    assert [(row["stage"], row["step"], row["total_step"]) for row in curve] == [
        (1, 1, 1), (1, 2, 2), (1, 3, 3), (2, 1, 4), (2, 2, 5)]


def test_a_run_started_from_a_checkpoint_keeps_its_sampler_settings_through_resume(tmp_path, fixed_source):
    first = Trainer(tiny_cfg(), tmp_path / "a", device="cpu", source=fixed_source, show_progress=False)
    first.fit(2)
    config_path = resolve(tmp_path / "a") / "config.json"
    config = json.loads(config_path.read_text())
    assert config["sampling"] == dataclasses.asdict(SamplerSettings())
    config["sampling"] = {"steps": 2, "context_noise": 0.3}  # as if chosen by measurement for these weights
    config_path.write_text(json.dumps(config))

    second = Trainer(tiny_cfg(seed=1), tmp_path / "b", device="cpu", source=fixed_source, show_progress=False)
    second.init_from(tmp_path / "a")
    second.fit(1)
    expected = {**dataclasses.asdict(SamplerSettings()), "steps": 2, "context_noise": 0.3}
    assert json.loads((resolve(tmp_path / "b") / "config.json").read_text())["sampling"] == expected
    resumed = Trainer(tiny_cfg(seed=1), tmp_path / "b", device="cpu", source=fixed_source, show_progress=False)
    resumed.resume(tmp_path / "b")
    resumed.fit(2)
    assert json.loads((resolve(tmp_path / "b") / "config.json").read_text())["sampling"] == expected
