"""Channel-separated networks: Tran et al., "Video Classification with Channel-Separated
Convolutional Networks", ICCV 2019.

A 3D bottleneck ResNet whose 3×3×3 conv is channel-separated: ir-CSN (interaction-reduced)
replaces it by a depthwise 3×3×3 conv; ip-CSN (interaction-preserved) by a 1×1×1 conv
followed by a depthwise 3×3×3 conv. Stem 3×7×7 + 1×3×3 max pool; res3-res5 downsample time
and space by 2. ``csn_r101`` is the PySlowFast / PyTorchVideo zoo's ir-CSN-101 32×2 (Kinetics-400);
its counts, and the paper's for the 152-layer nets, are the presets' published figures.
"""

from __future__ import annotations

from deepvideo.models.registry import register_model
from deepvideo.nn.conv import depthwise_builder, ip_csn_builder
from deepvideo.nn.video_resnet import VideoResNet, bottleneck_resnet
from deepvideo.spec import InputSpec


def csn(depth: int = 101, num_classes: int = 400, *, kind: str = "ir", **kw) -> VideoResNet:
    """ir-CSN or ip-CSN with a ResNet-50/101/152 layout."""
    if kind not in ("ir", "ip"):
        raise ValueError(f"CSN kind must be 'ir' or 'ip', got {kind!r}")
    conv_b = depthwise_builder(3) if kind == "ir" else ip_csn_builder(3)
    return bottleneck_resnet(
        depth,
        num_classes,
        stem_kernel=(3, 7, 7),
        stem_pool=True,
        temporal_kernels=(1, 1, 1, 1),
        conv_b=conv_b,
        temporal_strides=(1, 2, 2, 2),
        **kw,
    )


_CSN = "Tran et al., Video Classification with Channel-Separated Convolutional Networks, ICCV 2019"
_SPEC = InputSpec(("rgb",), num_frames=32, frame_stride=2, crop_size=224)
_PAPER = "Tran et al. 2019"  # parameters of the 152-layer nets: Table 4


@register_model(spec=_SPEC, paper=_CSN, summary="ir-CSN-50, 32x2")
def ir_csn_50(num_classes: int = 400, **kw) -> VideoResNet:
    """ir-CSN with the ResNet-50 layout."""
    return csn(num_classes=num_classes, **{"depth": 50, "kind": "ir", **kw})


@register_model(spec=_SPEC, paper=_CSN, summary="ir-CSN-101, 32x2")
def ir_csn_101(num_classes: int = 400, **kw) -> VideoResNet:
    """ir-CSN with the ResNet-101 layout."""
    return csn(num_classes=num_classes, **{"depth": 101, "kind": "ir", **kw})


@register_model(
    spec=_SPEC,
    paper=_CSN,
    summary="ir-CSN-152, 32x2",
    published={"params_m": 29.6, "frames": 32, "crop": 224, "source": _PAPER},
)
def ir_csn_152(num_classes: int = 400, **kw) -> VideoResNet:
    """ir-CSN with the ResNet-152 layout."""
    return csn(num_classes=num_classes, **{"depth": 152, "kind": "ir", **kw})


@register_model(spec=_SPEC, paper=_CSN, summary="ip-CSN-50, 32x2")
def ip_csn_50(num_classes: int = 400, **kw) -> VideoResNet:
    """ip-CSN with the ResNet-50 layout."""
    return csn(num_classes=num_classes, **{"depth": 50, "kind": "ip", **kw})


@register_model(spec=_SPEC, paper=_CSN, summary="ip-CSN-101, 32x2")
def ip_csn_101(num_classes: int = 400, **kw) -> VideoResNet:
    """ip-CSN with the ResNet-101 layout."""
    return csn(num_classes=num_classes, **{"depth": 101, "kind": "ip", **kw})


@register_model(
    spec=_SPEC,
    paper=_CSN,
    summary="ip-CSN-152, 32x2",
    published={"params_m": 32.8, "frames": 32, "crop": 224, "source": _PAPER},
)
def ip_csn_152(num_classes: int = 400, **kw) -> VideoResNet:
    """ip-CSN with the ResNet-152 layout."""
    return csn(num_classes=num_classes, **{"depth": 152, "kind": "ip", **kw})


@register_model(
    spec=_SPEC,
    paper=_CSN,
    summary="ir-CSN-101 (PyTorchVideo name), 32x2",
    published={"params_m": 22.21, "gflops": 75.62, "frames": 32, "crop": 256, "source": "PySlowFast zoo"},
)
def csn_r101(num_classes: int = 400, **kw) -> VideoResNet:
    """ir-CSN-101 under PyTorchVideo's name (its weights convert to this preset)."""
    return csn(num_classes=num_classes, **{"depth": 101, "kind": "ir", **kw})
