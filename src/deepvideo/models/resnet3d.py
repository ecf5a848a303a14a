"""3D ResNets: the Tran et al. 2018 family (R2D, f-R2D, R3D, MCx, rMCx, R(2+1)D) and the
bottleneck ResNet-50/101 family of the SlowFast model zoo (C2D, I3D-R50, Slow-only, R(2+1)D-50).

- Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition", CVPR
  2018. 18/34-layer ResNets on 3×L×H×W clips with global average pooling. R2D folds the L
  frames into the input channels; f-R2D applies 2D convs to every frame; R3D uses t×d×d convs
  throughout; MCx uses 3D convs in the groups below x (conv1..conv{x-1}) and 2D above; rMCx is
  the reverse; R(2+1)D factorizes every 3D conv into a spatial 1×d×d conv to M_i channels and
  a temporal t×1×1 conv, M_i = ⌊t d² N_{i-1} N_i / (d² N_{i-1} + t N_i)⌋ (parameters as R3D).
  The paper's parameter counts are the presets' published figures (``deepvideo models``,
  ``docs/model_zoo.md``).
  torchvision's ``r2plus1d_18`` computes one M per block from the block's input width and uses
  it for both convs (and a 45-channel stem); it is registered as ``r2plus1d_18_tv``.
- Wang et al., "Non-local Neural Networks", CVPR 2018 (C2D / I3D ResNet-50 baselines).
- Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019 (Slow-only).
- The bottleneck presets follow the PySlowFast / PyTorchVideo zoo (Kinetics-400), whose
  parameter and FLOP counts are their published figures in the registry.
"""

from __future__ import annotations

from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.blocks3d import BasicBlock3d, residual_stage
from deepvideo.nn.conv import (
    Conv2Plus1d,
    NormBuilder,
    conv1x3x3_builder,
    conv2plus1d_builder,
    conv3x3x3_builder,
    midplanes,
    resolve_act,
    resolve_norm,
)
from deepvideo.nn.heads import ClassifierHead
from deepvideo.nn.stems import stem3d
from deepvideo.nn.video_resnet import VideoResNet, bottleneck_resnet
from deepvideo.spec import InputSpec

TV_MEAN = (0.43216, 0.394666, 0.37645)  # torchvision's video models
TV_STD = (0.22803, 0.22145, 0.216989)
_TRAN = "Tran et al., A Closer Look at Spatiotemporal Convolutions for Action Recognition, CVPR 2018"


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

        def block(i, o, stride, b, kind=kind):
            if kind == "3d":
                conv = conv3x3x3_builder()
            elif kind == "2d":
                conv = conv1x3x3_builder()
            else:  # the paper's M_i per conv, or torchvision's one M per block from its input width
                m = midplanes(i, o) if mid == "torchvision" else None
                conv = conv2plus1d_builder(norm=norm_b, act=act, mid=m)
            return BasicBlock3d(i, o, stride, conv1=conv, conv2=conv, norm=norm_b, act=act)

        layers.append(residual_stage(block, in_ch, out_ch, blocks, (1 if kind == "2d" else s, s, s)))
        in_ch = out_ch
    return VideoResNet(stem, layers, ClassifierHead(in_ch, num_classes, dropout), fold_time=arch == "r2d")


# ---- Tran et al. presets ------------------------------------------------------------------------

_TRAN_SPEC = InputSpec(("rgb",), num_frames=16, frame_stride=1, crop_size=112, mean=TV_MEAN, std=TV_STD)
# parameters (M) of the 18-layer nets on Kinetics, Tran et al. 2018, Table 2; the 2D nets see 8 frames


def _tran_table2(params_m: float, frames: int = 16) -> dict:
    return {"params_m": params_m, "frames": frames, "crop": 112, "source": "Tran et al. 2018"}


@register_model(spec=_TRAN_SPEC.replace(num_frames=8), paper=_TRAN, published=_tran_table2(11.4, 8))
def r2d_18(
    num_classes: int = 400, *, arch: str = "r2d", depth: int = 18, num_frames: int = 8, **kw
) -> VideoResNet:
    """R2D (clip folded into channels), 18 layers"""
    # R2D folds the clip into the stem's channels, so its clip length is part of the model
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, num_frames=num_frames, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN, published=_tran_table2(11.4, 8))
def fr2d_18(num_classes: int = 400, *, arch: str = "fr2d", depth: int = 18, **kw) -> VideoResNet:
    """f-R2D (2D per frame), 18 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN, published=_tran_table2(33.4))
def r3d_18(num_classes: int = 400, *, arch: str = "r3d", depth: int = 18, **kw) -> VideoResNet:
    """R3D (3D convs), 18 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN, published=_tran_table2(11.4))
def mc2_18(num_classes: int = 400, *, arch: str = "mc2", depth: int = 18, **kw) -> VideoResNet:
    """MC2: 3D convs below group conv2, 2D above, 18 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN, published=_tran_table2(11.7))
def mc3_18(num_classes: int = 400, *, arch: str = "mc3", depth: int = 18, **kw) -> VideoResNet:
    """MC3: 3D convs below group conv3, 2D above, 18 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN, published=_tran_table2(12.7))
def mc4_18(num_classes: int = 400, *, arch: str = "mc4", depth: int = 18, **kw) -> VideoResNet:
    """MC4: 3D convs below group conv4, 2D above, 18 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN, published=_tran_table2(16.9))
def mc5_18(num_classes: int = 400, *, arch: str = "mc5", depth: int = 18, **kw) -> VideoResNet:
    """MC5: 3D convs below group conv5, 2D above, 18 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN, published=_tran_table2(33.3))
def rmc2_18(num_classes: int = 400, *, arch: str = "rmc2", depth: int = 18, **kw) -> VideoResNet:
    """rMC2: 2D convs below group conv2, 3D above, 18 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN, published=_tran_table2(33.0))
def rmc3_18(num_classes: int = 400, *, arch: str = "rmc3", depth: int = 18, **kw) -> VideoResNet:
    """rMC3: 2D convs below group conv3, 3D above, 18 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN, published=_tran_table2(32.0))
def rmc4_18(num_classes: int = 400, *, arch: str = "rmc4", depth: int = 18, **kw) -> VideoResNet:
    """rMC4: 2D convs below group conv4, 3D above, 18 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN, published=_tran_table2(27.9))
def rmc5_18(num_classes: int = 400, *, arch: str = "rmc5", depth: int = 18, **kw) -> VideoResNet:
    """rMC5: 2D convs below group conv5, 3D above, 18 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN, published=_tran_table2(33.3))
def r2plus1d_18(num_classes: int = 400, *, arch: str = "r2plus1d", depth: int = 18, **kw) -> VideoResNet:
    """R(2+1)D, M_i per conv, 18 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN)
def r3d_34(num_classes: int = 400, *, arch: str = "r3d", depth: int = 34, **kw) -> VideoResNet:
    """R3D (3D convs), 34 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


@register_model(spec=_TRAN_SPEC, paper=_TRAN)
def r2plus1d_34(num_classes: int = 400, *, arch: str = "r2plus1d", depth: int = 34, **kw) -> VideoResNet:
    """R(2+1)D, M_i per conv, 34 layers"""
    return tran_resnet(num_classes=num_classes, arch=arch, depth=depth, **kw)


register_model(
    "r2plus1d_18_tv",
    tran_resnet,
    _TRAN_SPEC,
    paper=_TRAN,
    summary="R(2+1)D-18 as torchvision: one mid width per block, 45-channel stem",
    published={"params_m": 31.51, "gflops": 40.52, "frames": 16, "crop": 112, "source": "torchvision"},
    arch="r2plus1d",
    depth=18,
    mid="torchvision",
)


# ---- bottleneck ResNet-50/101 (C2D, I3D, Slow, R(2+1)D-50): deepvideo.nn.video_resnet -------

_ZOO = "Feichtenhofer et al., SlowFast Networks for Video Recognition, ICCV 2019 (PySlowFast zoo)"
_NL = "Wang et al., Non-local Neural Networks, CVPR 2018"
_PSF = "PySlowFast zoo"
_8X8 = InputSpec(("rgb",), num_frames=8, frame_stride=8, crop_size=224)


@register_model(
    spec=_8X8,
    paper=_NL,
    summary="C2D ResNet-50, 8x8",
    published={"params_m": 24.33, "gflops": 25.89, "frames": 8, "crop": 256, "source": _PSF},
)
def c2d_r50(num_classes: int = 400, **kw) -> VideoResNet:
    """C2D ResNet-50: 2D convs everywhere, temporal pooling after res2 (Wang et al. 2018)."""
    kw.setdefault("temporal_kernels", (1, 1, 1, 1))
    return bottleneck_resnet(50, num_classes, stem_kernel=(1, 7, 7), pool1=True, **kw)


@register_model(
    spec=_8X8,
    paper=_NL,
    summary="I3D ResNet-50 (inflated 3x1x1 in alternate blocks), 8x8",
    published={"params_m": 28.04, "gflops": 37.53, "frames": 8, "crop": 256, "source": _PSF},
)
def i3d_r50(num_classes: int = 400, **kw) -> VideoResNet:
    """I3D ResNet-50: 5×7×7 stem, 3×1×1 conv_a in alternate blocks (res2 all, res3-4 [3,1], res5 [1,3])."""
    kw.setdefault("temporal_kernels", (3, (3, 1), (3, 1), (1, 3)))
    return bottleneck_resnet(50, num_classes, stem_kernel=(5, 7, 7), pool1=True, **kw)


@register_model(spec=_8X8, paper=_NL, summary="I3D ResNet-50 + 5 embedded-Gaussian non-local blocks, 8x8")
def nl_i3d_r50(num_classes: int = 400, mode: str = "embedded_gaussian", **kw) -> VideoResNet:
    """I3D ResNet-50 with 5 non-local blocks (2 in res3, 3 in res4, every other block): after
    blocks 1, 3 of res3 and 1, 3, 5 of res4, as in the authors' code and PySlowFast's I3D-NLN."""
    return i3d_r50(num_classes, nonlocal_blocks={1: (1, 3), 2: (1, 3, 5)}, nonlocal_mode=mode, **kw)


@register_model(spec=_8X8, paper=_NL, summary="I3D ResNet-50 + 5 dot-product non-local blocks, 8x8")
def nl_dot_i3d_r50(num_classes: int = 400, **kw) -> VideoResNet:
    """:func:`nl_i3d_r50` with dot-product non-local blocks."""
    return nl_i3d_r50(num_classes, **{"mode": "dot_product", **kw})


@register_model(
    spec=_8X8,
    paper=_ZOO,
    summary="Slow-only ResNet-50, 8x8",
    published={"params_m": 32.45, "gflops": 54.52, "frames": 8, "crop": 256, "source": _PSF},
)
def slow_r50(num_classes: int = 400, **kw) -> VideoResNet:
    """Slow-only ResNet-50: 1×7×7 stem, temporal 3×1×1 conv_a only in res4 and res5."""
    return _slow(50, num_classes, **kw)


def _slow(depth: int, num_classes: int, **kw) -> VideoResNet:
    """The Slow pathway alone (Feichtenhofer et al. 2019, Table 1) at ``depth`` layers."""
    return bottleneck_resnet(depth, num_classes, stem_kernel=(1, 7, 7), temporal_kernels=(1, 1, 3, 3), **kw)


@register_model(
    spec=InputSpec(("rgb",), num_frames=4, frame_stride=16, crop_size=224),
    paper=_ZOO,
    summary="Slow-only ResNet-50, 4x16",
    published={"params_m": 32.45, "gflops": 27.55, "frames": 4, "crop": 256, "source": _PSF},
)
def slow_r50_4x16(num_classes: int = 400, **kw) -> VideoResNet:
    """:func:`slow_r50` for 4-frame clips at stride 16."""
    return slow_r50(num_classes, **kw)


@register_model(spec=_8X8, paper=_ZOO, summary="Slow-only ResNet-101, 8x8")
def slow_r101(num_classes: int = 400, **kw) -> VideoResNet:
    """Slow-only ResNet-101: res2-res5 of [3, 4, 23, 3] bottlenecks, 1×7×7 stem, temporal
    3×1×1 conv_a only in res4 and res5."""
    return _slow(101, num_classes, **kw)


@register_model(
    spec=InputSpec(("rgb",), num_frames=16, frame_stride=4, crop_size=224),
    paper=_TRAN,
    summary="R(2+1)D ResNet-50 (PyTorchVideo zoo), 16x4",
    published={"params_m": 28.11, "gflops": 76.45, "frames": 16, "crop": 256, "source": _PSF},
)
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
