"""3D ResNets: the Tran et al. 2018 family (R2D, f-R2D, R3D, MCx, rMCx, R(2+1)D) and the
bottleneck ResNet-50/101 family of the SlowFast model zoo (C2D, I3D-R50, Slow-only, R(2+1)D-50).

- Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition", CVPR
  2018. 18/34-layer ResNets on 3×L×H×W clips with global average pooling. R2D folds the L
  frames into the input channels; f-R2D applies 2D convs to every frame; R3D uses t×d×d convs
  throughout; MCx uses 3D convs in the groups below x (conv1..conv{x-1}) and 2D above; rMCx is
  the reverse; R(2+1)D factorizes every 3D conv into a spatial 1×d×d conv to M_i channels and
  a temporal t×1×1 conv, M_i = ⌊t d² N_{i-1} N_i / (d² N_{i-1} + t N_i)⌋ (parameters as R3D).
  Kinetics parameter counts: R2D 11.4M, R3D 33.4M, MC2 11.4M, MC3 11.7M, MC4 12.7M, MC5 16.9M,
  rMC2 33.3M, rMC3 33.0M, rMC4 32.0M, rMC5 27.9M, R(2+1)D 33.3M.
  torchvision's ``r2plus1d_18`` computes one M per block from the block's input width and uses
  it for both convs (and a 45-channel stem); it is registered as ``r2plus1d_18_tv``.
- Wang et al., "Non-local Neural Networks", CVPR 2018 (C2D / I3D ResNet-50 baselines).
- Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019 (Slow-only).
- PySlowFast / PyTorchVideo zoo (Kinetics-400): C2D R50 8×8 24.33M 25.89G; I3D R50 8×8
  28.04M 37.53G; Slow R50 4×16 32.45M 27.55G, 8×8 54.52G; R(2+1)D R50 16×4 28.11M 76.45G.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.blocks3d import BasicBlock3d, Bottleneck3d
from deepvideo.nn.conv import (
    Conv2Plus1d,
    ConvBuilder,
    NormBuilder,
    conv1x3x3_builder,
    conv2plus1d_builder,
    conv3d,
    conv3x3x3_builder,
    midplanes,
    resolve_act,
    resolve_norm,
)
from deepvideo.nn.nonlocal_block import NonLocal3d
from deepvideo.spec import InputSpec

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
TV_MEAN = (0.43216, 0.394666, 0.37645)  # torchvision's video models
TV_STD = (0.22803, 0.22145, 0.216989)


def rgb_input(batch: dict | torch.Tensor) -> torch.Tensor:
    """The ``rgb`` clip ``[N, 3, T, H, W]`` of a batch dict (a bare tensor is taken as rgb)."""
    if isinstance(batch, torch.Tensor):
        x = batch
    else:
        if "rgb" not in batch:
            raise KeyError(f"this model needs batch['rgb'] [N,3,T,H,W]; the batch has {sorted(batch)}")
        x = batch["rgb"]
    if x.dim() != 5:
        raise ValueError(f"expected rgb of shape [N, C, T, H, W], got {tuple(x.shape)}")
    return x


class ClassifierHead(nn.Module):
    """Global average pool over (T, H, W), dropout, linear layer."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(x.mean(dim=(2, 3, 4))))


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


# ---- Tran et al. 2018: 18/34-layer family ---------------------------------------------------

_TRAN_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def _group_kinds(arch: str) -> list[str]:
    """Conv kind ("3d", "2d", "2plus1d") of groups conv1..conv5 for an architecture name."""
    if arch in ("r3d", "r2d", "fr2d", "r2plus1d"):
        kind = {"r3d": "3d", "r2d": "2d", "fr2d": "2d", "r2plus1d": "2plus1d"}[arch]
        return [kind] * 5
    if arch[:2] == "mc" and arch[2:].isdigit():
        x = int(arch[2:])
        return ["3d" if g < x else "2d" for g in range(1, 6)]
    if arch[:3] == "rmc" and arch[3:].isdigit():
        x = int(arch[3:])
        return ["2d" if g < x else "3d" for g in range(1, 6)]
    raise ValueError(f"unknown architecture {arch!r}: r2d, fr2d, r3d, mc2..mc5, rmc2..rmc5, r2plus1d")


def tran_resnet(
    arch: str = "r3d",
    depth: int = 18,
    num_classes: int = 400,
    *,
    num_frames: int = 16,
    norm: NormBuilder | str = "bn",
    act="relu",
    mid: str = "paper",
    width: int = 64,
    dropout: float = 0.0,
) -> VideoResNet:
    """Build R2D / f-R2D / R3D / MCx / rMCx / R(2+1)D with 18 or 34 layers.

    ``mid`` = "paper" computes M_i for every conv; "torchvision" uses one M per block from
    the block input width (and a 45-channel (2+1)D stem) as torchvision's ``r2plus1d_18``.
    ``num_frames`` matters only for R2D (input channels = 3 × frames).
    """
    if depth not in _TRAN_DEPTHS:
        raise ValueError(f"depth must be 18 or 34, got {depth}")
    if mid not in ("paper", "torchvision"):
        raise ValueError(f"mid must be 'paper' or 'torchvision', got {mid!r}")
    kinds = _group_kinds(arch)
    norm_b = resolve_norm(norm)
    if kinds[0] == "3d":
        stem = stem3d(width, (3, 7, 7), norm=norm_b, act=act)
    elif kinds[0] == "2d":
        in_ch = 3 * num_frames if arch == "r2d" else 3
        stem = stem3d(width, (1, 7, 7), in_channels=in_ch, norm=norm_b, act=act)
    else:
        stem_mid = 45 if mid == "torchvision" else midplanes(3, width, 3, 7)
        stem = nn.Sequential(
            Conv2Plus1d(3, width, (3, 7, 7), (1, 2, 2), stem_mid, norm=norm_b, act=act),
            norm_b(width),
            resolve_act(act)(),
        )
    layers = []
    in_ch = width
    for g, (kind, blocks) in enumerate(zip(kinds[1:], _TRAN_DEPTHS[depth], strict=True)):
        out_ch = width * 2**g
        s = 1 if g == 0 else 2
        stride = (1 if kind == "2d" else s, s, s)
        stage = []
        for b in range(blocks):
            block_in = in_ch if b == 0 else out_ch
            if kind == "3d":
                c1 = c2 = conv3x3x3_builder()
            elif kind == "2d":
                c1 = c2 = conv1x3x3_builder()
            elif mid == "torchvision":
                m = midplanes(block_in, out_ch)
                c1 = c2 = conv2plus1d_builder(norm=norm_b, act=act, mid=m)
            else:
                c1 = c2 = conv2plus1d_builder(norm=norm_b, act=act)
            stage.append(
                BasicBlock3d(
                    block_in, out_ch, stride if b == 0 else 1, conv1=c1, conv2=c2, norm=norm_b, act=act
                )
            )
        layers.append(nn.Sequential(*stage))
        in_ch = out_ch
    return VideoResNet(stem, layers, ClassifierHead(in_ch, num_classes, dropout), fold_time=arch == "r2d")


# ---- bottleneck ResNet-50/101/152 (C2D, I3D, Slow, R(2+1)D-50) -------------------------------

BOTTLENECK_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def _per_block(value: int | Sequence[int], blocks: int) -> list[int]:
    """A stage's temporal kernels: an int for all blocks, or a cycle (I3D's [3, 1] pattern)."""
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
        kernels = _per_block(temporal_kernels[s], blocks)
        stage: list[nn.Module] = []
        for b in range(blocks):
            stride = (temporal_strides[s], spatial_strides[s], spatial_strides[s]) if b == 0 else 1
            stage.append(
                Bottleneck3d(
                    in_ch if b == 0 else out_ch,
                    inner,
                    out_ch,
                    stride,
                    conv_b=conv_bs[s],
                    temporal_kernel=kernels[b],
                    norm=norm_b,
                    act=act,
                )
            )
            if nonlocal_blocks and b in nonlocal_blocks.get(s, ()):
                stage.append(NonLocal3d(out_ch, mode=nonlocal_mode, norm=norm_b))
        layers.append(nn.Sequential(*stage))
        in_ch = out_ch
    pool = nn.MaxPool3d((2, 1, 1), (2, 1, 1)) if pool1 else None
    return VideoResNet(stem, layers, ClassifierHead(in_ch, num_classes, dropout), pool1=pool)


def c2d_r50(num_classes: int = 400, **kw) -> VideoResNet:
    """C2D ResNet-50: 2D convs everywhere, temporal pooling after res2 (Wang et al. 2018)."""
    kw.setdefault("temporal_kernels", (1, 1, 1, 1))
    return bottleneck_resnet(50, num_classes, stem_kernel=(1, 7, 7), pool1=True, **kw)


def i3d_r50(num_classes: int = 400, **kw) -> VideoResNet:
    """I3D ResNet-50: 5×7×7 stem, 3×1×1 conv_a in alternate blocks (res2 all, res3-4 [3,1], res5 [1,3])."""
    kw.setdefault("temporal_kernels", (3, (3, 1), (3, 1), (1, 3)))
    return bottleneck_resnet(50, num_classes, stem_kernel=(5, 7, 7), pool1=True, **kw)


def nl_i3d_r50(num_classes: int = 400, mode: str = "embedded_gaussian", **kw) -> VideoResNet:
    """I3D ResNet-50 with 5 non-local blocks (2 in res3, 3 in res4, every other block): after
    blocks 1, 3 of res3 and 1, 3, 5 of res4, as in the authors' code and PySlowFast's I3D-NLN."""
    return i3d_r50(num_classes, nonlocal_blocks={1: (1, 3), 2: (1, 3, 5)}, nonlocal_mode=mode, **kw)


def slow_r50(num_classes: int = 400, depth: int = 50, **kw) -> VideoResNet:
    """Slow-only ResNet: 1×7×7 stem, temporal 3×1×1 conv_a only in res4 and res5."""
    return bottleneck_resnet(depth, num_classes, stem_kernel=(1, 7, 7), temporal_kernels=(1, 1, 3, 3), **kw)


def r2plus1d_r50(num_classes: int = 400, **kw) -> VideoResNet:
    """R(2+1)D-50 of the PyTorchVideo zoo: bottlenecks whose middle conv is temporal 3×1×1
    then spatial 1×3×3 at the inner width, no stem pooling, stride 2 already in res2,
    temporal stride 2 in res4 and res5."""
    norm = kw.pop("norm", "bn")
    act = kw.pop("act", "relu")
    cb = conv2plus1d_builder(norm=norm, act=act, mid=lambda i, o: o, temporal_first=True)
    return bottleneck_resnet(
        50,
        num_classes,
        stem_kernel=(1, 7, 7),
        stem_pool=False,
        temporal_kernels=(1, 1, 1, 1),
        conv_b=cb,
        spatial_strides=(2, 2, 2, 2),
        temporal_strides=(1, 1, 2, 2),
        norm=norm,
        act=act,
        **kw,
    )


# ---- presets ---------------------------------------------------------------------------------

_TRAN = "Tran et al., A Closer Look at Spatiotemporal Convolutions for Action Recognition, CVPR 2018"
_TRAN_SPEC = InputSpec(("rgb",), num_frames=16, frame_stride=1, crop_size=112, mean=TV_MEAN, std=TV_STD)
_TRAN_NAMES = {
    "r2d": "R2D (clip folded into channels)",
    "fr2d": "f-R2D (2D per frame)",
    "r3d": "R3D (3D convs)",
    "r2plus1d": "R(2+1)D, M_i per conv",
}
for _arch in ["r2d", "fr2d", "r3d", "mc2", "mc3", "mc4", "mc5", "rmc2", "rmc3", "rmc4", "rmc5", "r2plus1d"]:
    _desc = _TRAN_NAMES.get(_arch) or (
        f"MC{_arch[2:]}: 3D convs below group conv{_arch[2:]}, 2D above"
        if _arch.startswith("mc")
        else f"rMC{_arch[3:]}: 2D convs below group conv{_arch[3:]}, 3D above"
    )
    # R2D folds the clip into the stem's channels, so its clip length is part of the model
    _extra = {"num_frames": 8} if _arch == "r2d" else {}
    register_model(
        f"{_arch}_18",
        tran_resnet,
        _TRAN_SPEC.replace(num_frames=8) if _arch == "r2d" else _TRAN_SPEC,
        paper=_TRAN,
        summary=f"{_desc}, 18 layers",
        arch=_arch,
        depth=18,
        **_extra,
    )
for _arch in ["r3d", "r2plus1d"]:
    register_model(
        f"{_arch}_34",
        tran_resnet,
        _TRAN_SPEC,
        paper=_TRAN,
        summary=f"{_TRAN_NAMES[_arch]}, 34 layers",
        arch=_arch,
        depth=34,
    )
register_model(
    "r2plus1d_18_tv",
    tran_resnet,
    _TRAN_SPEC,
    paper=_TRAN,
    summary="R(2+1)D-18 as torchvision: one mid width per block, 45-channel stem",
    arch="r2plus1d",
    depth=18,
    mid="torchvision",
)

_ZOO = "Feichtenhofer et al., SlowFast Networks for Video Recognition, ICCV 2019 (PySlowFast zoo)"
_NL = "Wang et al., Non-local Neural Networks, CVPR 2018"
register_model(
    "c2d_r50",
    c2d_r50,
    InputSpec(("rgb",), num_frames=8, frame_stride=8, crop_size=224),
    paper=_NL,
    summary="C2D ResNet-50, 8x8",
)
register_model(
    "i3d_r50",
    i3d_r50,
    InputSpec(("rgb",), num_frames=8, frame_stride=8, crop_size=224),
    paper=_NL,
    summary="I3D ResNet-50 (inflated 3x1x1 in alternate blocks), 8x8",
)
register_model(
    "nl_i3d_r50",
    nl_i3d_r50,
    InputSpec(("rgb",), num_frames=8, frame_stride=8, crop_size=224),
    paper=_NL,
    summary="I3D ResNet-50 + 5 embedded-Gaussian non-local blocks, 8x8",
)
register_model(
    "nl_dot_i3d_r50",
    nl_i3d_r50,
    InputSpec(("rgb",), num_frames=8, frame_stride=8, crop_size=224),
    paper=_NL,
    summary="I3D ResNet-50 + 5 dot-product non-local blocks, 8x8",
    mode="dot_product",
)
register_model(
    "slow_r50",
    slow_r50,
    InputSpec(("rgb",), num_frames=8, frame_stride=8, crop_size=224),
    paper=_ZOO,
    summary="Slow-only ResNet-50, 8x8",
)
register_model(
    "slow_r50_4x16",
    slow_r50,
    InputSpec(("rgb",), num_frames=4, frame_stride=16, crop_size=224),
    paper=_ZOO,
    summary="Slow-only ResNet-50, 4x16",
)
register_model(
    "slow_r101",
    slow_r50,
    InputSpec(("rgb",), num_frames=8, frame_stride=8, crop_size=224),
    paper=_ZOO,
    summary="Slow-only ResNet-101, 8x8",
    depth=101,
)
register_model(
    "r2plus1d_r50",
    r2plus1d_r50,
    InputSpec(("rgb",), num_frames=16, frame_stride=4, crop_size=224),
    paper=_TRAN,
    summary="R(2+1)D ResNet-50 (PyTorchVideo zoo), 16x4",
)
