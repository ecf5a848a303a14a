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
# parameters (M) of the 152-layer nets, Tran et al. 2019, Table 4
_PAPER_PARAMS = {("ir", 152): 29.6, ("ip", 152): 32.8}
for _kind in ("ir", "ip"):
    for _depth in (50, 101, 152):
        _params = _PAPER_PARAMS.get((_kind, _depth))
        register_model(
            f"{_kind}_csn_{_depth}",
            csn,
            _SPEC,
            paper=_CSN,
            summary=f"{_kind}-CSN-{_depth}, 32x2",
            published=None if _params is None else {
                "params_m": _params, "frames": 32, "crop": 224, "source": "Tran et al. 2019"
            },
            depth=_depth,
            kind=_kind,
        )
register_model(
    "csn_r101",
    csn,
    _SPEC,
    paper=_CSN,
    summary="ir-CSN-101 (PyTorchVideo name), 32x2",
    published={"params_m": 22.21, "gflops": 75.62, "frames": 32, "crop": 256, "source": "PySlowFast zoo"},
    depth=101,
    kind="ir",
)
