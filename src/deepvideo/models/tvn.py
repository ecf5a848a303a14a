"""Tiny Video Networks (Piergiovanni, Angelova & Ryoo, "Tiny Video Networks", 2019): the searched
architecture TVN-1 as a preset (the search itself is not reproduced).

A TVN is a sequence of blocks, each repeated ``repeats`` times. One block on ``[N, C, T, H, W]``:

1. spatial layer: ``"std"`` (1×1 conv to ``filters``, then a ``k×k`` conv with spatial stride),
   ``"depth"`` (1×1 conv, then a ``k×k`` depthwise conv), or ``"maxpool"`` / ``"avgpool"``
   (``k×k`` pooling, channels unchanged); every conv is followed by norm and activation;
2. temporal layer: ``"1d"`` (a ``k×1×1`` conv to ``filters`` with temporal stride, norm,
   activation) or ``"maxpool"`` / ``"avgpool"`` over time; none for ``k = 1``;
3. expansion: 1×1 conv to ``expand·filters`` channels and norm (no activation);
4. squeeze-and-excitation (ratio ``squeeze``, at least 8 channels) and context gating
   (``x · sigmoid(W mean(x) + b)``, Xie et al. 2018), the means over time and space;
5. a skip connection (1×1 conv with the block's spatial stride and norm) when ``skip`` is set and
   the number of frames is unchanged; then the activation.

Repeats 2, 3, ... run with stride 1 and use the temporal layer only every other time (repeat 2
without, 3 with, ...). The head averages over time and space, drops out (0.5) and classifies.
Padding is TensorFlow's "same" (``ceil(size / stride)`` outputs, extra padding at the end; pooled
averages count only real inputs), as the searched networks were run. TVN-1 sees 2 frames
(stride 4) of 224²; its block table is the authors' ``found_tvns.py`` (google-research
``tiny_video_nets``; in its third block the non-local layer is removed, as there). Its only
temporal layer is the first unit's max pool over the two frames (everything after it is per
frame), so TVN-1 cannot tell the order of its frames: a clip and its time reversal get the same
scores, and classes that are each other's reversal (move left / right, grow / shrink) are
indistinguishable to it. The paper gives
no parameter count for TVN-1 that we could check, so none is registered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.conv import ActBuilder, NormBuilder, resolve_act, resolve_norm
from deepvideo.nn.inputs import rgb_input
from deepvideo.spec import InputSpec

PAPER = "Piergiovanni, Angelova & Ryoo, Tiny Video Networks, 2019 (arXiv:1910.06961)"
SPATIAL_TYPES = ("std", "depth", "maxpool", "avgpool")
TEMPORAL_TYPES = ("1d", "maxpool", "avgpool")


@dataclass(frozen=True)
class TVNBlock:
    """One searched block (the fields of the authors' block table)."""

    spatial_type: str
    spatial_kernel: int
    spatial_stride: int
    temporal_type: str
    temporal_kernel: int
    temporal_stride: int
    filters: int
    expand: int
    squeeze: float
    context_gate: bool
    skip: bool
    repeats: int


TVN1 = (
    TVNBlock("std", 4, 2, "maxpool", 2, 2, 64, 4, 0.0, True, False, 2),
    TVNBlock("maxpool", 3, 2, "1d", 1, 1, 128, 4, 0.9067600752736579, False, False, 1),
    TVNBlock("depth", 5, 3, "avgpool", 1, 1, 128, 4, 0.0, True, True, 2),
    TVNBlock("std", 3, 2, "avgpool", 1, 1, 256, 8, 0.7265534208526172, True, False, 2),
)


def same_pad(x: torch.Tensor, kernel, stride, value: float = 0.0) -> torch.Tensor:
    """Pad ``[N, C, T, H, W]`` as TensorFlow's "same": ``ceil(n / s)`` outputs, the odd pixel at
    the end."""
    pads = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride, strict=True))):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class SameConv(nn.Module):
    """Conv3d (no bias) with "same" padding, then norm and (optionally) the activation."""

    def __init__(self, cin: int, cout: int, kernel, stride, norm: NormBuilder, act: ActBuilder | None,
                 groups: int = 1) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv = nn.Conv3d(cin, cout, kernel, stride, groups=groups, bias=False)
        self.norm = norm(cout)
        self.act = act() if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(same_pad(x, self.kernel, self.stride))))


class SamePool(nn.Module):
    """Max or average pooling with "same" padding (averages over the real inputs only)."""

    def __init__(self, kind: str, kernel, stride) -> None:
        super().__init__()
        self.kind, self.kernel, self.stride = kind, tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "maxpool":
            padded = same_pad(x, self.kernel, self.stride, float("-inf"))
            return F.max_pool3d(padded, self.kernel, self.stride)
        total = F.avg_pool3d(same_pad(x, self.kernel, self.stride), self.kernel, self.stride)
        ones = same_pad(torch.ones_like(x[:1, :1]), self.kernel, self.stride)
        return total / F.avg_pool3d(ones, self.kernel, self.stride)


class ChannelGate(nn.Module):
    """``x · sigmoid(g(mean_{t,h,w} x))``: squeeze-and-excitation (``hidden`` > 0: FC, ReLU, FC)
    or context gating (``hidden`` = 0: one FC)."""

    def __init__(self, channels: int, hidden: int = 0) -> None:
        super().__init__()
        if hidden:
            self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        else:
            self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))[:, :, None, None, None]


class TVNUnit(nn.Module):
    """One repeat of a :class:`TVNBlock` (see the module docstring)."""

    def __init__(self, spec: TVNBlock, cin: int, first: bool, use_temporal: bool, norm: NormBuilder,
                 act: ActBuilder, width: float = 1.0) -> None:
        super().__init__()
        filters = max(1, round(spec.filters * width))
        expanded = max(filters * spec.expand, filters)
        s_stride = spec.spatial_stride if first else 1
        t_stride = spec.temporal_stride if first else 1
        k, kt = spec.spatial_kernel, spec.temporal_kernel
        layers: list[nn.Module] = []
        channels = cin
        if k > 1 and spec.spatial_type in ("std", "depth"):
            layers.append(SameConv(cin, filters, (1, 1, 1), (1, 1, 1), norm, act))
            groups = filters if spec.spatial_type == "depth" else 1
            layers.append(SameConv(filters, filters, (1, k, k), (1, s_stride, s_stride), norm, act, groups))
            channels = filters
        elif k > 1:
            layers.append(SamePool(spec.spatial_type, (1, k, k), (1, s_stride, s_stride)))
        self.spatial = nn.Sequential(*layers)
        self.temporal: nn.Module = nn.Identity()
        if use_temporal and kt > 1:
            if spec.temporal_type == "1d":
                self.temporal = SameConv(channels, filters, (kt, 1, 1), (t_stride, 1, 1), norm, act)
                channels = filters
            else:
                self.temporal = SamePool(spec.temporal_type, (kt, 1, 1), (t_stride, 1, 1))
        self.expand = SameConv(channels, expanded, (1, 1, 1), (1, 1, 1), norm, None)
        squeezed = max(int(expanded * spec.squeeze), 8)
        self.squeeze = ChannelGate(expanded, squeezed) if spec.squeeze > 0 else None
        self.gate = ChannelGate(expanded) if spec.context_gate else None
        self.skip = None
        if spec.skip:
            self.skip = SameConv(cin, expanded, (1, 1, 1), (1, s_stride, s_stride), norm, None)
        self.act = act()
        self.out_channels = expanded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(self.temporal(self.spatial(x)))
        if self.squeeze is not None:
            y = self.squeeze(y)
        if self.gate is not None:
            y = self.gate(y)
        if self.skip is not None and y.shape[2] == x.shape[2]:  # only when the frames are kept
            y = y + self.skip(x)
        return self.act(y)


class TinyVideoNet(nn.Module):
    """A TVN from a block table; ``width`` scales every block's ``filters`` (CPU presets)."""

    def __init__(self, num_classes: int = 339, *, blocks=TVN1, width: float = 1.0, dropout: float = 0.5,
                 norm: NormBuilder | str = "bn", act: ActBuilder | str = "relu",
                 in_channels: int = 3) -> None:
        super().__init__()
        norm_b, act_b = resolve_norm(norm), resolve_act(act)
        units, cin = [], in_channels
        for spec in blocks:
            if spec.spatial_type not in SPATIAL_TYPES or spec.temporal_type not in TEMPORAL_TYPES:
                raise ValueError(f"unknown TVN layer types {spec.spatial_type!r} / {spec.temporal_type!r}")
            for r in range(spec.repeats):  # repeats: stride 1, temporal layer every other time
                unit = TVNUnit(spec, cin, r == 0, r == 0 or r % 2 == 0, norm_b, act_b, width)
                units.append(unit)
                cin = unit.out_channels
        self.blocks = nn.Sequential(*units)
        self.num_features = cin
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, batch: dict | torch.Tensor) -> torch.Tensor:
        x = self.blocks(rgb_input(batch))
        return self.fc(self.dropout(x.mean(dim=(2, 3, 4))))


@register_model(spec=InputSpec(("rgb",), num_frames=2, frame_stride=4, crop_size=224), paper=PAPER)
def tvn_1(num_classes: int = 339, **kw) -> TinyVideoNet:
    """TVN-1: the searched 4-block layout (2 frames, stride 4, 224²)"""
    return TinyVideoNet(num_classes, **{"blocks": TVN1, **kw})


@register_model(spec=InputSpec(("rgb",), num_frames=2, frame_stride=4, crop_size=112), paper=PAPER,
                width=0.25)
def tvn_1_small(num_classes: int = 339, **kw) -> TinyVideoNet:
    """CPU TVN-1: the TVN-1 layout at 1/4 of its filters, 2 frames of 112²"""
    return TinyVideoNet(num_classes, **{"blocks": TVN1, "width": 0.25, **kw})
