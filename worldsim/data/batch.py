"""`TrajectoryBatch`: the unit of trajectory data every producer returns and every trainer reads.

Alignment (Gym's, used throughout worldsim): `actions[:, t]` is the action taken after observing
`frames[:, t]`; `rewards[:, t]` and `terminated[:, t]` are what that step returned; so
`frames[:, t + 1]` is the result of `actions[:, t]`. The observation after the last action of a
window is not in it (it is the next window's first frame when the episode continues).
"""

from dataclasses import dataclass, fields

import torch


@dataclass
class TrajectoryBatch:
    frames: torch.Tensor  # uint8 [B, T, H, W, 3]
    actions: torch.Tensor  # int64 [B, T] (discrete) or float32 [B, T, A] (continuous)
    rewards: torch.Tensor  # float32 [B, T]
    terminated: torch.Tensor  # bool [B, T]
    first: torch.Tensor  # bool [B]: the window starts an episode (reset any carried state)

    def to(self, device) -> "TrajectoryBatch":
        return TrajectoryBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def collate_windows(samples: list[dict]) -> TrajectoryBatch:
    """Stack per-window dicts (as `ShardWindowDataset` returns) into a batch: a DataLoader collate_fn."""
    return TrajectoryBatch(**{f.name: torch.stack([s[f.name] for s in samples]) for f in fields(TrajectoryBatch)})


def concat_batches(batches: list[TrajectoryBatch]) -> TrajectoryBatch:
    """One batch of the windows of several (same window length, same device)."""
    if len(batches) == 1:
        return batches[0]
    return TrajectoryBatch(**{f.name: torch.cat([getattr(b, f.name) for b in batches]) for f in fields(TrajectoryBatch)})
