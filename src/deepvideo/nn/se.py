"""Squeeze-and-excitation for 3D feature maps.

Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018: global average pool, a bottleneck
of two 1×1×1 convs (ReLU between) and a sigmoid gate scaling every channel. X3D
(Feichtenhofer, CVPR 2020) uses it after the depthwise 3×3×3 conv of every other block
with a reduction ratio of 1/16 (rounded to a multiple of 8).
"""

from __future__ import annotations

import torch
from torch import nn


def round_width(width: float, multiplier: float = 1.0, min_width: int = 8, divisor: int = 8) -> int:
    """``width * multiplier`` rounded to the nearest multiple of ``divisor`` (X3D's rule).

    Never below ``min_width`` and never more than 10% below the unrounded value.
    """
    w = width * multiplier
    rounded = max(min_width, int(w + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * w:
        rounded += divisor
    return int(rounded)


class SqueezeExcite3d(nn.Module):
    """``x * sigmoid(fc2(relu(fc1(avgpool(x)))))`` with 1×1×1 convs as the FC layers."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv3d(channels, reduced, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv3d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3, 4), keepdim=True)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(s))))
