"""3D residual blocks with injected conv, norm and activation builders.

He et al., "Deep Residual Learning", CVPR 2016, lifted to space-time as in Tran et al. 2018
(R3D, MCx, R(2+1)D), Feichtenhofer et al. 2019 (SlowFast bottlenecks with a temporal
``kt×1×1`` first conv), Tran et al. 2019 (CSN) and Feichtenhofer 2020 (X3D). The block does
not know which family it serves: its convs come from builders ``(in, out, stride) -> module``
(see :mod:`deepvideo.nn.conv`), its norm from ``norm(channels)`` — batch norm or group norm —
and its activation from ``act()``.

:func:`residual_stage` is the one stage loop of the 3D ResNets (torchvision's ``_make_layer``):
the families inject a block builder and the loop wires widths and strides.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepvideo.nn.conv import (
    ActBuilder,
    ConvBuilder,
    NormBuilder,
    conv3d,
    resolve_act,
    resolve_norm,
    triple,
)
from deepvideo.nn.se import SqueezeExcite3d


class Shortcut(nn.Module):
    """Projection shortcut: 1×1×1 conv with stride, then norm (norm may be omitted)."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: tuple[int, int, int], norm: NormBuilder | None
    ) -> None:
        super().__init__()
        self.conv = conv3d(in_channels, out_channels, 1, stride)
        self.norm = norm(out_channels) if norm is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


def projection_shortcut(
    in_channels: int,
    out_channels: int,
    stride: tuple[int, int, int],
    norm: NormBuilder,
    with_norm: bool = True,
) -> Shortcut | None:
    """None (identity) when the width and resolution are kept, else a :class:`Shortcut`."""
    if in_channels == out_channels and stride == (1, 1, 1):
        return None
    return Shortcut(in_channels, out_channels, stride, norm if with_norm else None)


class BasicBlock3d(nn.Module):
    """Two 3×3(×3) convs and an identity or projection shortcut (18/34-layer ResNets).

    ``conv1(in, out, stride)`` and ``conv2(out, out, (1,1,1))`` are builders; the shortcut
    stride is ``shortcut_stride`` (default: ``stride``, pass the conv's effective stride when
    the conv drops temporal striding, as 2D layers do).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int | tuple[int, int, int] = 1,
        *,
        conv1: ConvBuilder,
        conv2: ConvBuilder | None = None,
        norm: NormBuilder | str = "bn",
        act: ActBuilder | str = "relu",
        shortcut_stride: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        stride = triple(stride)
        norm, act = resolve_norm(norm), resolve_act(act)
        self.conv1 = conv1(in_channels, out_channels, stride)
        self.norm1 = norm(out_channels)
        self.act1 = act()
        self.conv2 = (conv2 or conv1)(out_channels, out_channels, (1, 1, 1))
        self.norm2 = norm(out_channels)
        self.shortcut = projection_shortcut(in_channels, out_channels, shortcut_stride or stride, norm)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        return self.act(out + (x if self.shortcut is None else self.shortcut(x)))


class Bottleneck3d(nn.Module):
    """1×1×1 (or kt×1×1) reduce -> ``conv_b`` -> 1×1×1 expand, plus shortcut.

    - ``temporal_kernel``: kernel of ``conv_a`` along time (1 for C2D / Slow res2-3, 3 for
      I3D and the Fast pathway).
    - ``conv_b``: builder for the middle conv, which carries the stride (1×3×3, 3×3×3
      depthwise for ir-CSN/X3D, (2+1)D for R(2+1)D-50, 1×3×3 + 3×1×1 for P3D ...).
    - ``se_channels`` > 0 adds squeeze-excitation after ``norm_b``; ``act_b`` overrides the
      activation after it (X3D uses swish there).
    - ``shortcut_norm=False`` drops the norm of a projection shortcut between equal widths
      (PyTorchVideo's X3D).
    """

    def __init__(
        self,
        in_channels: int,
        inner_channels: int,
        out_channels: int,
        stride: int | tuple[int, int, int] = 1,
        *,
        conv_b: ConvBuilder,
        temporal_kernel: int = 1,
        norm: NormBuilder | str = "bn",
        act: ActBuilder | str = "relu",
        act_b: ActBuilder | str | None = None,
        se_channels: int = 0,
        shortcut_norm: bool = True,
    ) -> None:
        super().__init__()
        stride = triple(stride)
        norm, act = resolve_norm(norm), resolve_act(act)
        self.conv_a = conv3d(in_channels, inner_channels, (temporal_kernel, 1, 1))
        self.norm_a = norm(inner_channels)
        self.act_a = act()
        self.conv_b = conv_b(inner_channels, inner_channels, stride)
        self.norm_b = norm(inner_channels)
        self.se = SqueezeExcite3d(inner_channels, se_channels) if se_channels > 0 else None
        self.act_b = resolve_act(act_b)() if act_b is not None else act()
        self.conv_c = conv3d(inner_channels, out_channels, 1)
        self.norm_c = norm(out_channels)
        with_norm = shortcut_norm or in_channels != out_channels
        self.shortcut = projection_shortcut(in_channels, out_channels, stride, norm, with_norm)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act_a(self.norm_a(self.conv_a(x)))
        out = self.norm_b(self.conv_b(out))
        if self.se is not None:
            out = self.se(out)
        out = self.norm_c(self.conv_c(self.act_b(out)))
        return self.act(out + (x if self.shortcut is None else self.shortcut(x)))


def zero_init_last_norm(module: nn.Module) -> None:
    """Set the scale of each residual block's last norm to zero (Goyal et al. 2017)."""
    for m in module.modules():
        last = (
            getattr(m, "norm_c", None)
            if isinstance(m, Bottleneck3d)
            else (getattr(m, "norm2", None) if isinstance(m, BasicBlock3d) else None)
        )
        if last is not None and getattr(last, "weight", None) is not None:
            nn.init.zeros_(last.weight)


BlockBuilder = Callable[[int, int, int | tuple[int, int, int], int], nn.Module]  # (in, out, stride, index)


def residual_stage(
    block: BlockBuilder,
    in_channels: int,
    out_channels: int,
    num_blocks: int,
    stride: int | tuple[int, int, int] = 1,
    *,
    after_block: Callable[[int], nn.Module | None] | None = None,
) -> nn.Sequential:
    """One stage of a residual network: ``num_blocks`` blocks in an ``nn.Sequential``.

    ``block(in, out, stride, index)`` builds block ``index``: the first takes ``in_channels`` and
    ``stride``, the others ``out_channels`` and stride 1. ``after_block(index)`` may return a
    module inserted after block ``index`` (a non-local block), or None.
    """
    layers: list[nn.Module] = []
    for b in range(num_blocks):
        first = b == 0
        layers.append(block(in_channels if first else out_channels, out_channels, stride if first else 1, b))
        extra = after_block(b) if after_block is not None else None
        if extra is not None:
            layers.append(extra)
    return nn.Sequential(*layers)
