"""The 3D ResNet composition: stem -> stages -> head (:class:`VideoResNet`), and the
bottleneck ResNet-50/101/152 built from :class:`~deepvideo.nn.blocks3d.Bottleneck3d` with an
injected middle conv (C2D, I3D, Slow, R(2+1)D-50, CSN build on it; He et al., CVPR 2016).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepvideo.nn.blocks3d import Bottleneck3d, residual_stage
from deepvideo.nn.conv import ConvBuilder, NormBuilder, conv1x3x3_builder, resolve_norm
from deepvideo.nn.heads import ClassifierHead
from deepvideo.nn.inputs import rgb_input
from deepvideo.nn.nonlocal_block import NonLocal3d
from deepvideo.nn.stems import stem3d

BOTTLENECK_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class VideoResNet(nn.Module):
    """stem -> layer1..layer4 -> head; ``pool1`` (optional) after layer1.

    ``fold_time`` (R2D) reshapes the clip ``[N, 3, L, H, W]`` into ``[N, 3L, 1, H, W]`` so the
    stem sees the whole clip as channels.
    """

    def __init__(
        self,
        stem: nn.Module,
        layers: Sequence[nn.Module],
        head: nn.Module,
        pool1: nn.Module | None = None,
        fold_time: bool = False,
    ) -> None:
        super().__init__()
        self.stem = stem
        for i, layer in enumerate(layers, start=1):
            self.add_module(f"layer{i}", layer)
        self.num_layers = len(layers)
        self.pool1 = pool1
        self.head = head
        self.fold_time = fold_time

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.fold_time:
            x = x.flatten(1, 2).unsqueeze(2)
        x = self.stem(x)
        for i in range(1, self.num_layers + 1):
            x = getattr(self, f"layer{i}")(x)
            if i == 1 and self.pool1 is not None:
                x = self.pool1(x)
        return x

    def forward(self, batch: dict | torch.Tensor) -> torch.Tensor:
        x = rgb_input(batch)
        if self.fold_time and x.shape[2] * x.shape[1] != self.stem[0].in_channels:
            raise ValueError(
                f"R2D folds time into channels: built for {self.stem[0].in_channels // 3} "
                f"frames, got {x.shape[2]}"
            )
        return self.head(self.features(x))


def per_block(value: int | Sequence[int], blocks: int) -> list[int]:
    """A stage's per-block values: an int for all blocks, or a cycle (I3D's [3, 1] pattern)."""
    if isinstance(value, int):
        return [value] * blocks
    return [value[i % len(value)] for i in range(blocks)]


def bottleneck_resnet(
    depth: int = 50,
    num_classes: int = 400,
    *,
    stem_kernel=(1, 7, 7),
    stem_pool: bool = True,
    temporal_kernels: Sequence = (1, 1, 3, 3),
    conv_b: ConvBuilder | Sequence[ConvBuilder] | None = None,
    spatial_strides: Sequence[int] = (1, 2, 2, 2),
    temporal_strides: Sequence[int] = (1, 1, 1, 1),
    pool1: bool = False,
    nonlocal_blocks: dict[int, Sequence[int]] | None = None,
    nonlocal_mode: str = "embedded_gaussian",
    norm: NormBuilder | str = "bn",
    act="relu",
    width: int = 64,
    bottleneck_ratio: int = 4,
    dropout: float = 0.5,
    in_channels: int = 3,
) -> VideoResNet:
    """A bottleneck 3D ResNet composed from :class:`Bottleneck3d`.

    ``temporal_kernels[s]``: kernel along time of ``conv_a`` in stage s (int or a cycle per
    block); ``conv_b``: builder (or one per stage) for the middle conv, default 1×3×3;
    ``pool1``: temporal 2×1×1 max pool after res2 (C2D, I3D); ``nonlocal_blocks``: stage index
    (0..3) -> block indices followed by a non-local block.
    """
    if depth not in BOTTLENECK_DEPTHS:
        raise ValueError(f"depth must be one of {sorted(BOTTLENECK_DEPTHS)}, got {depth}")
    norm_b = resolve_norm(norm)
    stem = stem3d(width, stem_kernel, in_channels=in_channels, norm=norm_b, act=act, pool=stem_pool)
    conv_bs = list(conv_b) if isinstance(conv_b, Sequence) else [conv_b or conv1x3x3_builder()] * 4
    layers = []
    in_ch = width
    for s, blocks in enumerate(BOTTLENECK_DEPTHS[depth]):
        inner = width * 2**s
        out_ch = inner * bottleneck_ratio
        kernels = per_block(temporal_kernels[s], blocks)
        nl_after = set((nonlocal_blocks or {}).get(s, ()))

        def block(i, o, stride, b, inner=inner, conv=conv_bs[s], kernels=kernels):
            return Bottleneck3d(
                i, inner, o, stride, conv_b=conv, temporal_kernel=kernels[b], norm=norm_b, act=act
            )

        def nonlocal_after(b, out_ch=out_ch, nl_after=nl_after):
            return NonLocal3d(out_ch, mode=nonlocal_mode, norm=norm_b) if b in nl_after else None

        stride = (temporal_strides[s], spatial_strides[s], spatial_strides[s])
        layers.append(residual_stage(block, in_ch, out_ch, blocks, stride, after_block=nonlocal_after))
        in_ch = out_ch
    pool = nn.MaxPool3d((2, 1, 1), (2, 1, 1)) if pool1 else None
    return VideoResNet(stem, layers, ClassifierHead(in_ch, num_classes, dropout), pool1=pool)
