"""RMSNorm whose weight follows the input's dtype.

Under bf16 autocast the inputs of the model's RMSNorms are bf16 while their weights stay float32,
and `torch.rms_norm` then falls back from its fused kernel to a chain of elementwise ones (it
warns so on CUDA). Casting the weight to the input's dtype keeps the fused kernel; in float32
(CPU inference) nothing changes.
"""

import torch.nn.functional as F
from torch import Tensor, nn


class RMSNorm(nn.RMSNorm):
    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight.to(x.dtype), self.eps)
