"""S3D and S3D-G: Xie et al., "Rethinking Spatiotemporal Feature Learning: Speed-Accuracy
Trade-offs in Video Classification", ECCV 2018.

The I3D Inception trunk with every k×k×k conv replaced by a temporally separable pair: a
spatial 1×k×k conv then a temporal k×1×1 conv (each with norm and ReLU). S3D-G adds feature
gating ``y = sigmoid(W pool(x) + b) ⊙ x`` to the output of every inception branch and, as the
reference implementation starts gating at ``Conv2d_2c_3x3``, to the stem's separable 3×3 conv
(192 channels, ``features[3]``, the gate appended as its third child).
torchvision's ``s3d`` has this layout (weights load key for key).
"""

from __future__ import annotations

from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.conv import ConvNormAct, NormBuilder
from deepvideo.nn.inception3d import InceptionNet3d, SelfGating
from deepvideo.spec import InputSpec


class SeparableConv3d(nn.Sequential):
    """1×k×k conv-norm-act (spatial stride) then k×1×1 conv-norm-act (temporal stride)."""

    def __init__(self, in_ch: int, out_ch: int, k: int, s: int, norm: NormBuilder) -> None:
        super().__init__(
            ConvNormAct(in_ch, out_ch, (1, k, k), (1, s, s), norm=norm),
            ConvNormAct(out_ch, out_ch, (k, 1, 1), (s, 1, 1), norm=norm),
        )


def s3d(num_classes: int = 400, *, gating: bool = False, dropout: float = 0.2, **kw) -> InceptionNet3d:
    net = InceptionNet3d(num_classes, conv=SeparableConv3d, gating=gating, dropout=dropout, **kw)
    if gating:  # S3D-G gates from Conv2d_2c_3x3 on
        stem_conv = net.features[3]
        net.features[3] = nn.Sequential(*stem_conv, SelfGating(stem_conv[-1][0].out_channels))
    return net


_S3D = "Xie et al., Rethinking Spatiotemporal Feature Learning, ECCV 2018"
_SPEC = InputSpec(("rgb",), num_frames=64, frame_stride=1, crop_size=224)
register_model(
    "s3d",
    s3d,
    _SPEC,
    paper=_S3D,
    summary="S3D: separable (1xkxk + kx1x1) Inception, 64x224",
    published={"params_m": 8.32, "frames": 64, "crop": 224, "source": "torchvision"},
)
register_model("s3d_g", s3d, _SPEC, paper=_S3D, summary="S3D-G: S3D with feature gating", gating=True)
