"""The simulator's memory: per-layer mixer states with a leading batch dimension.

For LSSVWM every tensor here has a fixed size, whatever the episode length: per SSM layer one
Mamba-2 state per spatial block plus the short conv tail, per attention layer a ring of the last
k frames' keys and values. Only full causal attention grows (its "ring" is every past frame).
Because the whole memory is a handful of tensors, snapshot/restore is a copy and batching
is the leading dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class InferenceCache:
    t: Tensor  # [B] int64: frames committed so far, per batch element
    layers: list[dict[str, Tensor]]  # one dict per trunk layer, e.g. {"ssm": ..., "conv": ..., "k": ..., "v": ..., "time": ...}

    # Tensors whose second dimension is a growing frame/token axis (full causal attention):
    # batch elements of different lengths are padded, with time = -1 marking empty slots.
    _GROWING = ("k", "v", "time")

    @property
    def batch_size(self) -> int:
        return self.t.shape[0]

    def map(self, fn) -> "InferenceCache":
        return InferenceCache(fn(self.t), [{name: fn(x) for name, x in layer.items()} for layer in self.layers])

    def snapshot(self) -> "InferenceCache":
        """An independent copy: later steps on either do not affect the other."""
        return self.map(lambda x: x.clone())

    def detach(self) -> "InferenceCache":
        """Cut the gradient at a temporal segment boundary (truncated BPTT)."""
        return self.map(lambda x: x.detach())

    def to(self, device) -> "InferenceCache":
        return self.map(lambda x: x.to(device))

    def select(self, index) -> "InferenceCache":
        """Batch elements `index` (a list, slice or tensor of indices) as a cache of their own."""
        return self.map(lambda x: x[index])

    def reset_ssm(self, mask: Tensor) -> "InferenceCache":
        """Zero the SSM and conv states of the batch elements where mask [B] is True
        (state-reset regularization). Attention memory is kept."""
        keep = (~mask).to(torch.float32)

        def reset(name, x):
            if name in ("ssm", "conv"):
                return x * keep.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)
            return x

        return InferenceCache(self.t, [{n: reset(n, x) for n, x in layer.items()} for layer in self.layers])

    def put(self, index: Tensor | list[int], other: "InferenceCache") -> None:
        """Write `other` (a cache of len(index) elements) into batch elements `index`, in place."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.t.device)
        self.t[index] = other.t.to(self.t.device)
        for mine, theirs in zip(self.layers, other.layers):
            for name, x in theirs.items():
                dst = mine[name]
                if name in self._GROWING and x.shape[1] != dst.shape[1]:
                    length = max(x.shape[1], dst.shape[1])
                    dst = _pad_growing(name, dst, length)
                    x = _pad_growing(name, x, length)
                    mine[name] = dst
                dst[index] = x.to(dst.device, dst.dtype)

    def nbytes(self) -> int:
        return sum(x.numel() * x.element_size() for layer in self.layers for x in layer.values())

    def state_dict(self) -> dict[str, Tensor]:
        """Flat name -> tensor mapping (safetensors-friendly)."""
        out = {"t": self.t}
        for i, layer in enumerate(self.layers):
            out.update({f"layers.{i}.{name}": x for name, x in layer.items()})
        return out


def _pad_growing(name: str, x: Tensor, length: int) -> Tensor:
    """Pad a growing attention tensor [B, L, ...] along L (keys/values with 0, time with -1)."""
    extra = length - x.shape[1]
    if extra == 0:
        return x
    pad = torch.full((x.shape[0], extra, *x.shape[2:]), -1 if name == "time" else 0, dtype=x.dtype, device=x.device)
    return torch.cat([x, pad], dim=1)
