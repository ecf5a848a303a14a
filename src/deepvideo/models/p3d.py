"""Pseudo-3D residual networks: Qiu et al., "Learning Spatio-Temporal Representation with
Pseudo-3D Residual Networks", ICCV 2017.

Each bottleneck's 3×3×3 conv is replaced by a spatial 1×3×3 conv S and a temporal 3×1×1
conv T combined three ways:

- P3D-A: cascaded, ``T(S(x))``;
- P3D-B: parallel, ``S(x) + T(x)``;
- P3D-C: cascaded with a shortcut from S, ``S(x) + T(S(x))``.

P3D ResNet interleaves A, B, C along the network (A, B, C, A, B, C, ...). The paper's
P3D-199 starts from ResNet-152; ResNet-50 and -101 layouts are provided as well.
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.blocks3d import projection_shortcut, residual_stage
from deepvideo.nn.conv import ActBuilder, NormBuilder, conv3d, resolve_act, resolve_norm, triple
from deepvideo.nn.heads import ClassifierHead
from deepvideo.nn.stems import stem3d
from deepvideo.nn.video_resnet import BOTTLENECK_DEPTHS, VideoResNet
from deepvideo.spec import InputSpec


class P3DBlock(nn.Module):
    """Bottleneck with a pseudo-3D middle: ``kind`` in "A", "B", "C"."""

    def __init__(
        self,
        in_channels: int,
        inner_channels: int,
        out_channels: int,
        stride=1,
        *,
        kind: str = "A",
        norm: NormBuilder | str = "bn",
        act: ActBuilder | str = "relu",
    ) -> None:
        super().__init__()
        if kind not in ("A", "B", "C"):
            raise ValueError(f"P3D block kind must be 'A', 'B' or 'C', got {kind!r}")
        st, sh, sw = triple(stride)
        norm, act = resolve_norm(norm), resolve_act(act)
        self.kind = kind
        self.conv_a = conv3d(in_channels, inner_channels, 1)
        self.norm_a = norm(inner_channels)
        # the spatial conv carries the spatial stride; B's parallel T then needs it too
        self.conv_s = conv3d(inner_channels, inner_channels, (1, 3, 3), (1, sh, sw))
        self.norm_s = norm(inner_channels)
        self.conv_t = conv3d(
            inner_channels, inner_channels, (3, 1, 1), (st, sh, sw) if kind == "B" else (st, 1, 1)
        )
        self.norm_t = norm(inner_channels)
        self.temporal_stride = st
        self.conv_c = conv3d(inner_channels, out_channels, 1)
        self.norm_c = norm(out_channels)
        self.shortcut = projection_shortcut(in_channels, out_channels, (st, sh, sw), norm)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.act(self.norm_a(self.conv_a(x)))
        s = self.act(self.norm_s(self.conv_s(a)))
        if self.kind == "A":
            mid = self.act(self.norm_t(self.conv_t(s)))
        elif self.kind == "B":
            t = self.act(self.norm_t(self.conv_t(a)))
            mid = s[:, :, :: self.temporal_stride] + t
        else:
            mid = s[:, :, :: self.temporal_stride] + self.act(self.norm_t(self.conv_t(s)))
        out = self.norm_c(self.conv_c(mid))
        return self.act(out + (x if self.shortcut is None else self.shortcut(x)))


def p3d_resnet(
    depth: int = 152,
    num_classes: int = 400,
    *,
    kinds: str = "ABC",
    temporal_strides=(1, 1, 1, 1),
    norm: NormBuilder | str = "bn",
    act="relu",
    width: int = 64,
    dropout: float = 0.5,
) -> VideoResNet:
    """P3D ResNet: a bottleneck ResNet whose blocks cycle through ``kinds`` (e.g. "ABC", "A")."""
    if depth not in BOTTLENECK_DEPTHS:
        raise ValueError(f"depth must be one of {sorted(BOTTLENECK_DEPTHS)}, got {depth}")
    norm_b = resolve_norm(norm)
    stem = stem3d(width, (1, 7, 7), norm=norm_b, act=act, pool=True)
    layers, in_ch, first = [], width, 0  # first: index of the stage's first block in the network
    for s, blocks in enumerate(BOTTLENECK_DEPTHS[depth]):
        inner = width * 2**s

        def block(i, o, stride, b, inner=inner, first=first):
            kind = kinds[(first + b) % len(kinds)]
            return P3DBlock(i, inner, o, stride, kind=kind, norm=norm_b, act=act)

        stride = (temporal_strides[s], 1 if s == 0 else 2, 1 if s == 0 else 2)
        layers.append(residual_stage(block, in_ch, 4 * inner, blocks, stride))
        in_ch, first = 4 * inner, first + blocks
    return VideoResNet(stem, layers, ClassifierHead(in_ch, num_classes, dropout))


_P3D = "Qiu et al., Learning Spatio-Temporal Representation with Pseudo-3D Residual Networks, ICCV 2017"
_SPEC = InputSpec(("rgb",), num_frames=16, frame_stride=1, crop_size=160)


@register_model(spec=_SPEC, paper=_P3D, summary="P3D ResNet-199 (A/B/C interleaved), 16x160")
def p3d_199(num_classes: int = 400, **kw) -> VideoResNet:
    """The paper's P3D ResNet: ResNet-152's layout with A, B, C blocks interleaved."""
    return p3d_resnet(num_classes=num_classes, **{"depth": 152, **kw})


@register_model(spec=_SPEC, paper=_P3D, summary="P3D ResNet from ResNet-101, 16x160")
def p3d_131(num_classes: int = 400, **kw) -> VideoResNet:
    """P3D ResNet with ResNet-101's layout."""
    return p3d_resnet(num_classes=num_classes, **{"depth": 101, **kw})


@register_model(spec=_SPEC, paper=_P3D, summary="P3D ResNet from ResNet-50, 16x160")
def p3d_63(num_classes: int = 400, **kw) -> VideoResNet:
    """P3D ResNet with ResNet-50's layout."""
    return p3d_resnet(num_classes=num_classes, **{"depth": 50, **kw})


@register_model(spec=_SPEC, paper=_P3D, summary="P3D ResNet-50 layout with P3D-A blocks only")
def p3d_63_a(num_classes: int = 400, **kw) -> VideoResNet:
    """ResNet-50 layout, every block P3D-A (cascaded S then T)."""
    return p3d_resnet(num_classes=num_classes, **{"depth": 50, "kinds": "A", **kw})


@register_model(spec=_SPEC, paper=_P3D, summary="P3D ResNet-50 layout with P3D-B blocks only")
def p3d_63_b(num_classes: int = 400, **kw) -> VideoResNet:
    """ResNet-50 layout, every block P3D-B (parallel S and T)."""
    return p3d_resnet(num_classes=num_classes, **{"depth": 50, "kinds": "B", **kw})


@register_model(spec=_SPEC, paper=_P3D, summary="P3D ResNet-50 layout with P3D-C blocks only")
def p3d_63_c(num_classes: int = 400, **kw) -> VideoResNet:
    """ResNet-50 layout, every block P3D-C (S with a shortcut into T)."""
    return p3d_resnet(num_classes=num_classes, **{"depth": 50, "kinds": "C", **kw})
