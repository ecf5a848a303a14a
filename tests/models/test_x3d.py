"""X3D (Feichtenhofer 2020)."""

import pytest
import torch
from torch import nn

from deepvideo.models import create_model, list_models


def test_x3d_m_structure():
    m = create_model("x3d_m", 400)
    assert [len(getattr(m, f"layer{i}")) for i in range(1, 5)] == [3, 5, 11, 7]
    assert [getattr(m, f"layer{i}")[0].conv_c.out_channels for i in range(1, 5)] == [24, 48, 96, 192]
    assert [getattr(m, f"layer{i}")[0].conv_a.out_channels for i in range(1, 5)] == [54, 108, 216, 432]
    assert [b.se is not None for b in m.layer2] == [True, False, True, False, True]  # every other block
    assert all(isinstance(b.act_b, nn.SiLU) and b.conv_b.groups == b.conv_b.in_channels for b in m.layer3)
    assert m.stem[1].kernel_size == (5, 1, 1) and m.stem[1].groups == 24
    assert m.head.conv_pre.out_channels == 432 and m.head.fc.in_features == 2048
    assert [len(getattr(create_model("x3d_l", 10), f"layer{i}")) for i in range(1, 5)] == [5, 10, 25, 15]


def test_specs():
    frames = {i.name: (i.spec.num_frames, i.spec.frame_stride) for i in list_models("x3d")}
    assert frames == {"x3d_xs": (4, 12), "x3d_s": (13, 6), "x3d_m": (16, 5), "x3d_l": (16, 5)}


@pytest.mark.parametrize("name", [i.name for i in list_models("x3d")])
def test_tiny_forward_backward(name, samples_independent):
    m = create_model(name, 4, depth_factor=1.0, width_factor=1.0, head_width=16)
    assert samples_independent(m, {"rgb": torch.randn(2, 3, 4, 32, 32)}).shape == (2, 4)
    m(torch.randn(1, 3, 4, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
