"""The parameterization in worldsim/diffusion.py: v- and x0-prediction are one loss and one sampler step."""

import pytest
import torch

from worldsim.config import ModelConfig
from worldsim.diffusion import X0_LOSS_MIN_SIGMA, add_noise, alpha_sigma, ddim_step, diffusion_loss, predict_x0


def noised(B=3, T=4, tau_range=(0.1, 1.0), seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(B, T, 3, 8, 8, generator=g) * 2 - 1
    eps = torch.randn(B, T, 3, 8, 8, generator=g)
    lo, hi = tau_range
    tau = lo + (hi - lo) * torch.rand(B, T, generator=g)
    return x0, eps, tau, add_noise(x0, tau, eps)


def test_an_x0_predictions_loss_is_the_v_loss_of_the_v_it_implies():
    x0, eps, tau, z = noised()
    assert alpha_sigma(tau)[1].min() > X0_LOSS_MIN_SIGMA  # above the floor the two must agree exactly
    guess = x0 + 0.3 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    a, s = (t[..., None, None, None] for t in alpha_sigma(tau))
    implied_v = (a * z - guess) / s  # x0 = alpha z - sigma v
    mask = torch.ones(tau.shape)
    mask[0, :2] = 0
    want = diffusion_loss(implied_v, x0, eps, tau, mask, "v")
    assert torch.allclose(diffusion_loss(guess, x0, eps, tau, mask, "x0"), want, rtol=1e-5)
    assert want > 0.1


def test_the_x0_loss_floors_sigma_near_a_clean_frame():
    x0, eps, tau, _ = noised(tau_range=(0.0, 0.001))
    guess = x0 + 0.1
    loss = diffusion_loss(guess, x0, eps, tau, torch.ones(tau.shape), "x0")
    assert torch.allclose(loss, torch.tensor(0.1 ** 2 / X0_LOSS_MIN_SIGMA ** 2), rtol=1e-4)


@pytest.mark.parametrize("prediction", ["v", "x0"])
def test_an_exact_prediction_steps_to_the_same_frame_noised_less(prediction):
    x0, eps, tau, z = noised()
    a, s = (t[..., None, None, None] for t in alpha_sigma(tau))
    exact = a * eps - s * x0 if prediction == "v" else x0
    tau_next = tau * 0.5
    estimate, z_next = ddim_step(z, exact, tau, tau_next, prediction)
    assert torch.allclose(estimate, x0, atol=1e-5)
    assert torch.allclose(z_next, add_noise(x0, tau_next, eps), atol=1e-4)
    assert torch.allclose(predict_x0(z, exact, tau, prediction), x0, atol=1e-5)


def test_a_model_config_names_an_unknown_prediction():
    with pytest.raises(ValueError, match="prediction must be 'v' or 'x0', got 'eps'"):
        ModelConfig(prediction="eps")
