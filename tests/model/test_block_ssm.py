import dataclasses

import pytest
import torch
import torch.nn.functional as F

from worldsim.config import ModelConfig, preset
from worldsim.model import LSSVWM
from worldsim.model.block_ssm import BlockSSM


def initial_dt(block, dt_init):
    torch.manual_seed(0)
    ssm = BlockSSM(32, block, grid=8, d_state=8, headdim=16, dt_init=dt_init)
    return F.softplus(ssm.dt_bias.detach())


@pytest.mark.parametrize("block", [(8, 8), (2, 2), (4, 2)])
def test_frame_dt_init_gives_each_frame_the_decay_mamba2_gives_each_step(block):
    # the state's decay per frame is exp(-sum over the block's b_h*b_w steps of dt*A): spreading
    # Mamba-2's per-step dt over those steps makes the per-frame decay Mamba-2's per-step one
    steps = block[0] * block[1]
    per_step = initial_dt(block, "step")
    per_frame = initial_dt(block, "frame") * steps
    torch.testing.assert_close(per_frame, per_step, rtol=1e-4, atol=0)
    assert per_step.min() >= 1e-3 * 0.999 and per_step.max() <= 0.1 * 1.001


def test_model_config_chooses_the_dt_init_per_layer_block():
    cfg = dataclasses.replace(preset("tiny"), ssm_dt_init="frame")  # blocks (4, 4) and (2, 2)
    torch.manual_seed(0)
    frame = LSSVWM(cfg)
    torch.manual_seed(0)
    step = LSSVWM(dataclasses.replace(cfg, ssm_dt_init="step"))
    for f, s in zip(frame.layers, step.layers):
        steps = f.ssm.block[0] * f.ssm.block[1]
        torch.testing.assert_close(F.softplus(f.ssm.dt_bias) * steps, F.softplus(s.ssm.dt_bias), rtol=1e-4, atol=0)


def test_dt_init_is_checked_and_old_configs_keep_mamba2s_init():
    with pytest.raises(ValueError, match="ssm_dt_init"):
        dataclasses.replace(preset("tiny"), ssm_dt_init="token")
    old = {k: v for k, v in dataclasses.asdict(preset("tiny")).items() if k != "ssm_dt_init"}
    assert ModelConfig.from_dict(old).ssm_dt_init == "step"


@pytest.mark.parametrize("block", [(8, 8), (2, 2), (1, 1)])
def test_read_only_pass_gives_the_outputs_of_a_committing_one(block):
    # A sampler pass that commits nothing (update_state=False) scans every token from the carried
    # state in one read-only scan and forms no state; a committing pass over the same frames scans
    # the committed frame, keeps its state, then scans the rest from it: the same outputs.
    torch.manual_seed(0)
    ssm = BlockSSM(32, block, grid=8, d_state=8, headdim=16).eval()
    with torch.no_grad():
        _, state = ssm(torch.randn(2, 3, 8, 8, 32), ssm.init_state(2, "cpu", torch.float32))
        x = torch.randn(2, 2, 8, 8, 32)
        y_commit, new_state = ssm(x, state, commit_frames=1)
        y_read_only, none = ssm(x, state, commit_frames=1, update_state=False)
    assert none is None and new_state is not None
    torch.testing.assert_close(y_read_only, y_commit, rtol=1e-5, atol=1e-6)
