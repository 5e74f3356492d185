"""Analytic FLOP count of the model, for model FLOP utilisation (MFU).

Counts the matrix-multiply FLOPs (2 per multiply-add) of one forward pass, per frame, when the
model runs over a training window of `frames` frames: linear layers, attention scores and
values over the keys each query may see, and the SSD scan's matmuls. Elementwise work (norms,
activations, the depthwise conv, adaLN modulation) is left out, as in the usual MFU definition
(PaLM, appendix B); so is work the implementation does but the model does not need (masked-out
attention keys): MFU measures useful work. Training is taken as 3x the forward (the backward
costs two forwards).
"""

from __future__ import annotations

from worldsim.config import ModelConfig


def mean_visible_frames(frames: int, window: int | None) -> float:
    """Average over a window's frames t = 0..frames-1 of the earlier frames t's queries attend to."""
    return sum(t if window is None else min(t, window) for t in range(frames)) / frames


def forward_flops_per_frame(cfg: ModelConfig, frames: int) -> dict[str, float]:
    """Matmul FLOPs of one forward pass per frame, by part, and their "total"."""
    N, D, C, p = cfg.tokens_per_frame, cfg.width, cfg.channels, cfg.patch_size
    mm = lambda m, k, n: 2.0 * m * k * n  # noqa: E731  (an [m, k] x [k, n] product)
    sublayers = int(bool(cfg.ssm_blocks)) + int(cfg.attention) + 1
    out = {
        "patchify": mm(N, C * p * p, D) * 2,  # in and out
        # per frame, not per token: noise-level MLP, adaLN of every layer and the output, heads
        "conditioning": mm(1, D, D) * 2 + cfg.depth * mm(1, D, 3 * sublayers * D) + mm(1, D, 2 * D)
        + mm(1, D, D) + mm(1, D, 2),
        "mlp": cfg.depth * (mm(N, D, int(cfg.mlp_ratio * D)) * 2),
        "ssm_projections": 0.0, "ssd_scan": 0.0, "attention_projections": 0.0, "attention_scores": 0.0,
    }
    d_in, n = cfg.ssm_expand * D, cfg.ssm_state
    for bh, bw in cfg.ssm_blocks:
        out["ssm_projections"] += mm(N, D, 2 * d_in + 2 * n + d_in // cfg.ssm_headdim) + mm(N, d_in, D)
        # SSD (Mamba-2, one B/C group) per token, chunk length Q: within a chunk C.B^T over the
        # (Q+1)/2 causal pairs on average, then those scores times x; across chunks the chunk
        # state B^T x and its read-out C.h.
        Q = min(cfg.ssm_chunk, frames * bh * bw)
        out["ssd_scan"] += N * ((Q + 1) * (n + d_in) + 2 * mm(1, n, d_in))
    if cfg.attention:
        keys = N * (1 + mean_visible_frames(frames, cfg.attn_window))  # own frame + earlier ones
        out["attention_projections"] = cfg.depth * (mm(N, D, 3 * D) + mm(N, D, D))
        out["attention_scores"] = cfg.depth * (mm(N, D, keys) * 2)  # q.k^T and weights.v
    out["total"] = sum(out.values())
    return out


def training_flops_per_frame(cfg: ModelConfig, frames: int) -> float:
    return 3.0 * forward_flops_per_frame(cfg, frames)["total"]
