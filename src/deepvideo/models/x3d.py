"""X3D: Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition", CVPR 2020.

A tiny base network expanded along frames, frame rate, resolution, width, bottleneck width
and depth. Stem: 1×3×3 conv (24 channels, spatial stride 2) then a depthwise 5×1×1 conv;
four stages of bottlenecks [1×1×1, depthwise 3×3×3, 1×1×1] with widths 24, 48, 96, 192,
inner width int(2.25×), squeeze-excitation (ratio 1/16) in every other
block, swish after the depthwise conv and ReLU elsewhere; depths [1, 2, 5, 3] × 2.2 (XS/S/M)
or × 5.0 (L), rounded up. Head: 1×1×1 conv to 432, pool, 1×1×1 conv to 2048, fc.
Zoo: XS 4×12, S 13×6, M 16×5, L 16×5; test crops 182/182/256/356;
3.79/3.79/3.79/6.15M parameters, 0.91/2.96/6.72/26.64 GFLOPs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.models.resnet3d import VideoResNet
from deepvideo.nn.blocks3d import Bottleneck3d
from deepvideo.nn.conv import NormBuilder, depthwise_builder, resolve_act, resolve_norm
from deepvideo.nn.se import round_width
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
        stage = []
        for b in range(int(math.ceil(base_depth * depth_factor))):
            se = round_width(inner, se_ratio) if se_ratio > 0 and b % 2 == 0 else 0
            stage.append(
                Bottleneck3d(
                    in_ch if b == 0 else out,
                    inner,
                    out,
                    (1, 2, 2) if b == 0 else 1,
                    conv_b=depthwise_builder(3),
                    norm=norm_b,
                    act=act,
                    act_b=act_b,
                    se_channels=se,
                    shortcut_norm=False,
                )
            )
        layers.append(nn.Sequential(*stage))
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
for _name, _frames, _stride, _crop, _depth in (
    ("xs", 4, 12, 160, 2.2),
    ("s", 13, 6, 160, 2.2),
    ("m", 16, 5, 224, 2.2),
    ("l", 16, 5, 312, 5.0),
):
    register_model(
        f"x3d_{_name}",
        x3d,
        InputSpec(("rgb",), num_frames=_frames, frame_stride=_stride, crop_size=_crop),
        paper=_X3D,
        summary=f"X3D-{_name.upper()}, {_frames}x{_stride}, train crop {_crop}",
        depth_factor=_depth,
    )
