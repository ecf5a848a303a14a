"""I3D: inflated Inception-v1 (Carreira & Zisserman 2017)."""

import pytest
import torch
from torch import nn

from deepvideo.models import create_model
from deepvideo.nn.inception3d import INCEPTION_V1, InceptionBlock3d


def test_inflated_inception_layout():
    with torch.device("meta"):
        m = create_model("i3d", 400)
    assert m.features[0][0].kernel_size == (7, 7, 7) and m.features[0][0].stride == (2, 2, 2)
    pools = [x for x in m.features if isinstance(x, nn.MaxPool3d)]
    assert [p.kernel_size for p in pools] == [(1, 3, 3), (1, 3, 3), 3, 2]
    blocks = [x for x in m.features if isinstance(x, InceptionBlock3d)]
    assert len(blocks) == 9 == len(INCEPTION_V1)
    assert blocks[-1].branch1[1][0].kernel_size == (3, 3, 3)
    assert m.input_spec.num_frames == 64 and m.input_spec.crop_size == 224


def test_concat_widths():
    for name, (_, b0, _, b1, _, b2, b3) in INCEPTION_V1.items():
        assert b0 + b1 + b2 + b3 in (256, 480, 512, 528, 832, 1024), name


@pytest.mark.parametrize("name,channels", [("i3d", 3), ("i3d_flow", 2)])
def test_tiny_forward_backward(name, channels):
    m = create_model(name, 6).eval()
    key = "rgb" if channels == 3 else "flow"
    out = m({key: torch.randn(1, channels, 8, 32, 32)})
    assert out.shape == (1, 6)
    out.sum().backward()
    assert m.features[0][0].weight.grad is not None
