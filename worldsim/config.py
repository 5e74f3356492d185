"""Model configuration: one dataclass, named presets, and the paper's architectures as variants.

Every mixer the paper compares is a setting of the same two per-layer mixers, so each baseline
is one config switch away from LSSVWM (see `variant`):

    architecture        SSM blocks per layer              attention
    lssvwm              mixed spatial blocks (paper)      frame-local, window k
    mamba2              one block = whole frame           none
    mamba2_local        one block = whole frame           frame-local, window k
    sliding_attention   none                              causal, window of many frames
    full_attention      none                              causal, unbounded (cache grows)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

ARCHITECTURES = ("lssvwm", "mamba2", "mamba2_local", "sliding_attention", "full_attention")


@dataclass(frozen=True)
class ModelConfig:
    # frames -> tokens
    image_size: int = 64
    channels: int = 3
    patch_size: int = 8
    # trunk
    width: int = 256
    depth: int = 8
    mlp_ratio: float = 4.0
    # mixers: per-layer SSM spatial blocks (b_h, b_w) in tokens; () = no SSM layers
    ssm_blocks: tuple[tuple[int, int], ...] = ((8, 8), (2, 2)) * 4
    attention: bool = True
    attn_window: int | None = 10  # frames back each token sees; None = full causal attention
    attn_heads: int = 4
    # Mamba-2 (SSD) inside BlockSSM
    ssm_state: int = 64
    ssm_headdim: int = 32
    ssm_expand: int = 2
    ssm_conv: int = 4
    ssm_chunk: int = 64
    # dt's initial range, Mamba-2's [1e-3, 1e-1]: "step" = per scan step (Mamba-2); "frame" = per
    # frame, spread over the block's b_h*b_w scan steps per frame, so that initial memory horizons
    # span ~1-1000 frames at every block size (benchmarks/ssm_memory_horizon.py)
    ssm_dt_init: str = "step"
    # actions: discrete -> embedding table of num_actions; continuous -> MLP over an action_dim vector
    action_type: str = "discrete"
    num_actions: int = 6
    action_dim: int = 0
    architecture: str = "lssvwm"

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.ssm_blocks and len(self.ssm_blocks) != self.depth:
            raise ValueError(f"ssm_blocks has {len(self.ssm_blocks)} entries for depth {self.depth}")
        g = self.grid
        for i, (bh, bw) in enumerate(self.ssm_blocks):
            if bh < 1 or bw < 1 or g % bh or g % bw:
                raise ValueError(f"layer {i}: SSM block ({bh}, {bw}) does not tile the {g}x{g} token grid")
        if not self.ssm_blocks and not self.attention:
            raise ValueError("a model needs SSM layers, attention, or both")
        if self.attn_window is not None and self.attn_window < 0:
            raise ValueError(f"attn_window must be >= 0 or None, got {self.attn_window}")
        if self.width % self.attn_heads:
            raise ValueError(f"width {self.width} is not divisible by attn_heads {self.attn_heads}")
        if (self.ssm_expand * self.width) % self.ssm_headdim:
            raise ValueError("ssm_expand * width must be divisible by ssm_headdim")
        if self.ssm_dt_init not in ("step", "frame"):
            raise ValueError(f"ssm_dt_init must be 'step' or 'frame', got {self.ssm_dt_init!r}")
        if self.action_type not in ("discrete", "continuous"):
            raise ValueError(f"action_type must be 'discrete' or 'continuous', got {self.action_type!r}")
        if self.action_type == "continuous" and self.action_dim < 1:
            raise ValueError("continuous actions need action_dim >= 1")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; choose from {ARCHITECTURES}")

    @property
    def grid(self) -> int:
        """Tokens per side of a frame."""
        return self.image_size // self.patch_size

    @property
    def tokens_per_frame(self) -> int:
        return self.grid * self.grid

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        d = dict(d)
        if "ssm_blocks" in d:
            d["ssm_blocks"] = tuple(tuple(int(v) for v in b) for b in d["ssm_blocks"])
        return cls(**d)


def mixed_blocks(grid: int, depth: int) -> tuple[tuple[int, int], ...]:
    """The paper mixes large and small spatial blocks across layers; it does not publish its
    per-layer values. We alternate whole-frame blocks (global spatial context in the state)
    with small blocks of grid/4 (many independent states, temporal neighbours close)."""
    small = max(1, grid // 4)
    return tuple((grid, grid) if i % 2 == 0 else (small, small) for i in range(depth))


PRESETS = {
    # tests: < 1M parameters, 16x16 frames of 4x4 tokens
    "tiny": dict(image_size=16, patch_size=4, width=32, depth=2, attn_heads=2, attn_window=2,
                 ssm_state=8, ssm_headdim=16, ssm_chunk=8, ssm_blocks=((4, 4), (2, 2))),
    "small": dict(image_size=64, patch_size=8, width=256, depth=8, attn_heads=4, attn_window=10,
                  ssm_state=64, ssm_headdim=32, ssm_blocks=mixed_blocks(8, 8)),
    "base": dict(image_size=64, patch_size=4, width=512, depth=12, attn_heads=8, attn_window=10,
                 ssm_state=64, ssm_headdim=64, ssm_blocks=mixed_blocks(16, 12)),
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return ModelConfig(**{**PRESETS[name], **overrides})


def variant(cfg: ModelConfig, architecture: str, sliding_window: int = 48) -> ModelConfig:
    """The same model with another mixer architecture (the paper's baselines).

    Depth is kept: the paper equalises its ~200M models by layer count. `parameter_matched`
    in the evaluation code adjusts width/depth when equal parameter counts are wanted.
    """
    whole = ((cfg.grid, cfg.grid),) * cfg.depth
    settings = {
        "lssvwm": dict(ssm_blocks=cfg.ssm_blocks or mixed_blocks(cfg.grid, cfg.depth), attention=True,
                       attn_window=cfg.attn_window if cfg.attn_window is not None else 10),
        "mamba2": dict(ssm_blocks=whole, attention=False),
        "mamba2_local": dict(ssm_blocks=whole, attention=True,
                             attn_window=cfg.attn_window if cfg.attn_window is not None else 10),
        "sliding_attention": dict(ssm_blocks=(), attention=True, attn_window=sliding_window),
        "full_attention": dict(ssm_blocks=(), attention=True, attn_window=None),
    }
    if architecture not in settings:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {ARCHITECTURES}")
    return dataclasses.replace(cfg, architecture=architecture, **settings[architecture])
