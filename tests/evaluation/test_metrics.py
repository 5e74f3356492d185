"""PSNR and SSIM give the textbook values on inputs whose answer is known."""

import numpy as np
import pytest

from worldsim.evaluation.metrics import PSNR_CAP, psnr, ssim, summarize


def frames(seed=0, shape=(3, 16, 16, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_identical_frames_have_capped_psnr_and_unit_ssim():
    f = frames()
    assert np.all(psnr(f, f) == PSNR_CAP)
    np.testing.assert_allclose(ssim(f, f), 1.0)


@pytest.mark.parametrize("offset", [1, 5, 32])
def test_psnr_of_a_known_error_matches_the_formula(offset):
    truth = np.full((2, 16, 16, 3), 128, dtype=np.uint8)
    signs = np.random.default_rng(1).choice([-1, 1], truth.shape)
    noisy = (truth.astype(int) + offset * signs).astype(np.uint8)  # every pixel off by exactly `offset`
    np.testing.assert_allclose(psnr(noisy, truth), 20 * np.log10(255 / offset))


def test_psnr_of_gaussian_noise_matches_its_mse():
    truth = frames(2, (4, 32, 32, 3)) // 2 + 64  # away from 0 and 255: the noise is not clipped
    noise = np.random.default_rng(3).normal(0, 8, truth.shape).round().clip(-60, 60).astype(int)
    noisy = (truth + noise).astype(np.uint8)
    mse = (noise.astype(float) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(psnr(noisy, truth), 10 * np.log10(255**2 / mse))
    assert np.all(np.abs(psnr(noisy, truth) - 20 * np.log10(255 / 8)) < 0.3)  # sigma 8 -> ~30.0 dB


def test_ssim_drops_with_noise_and_rejects_mismatched_frames():
    truth = frames(4)
    noise = np.random.default_rng(5).normal(0, 1, truth.shape)
    noisy = lambda sigma: np.clip(truth + sigma * noise, 0, 255).astype(np.uint8)  # noqa: E731
    assert np.all(1 > ssim(noisy(10), truth)) and np.all(ssim(noisy(10), truth) > ssim(noisy(60), truth))
    with pytest.raises(ValueError, match="uint8"):
        psnr(truth.astype(np.float32), truth)
    with pytest.raises(ValueError, match="shape"):
        ssim(truth[:2], truth)


def test_summary_handles_episodes_of_different_lengths():
    per_frame = {"psnr": [np.array([10.0, 20.0, 30.0]), np.array([20.0])]}
    s = summarize(per_frame)
    assert s["mean"] == {"psnr": 20.0, "lpips": None} and "worldsim fetch-lpips" in s["lpips_note"]
    assert s["per_distance"]["distance"] == [1, 2, 3]
    assert s["per_distance"]["psnr"] == [15.0, 20.0, 30.0]
    assert s["per_distance"]["episodes"] == [2, 1, 1]
    assert s["per_episode"]["psnr"] == [20.0, 20.0]
