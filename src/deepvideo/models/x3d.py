"""X3D: Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition", CVPR 2020.

A tiny base network expanded along frames, frame rate, resolution, width, bottleneck width
and depth. Stem: 1×3×3 conv (24 channels, spatial stride 2) then a depthwise 5×1×1 conv;
four stages of bottlenecks [1×1×1, depthwise 3×3×3, 1×1×1] with widths 24, 48, 96, 192,
inner width int(2.25×), squeeze-excitation (ratio 1/16) in every other
block, swish after the depthwise conv and ReLU elsewhere; depths [1, 2, 5, 3] × 2.2 (XS/S/M)
or × 5.0 (L), rounded up. Head: 1×1×1 conv to 432, pool, 1×1×1 conv to 2048, fc.
Presets XS, S, M, L as the PySlowFast zoo; their clip, test crop, parameter and FLOP counts
are the presets' published figures in the registry.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.blocks3d import Bottleneck3d, residual_stage
from deepvideo.nn.conv import NormBuilder, depthwise_builder, resolve_act, resolve_norm
from deepvideo.nn.se import round_width
from deepvideo.nn.video_resnet import VideoResNet
from deepvideo.spec import InputSpec


class X3DHead(nn.Module):
    def __init__(
        self,
        in_channels: int,
        inner: int,
        hidden: int,
        num_classes: int,
        *,
        norm: NormBuilder,
        act,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.conv_pre = nn.Conv3d(in_channels, inner, 1, bias=False)
        self.norm_pre = norm(inner)
        self.act_pre = act()
        self.conv_post = nn.Conv3d(inner, hidden, 1, bias=False)
        self.act_post = act()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_pre(self.norm_pre(self.conv_pre(x))).mean(dim=(2, 3, 4), keepdim=True)
        x = self.act_post(self.conv_post(x)).flatten(1)
        return self.fc(self.dropout(x))


def x3d(
    num_classes: int = 400,
    *,
    depth_factor: float = 2.2,
    width_factor: float = 2.0,
    bottleneck_factor: float = 2.25,
    base_width: int = 12,
    se_ratio: float = 0.0625,
    head_width: int = 2048,
    norm: NormBuilder | str = "bn",
    act="relu",
    act_b="swish",
    dropout: float = 0.5,
) -> VideoResNet:
    """X3D expanded by ``depth_factor`` (stage depths, rounded up), ``width_factor`` (stage
    widths from ``base_width``), ``bottleneck_factor`` (inner widths) and ``head_width``."""
    norm_b, act_f = resolve_norm(norm), resolve_act(act)
    stem_w = round_width(base_width, width_factor)
    stem = nn.Sequential(
        nn.Conv3d(3, stem_w, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False),
        nn.Conv3d(stem_w, stem_w, (5, 1, 1), 1, (2, 0, 0), groups=stem_w, bias=False),
        norm_b(stem_w),
        act_f(),
    )
    dims, d = [], base_width
    for _ in range(4):
        dims.append(d)
        d = round_width(d, 2.0)
    layers, in_ch = [], stem_w
    for base_dim, base_depth in zip(dims, (1, 2, 5, 3), strict=True):
        out = round_width(base_dim, width_factor)
        inner = int(bottleneck_factor * out)

        def block(i, o, stride, b, inner=inner):
            se = round_width(inner, se_ratio) if se_ratio > 0 and b % 2 == 0 else 0
            return Bottleneck3d(
                i,
                inner,
                o,
                stride,
                conv_b=depthwise_builder(3),
                norm=norm_b,
                act=act,
                act_b=act_b,
                se_channels=se,
                shortcut_norm=False,
            )

        layers.append(residual_stage(block, in_ch, out, int(math.ceil(base_depth * depth_factor)), (1, 2, 2)))
        in_ch = out
    head = X3DHead(
        in_ch,
        int(bottleneck_factor * in_ch),
        head_width,
        num_classes,
        norm=norm_b,
        act=act_f,
        dropout=dropout,
    )
    return VideoResNet(stem, layers, head)


_X3D = "Feichtenhofer, X3D: Expanding Architectures for Efficient Video Recognition, CVPR 2020"
_ZOO = "PySlowFast zoo"


@register_model(
    spec=InputSpec(("rgb",), num_frames=4, frame_stride=12, crop_size=160),
    paper=_X3D,
    published={"params_m": 3.79, "gflops": 0.91, "frames": 4, "crop": 182, "source": _ZOO},
)
def x3d_xs(num_classes: int = 400, **kw) -> VideoResNet:
    """X3D-XS, 4x12, train crop 160"""
    return x3d(num_classes, **{"depth_factor": 2.2, **kw})


@register_model(
    spec=InputSpec(("rgb",), num_frames=13, frame_stride=6, crop_size=160),
    paper=_X3D,
    published={"params_m": 3.79, "gflops": 2.96, "frames": 13, "crop": 182, "source": _ZOO},
)
def x3d_s(num_classes: int = 400, **kw) -> VideoResNet:
    """X3D-S, 13x6, train crop 160"""
    return x3d(num_classes, **{"depth_factor": 2.2, **kw})


@register_model(
    spec=InputSpec(("rgb",), num_frames=16, frame_stride=5, crop_size=224),
    paper=_X3D,
    published={"params_m": 3.79, "gflops": 6.72, "frames": 16, "crop": 256, "source": _ZOO},
)
def x3d_m(num_classes: int = 400, **kw) -> VideoResNet:
    """X3D-M, 16x5, train crop 224"""
    return x3d(num_classes, **{"depth_factor": 2.2, **kw})


@register_model(
    spec=InputSpec(("rgb",), num_frames=16, frame_stride=5, crop_size=312),
    paper=_X3D,
    published={"params_m": 6.15, "gflops": 26.64, "frames": 16, "crop": 356, "source": _ZOO},
)
def x3d_l(num_classes: int = 400, **kw) -> VideoResNet:
    """X3D-L, 16x5, train crop 312"""
    return x3d(num_classes, **{"depth_factor": 5.0, **kw})
