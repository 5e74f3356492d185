"""The analytic FLOP count agrees with torch's FLOP counter on every linear layer, and its
attention and scan terms follow the window each architecture sees."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from worldsim.config import ARCHITECTURES, preset, variant
from worldsim.evaluation.flops import forward_flops_per_frame, mean_visible_frames, training_flops_per_frame
from worldsim.model import LSSVWM

LINEAR_PARTS = ("patchify", "conditioning", "mlp", "ssm_projections", "attention_projections")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_linear_layer_flops_match_torch_flop_counter(arch):
    cfg = variant(preset("tiny"), arch, sliding_window=3)
    B, T = 2, 6
    model = LSSVWM(cfg)
    x = torch.randn(B, T, cfg.channels, cfg.image_size, cfg.image_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, torch.rand(B, T), torch.randint(0, cfg.num_actions, (B, T)))
    counts = counter.get_flop_counts()["Global"]
    measured = sum(v for op, v in counts.items() if str(op) in ("aten.mm", "aten.addmm")) / (B * T)
    analytic = forward_flops_per_frame(cfg, T)
    assert measured == sum(analytic[p] for p in LINEAR_PARTS)


def test_attention_flops_follow_the_window():
    cfg = preset("tiny")  # window 2 frames, 16 tokens per frame, width 32, depth 2
    assert mean_visible_frames(6, 2) == (0 + 1 + 2 + 2 + 2 + 2) / 6
    f = forward_flops_per_frame(cfg, 6)
    keys = 16 * (1 + 1.5)
    assert f["attention_scores"] == 2 * 2 * (2 * 16 * 32 * keys)  # layers x (q.k, w.v) x 2 N D keys
    full, local = variant(cfg, "full_attention"), variant(cfg, "lssvwm")
    scores = lambda c, frames: forward_flops_per_frame(c, frames)["attention_scores"]  # noqa: E731
    grow = lambda c: scores(c, 400) / scores(c, 100)  # noqa: E731
    assert grow(full) == pytest.approx(4, rel=0.02) and grow(local) == pytest.approx(1, rel=0.02)
    assert training_flops_per_frame(cfg, 6) == 3 * f["total"]
    assert f["total"] == sum(v for k, v in f.items() if k != "total")
