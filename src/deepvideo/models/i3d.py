"""I3D: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model and the Kinetics
Dataset", CVPR 2017.

Inception-v1 (GoogLeNet with batch norm) inflated to 3D: every k×k filter becomes k×k×k
(the stem 7×7×7 with stride 2 in time too), pooling 1×3×3 in the first two max pools so early
time is kept, then 3×3×3 and 2×2×2. Inputs 64×224². ImageNet weights are inflated by repeating
a 2D filter N times along time and dividing by N (``deepvideo.nn.inflate``).
UCF101/HMDB51 with Kinetics pre-training: RGB 95.4/74.5, flow 95.4/74.6, two-stream 97.9/80.2.

The network (:class:`~deepvideo.nn.inception3d.InceptionNet3d`: ``features`` with inception
blocks ``branch0..3``, ``classifier``) is shared with S3D (:mod:`deepvideo.models.s3d`), which
swaps the 3D convs for separable ones.
"""

from __future__ import annotations

from deepvideo.models.registry import register_model
from deepvideo.nn.inception3d import InceptionNet3d
from deepvideo.spec import InputSpec


def i3d(num_classes: int = 400, **kw) -> InceptionNet3d:
    return InceptionNet3d(num_classes, **kw)


_I3D = "Carreira & Zisserman, Quo Vadis, Action Recognition?, CVPR 2017"
register_model(
    "i3d",
    i3d,
    InputSpec(
        ("rgb",), num_frames=64, frame_stride=1, crop_size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
    ),
    paper=_I3D,
    summary="I3D: inflated Inception-v1 (BN), RGB 64x224",
)
register_model(
    "i3d_flow",
    i3d,
    InputSpec(("flow",), num_frames=64, flow_stack=64, crop_size=224, mean=(0.0, 0.0), std=(20.0, 20.0)),
    paper=_I3D,
    summary="I3D flow stream: 2-channel input, 64 flow fields",
    in_channels=2,
    modality="flow",
)
