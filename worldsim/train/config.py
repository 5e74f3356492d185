"""Training configuration: one dataclass, presets matching the model presets, JSON round trip."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from worldsim.config import ModelConfig, preset


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = dataclasses.field(default_factory=lambda: preset("tiny"))
    batch_size: int = 8  # windows per optimizer step (per process under torchrun)
    batch_frames: int = 0  # > 0: windows per step = batch_frames // window, so longer windows keep the step's size
    # gradual context extension (seed article): (from_step, window length in frames), growing
    window_schedule: tuple[tuple[int, int], ...] = ((0, 16),)
    segment_frames: int = 0  # temporal segments of S frames, state carried, gradient cut between; 0 = one pass
    # gradient accumulation: each step's windows run in this many parts, one backward each, so activation
    # memory is a part's; the step's loss and gradient are the same as in one pass
    micro_batches: int = 1
    state_reset_prob: float = 0.1  # state-reset regularization: P(a window's SSM states reset at a random frame)
    long_context_prob: float = 0.5  # the paper's long-context training (clean prefix > half the window)
    # sparse-target windows (diffusion.sample_noise_levels): P(a window noises only a share
    # sparse_target_rate of its frames, the rest clean), training targets among true frames
    sparse_target_prob: float = 0.0
    sparse_target_rate: float = 0.25
    # blind attention: P(a window's frame-local attention sees each frame alone, so only the SSM carries its past)
    attention_blind_prob: float = 0.0
    # own context: P(a long-context window's clean prefix is replaced by the model's own estimates of
    # it, committed at own_context_noise -- the context noise the simulator commits generated frames at)
    own_context_prob: float = 0.0
    own_context_noise: float = 0.5
    reward_weight: float = 1.0
    termination_weight: float = 0.1
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    total_steps: int = 10_000  # length of the cosine schedule
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    save_every: int = 500
    sample_every: int = 0  # 0: no sample videos
    log_every: int = 10
    seed: int = 0
    # data: the built-in maze generated on the training device, or a directory of shards
    data: str = "maze"
    maze_size: int = 9
    maze_pool: int = 256  # mazes generated in lockstep; batches are slices of the pool
    episode_length: int = 2000
    # maze plans (worldsim.data.plans, e.g. cue recall trajectories): this fraction of each batch's
    # windows is cut from them, the rest from `data`
    plans: str = ""
    plans_fraction: float = 0.5
    init_from: str = ""  # a checkpoint (path or shipped name) whose weights start a new run; "" = random init
    # parameters (name suffixes, e.g. "ssm.dt_bias") that keep this run's fresh initialisation instead
    # of init_from's values: re-seeding the SSM's memory horizons in weights trained with other ones
    init_reinit: tuple[str, ...] = ()
    # growing a model: layer i starts from init_from's layer init_layers[i], or -1 for a new layer at
    # its fresh initialisation (adaLN-Zero gates at zero: the identity until trained); () = same layers
    init_layers: tuple[int, ...] = ()
    # layers (of this model) whose adaLN gates start shut after init_layers: with init_layers naming a
    # trained layer twice, the copy starts as the identity but already computes what its source does
    init_shut_layers: tuple[int, ...] = ()

    def __post_init__(self):
        steps = [s for s, _ in self.window_schedule]
        if not self.window_schedule or steps[0] != 0 or steps != sorted(steps):
            raise ValueError(f"window_schedule must start at step 0 and be sorted, got {self.window_schedule}")
        if any(w < 1 for _, w in self.window_schedule):
            raise ValueError(f"window lengths must be >= 1, got {self.window_schedule}")
        if not all(0 <= p <= 1 for p in (self.state_reset_prob, self.long_context_prob, self.attention_blind_prob,
                                         self.own_context_prob, self.sparse_target_prob)):
            raise ValueError("probabilities must lie in [0, 1]")
        if not 0 < self.sparse_target_rate <= 1:
            raise ValueError(f"sparse_target_rate is the share of a sparse window's frames that are targets, in (0, 1], "
                             f"got {self.sparse_target_rate}")
        if not 0 < self.own_context_noise <= 1:
            raise ValueError(f"own_context_noise is a noise level in (0, 1], got {self.own_context_noise}")
        if self.own_context_prob and not self.long_context_prob:
            raise ValueError("own_context_prob replaces the clean prefix of long-context windows: "
                             "it needs long_context_prob > 0")
        if self.attention_blind_prob and not (self.model.attention and self.model.ssm_blocks):
            raise ValueError("attention_blind_prob needs a model with both frame-local attention and SSM layers "
                             f"(architecture {self.model.architecture!r} lacks one; blinding it would cut it off from the past)")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.save_every < 1 or self.sample_every < 0:
            raise ValueError(f"save_every must be >= 1 (steps between checkpoints) and sample_every >= 0 (0: no sample "
                             f"videos), got {self.save_every} and {self.sample_every}")
        if self.segment_frames < 0 or self.batch_size < 1:
            raise ValueError("segment_frames must be >= 0 and batch_size >= 1")
        fewest = min(self.batch_at(s) for s, _ in self.window_schedule)
        if not 1 <= self.micro_batches <= fewest:
            raise ValueError(f"micro_batches splits each step's windows into parts: it must lie in [1, {fewest}] "
                             f"(the fewest windows a step of this schedule has), got {self.micro_batches}")
        if self.plans and (self.data != "maze" or not 0 < self.plans_fraction <= 1):
            raise ValueError("plans are mixed into the built-in maze's windows: they need data='maze' and "
                             f"plans_fraction in (0, 1], got data={self.data!r}, plans_fraction={self.plans_fraction}")
        if self.init_reinit and not self.init_from:
            raise ValueError("init_reinit names parameters to re-initialise in init_from's weights: set init_from")
        if self.init_layers and (not self.init_from or len(self.init_layers) != self.model.depth
                                 or min(self.init_layers) < -1):
            raise ValueError(f"init_layers maps each of the model's {self.model.depth} layers to a layer of init_from "
                             f"(or -1 for a new one) and needs init_from; got {list(self.init_layers)} "
                             f"with init_from={self.init_from!r}")
        if self.init_shut_layers and (not self.init_from or not all(0 <= i < self.model.depth
                                                                    for i in self.init_shut_layers)):
            raise ValueError(f"init_shut_layers names layers of the model (0 to {self.model.depth - 1}) whose gates "
                             f"start shut in init_from's weights; got {list(self.init_shut_layers)} "
                             f"with init_from={self.init_from!r}")

    def window_at(self, step: int) -> int:
        """Training window length at `step` (gradual context extension)."""
        return [w for s, w in self.window_schedule if s <= step][-1]

    def batch_at(self, step: int) -> int:
        if self.batch_frames:
            return max(1, self.batch_frames // self.window_at(step))
        return self.batch_size

    def max_batch(self) -> int:
        return max(self.batch_at(s) for s, _ in self.window_schedule)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        if set(d) - known:
            raise ValueError(f"unknown training config keys: {sorted(set(d) - known)}")
        model = d.pop("model", "tiny")
        d["model"] = preset(model) if isinstance(model, str) else ModelConfig.from_dict(model)
        if "window_schedule" in d:
            d["window_schedule"] = tuple(tuple(int(v) for v in x) for x in d["window_schedule"])
        if "init_reinit" in d:
            d["init_reinit"] = tuple(str(v) for v in d["init_reinit"])
        for key in ("init_layers", "init_shut_layers"):
            if key in d:
                d[key] = tuple(int(v) for v in d[key])
        return cls(**d)


PRESETS = {
    "tiny": dict(model="tiny", batch_size=4, window_schedule=((0, 8), (20, 12)), warmup_steps=5,
                 total_steps=200, save_every=50, lr=2e-3, data="maze", maze_pool=8, episode_length=200),
    # the shipped maze model's recipe: windows grow from 32 to 256 frames
    "small": dict(model="small", batch_frames=2048, window_schedule=((0, 32), (1500, 64), (3000, 128), (4000, 256)),
                  lr=4e-4, warmup_steps=300, total_steps=5000, save_every=500, sample_every=2000),
    "base": dict(model="base", batch_size=16, window_schedule=((0, 32), (4000, 64), (10000, 128), (20000, 256)),
                 segment_frames=64, warmup_steps=500, total_steps=100_000, save_every=1000, sample_every=5000),
}


def load_train_config(name_or_path: str, **overrides) -> TrainConfig:
    """A preset name or a JSON file of TrainConfig fields ("model" may be a preset name or a dict)."""
    if name_or_path in PRESETS:
        d = dict(PRESETS[name_or_path])
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ValueError(f"--config {name_or_path!r}: neither a preset ({sorted(PRESETS)}) nor a JSON file")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    d.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(d)
