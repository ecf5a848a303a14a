"""Stems of 3D ConvNets: the first conv (with norm and activation) and an optional max pool."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from deepvideo.nn.conv import NormBuilder, conv3d, resolve_act, resolve_norm


def stem3d(
    out_channels: int,
    kernel: Sequence[int],
    stride: Sequence[int] = (1, 2, 2),
    *,
    in_channels: int = 3,
    norm: NormBuilder | str = "bn",
    act="relu",
    pool: bool = False,
) -> nn.Sequential:
    """conv -> norm -> act (-> 1×3×3 max pool, stride 1×2×2): indices 0..3."""
    layers = [
        conv3d(in_channels, out_channels, kernel, stride),
        resolve_norm(norm)(out_channels),
        resolve_act(act)(),
    ]
    if pool:
        layers.append(nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
    return nn.Sequential(*layers)
