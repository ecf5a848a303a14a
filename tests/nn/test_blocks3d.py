"""Residual blocks with injected builders."""

import torch
from torch import nn

from deepvideo.nn.blocks3d import (
    BasicBlock3d,
    Bottleneck3d,
    projection_shortcut,
    residual_stage,
    zero_init_last_norm,
)
from deepvideo.nn.conv import conv1x3x3_builder, conv2plus1d_builder, conv3x3x3_builder, depthwise_builder
from deepvideo.nn.nonlocal_block import NonLocal3d
from deepvideo.nn.se import SqueezeExcite3d, round_width


def test_basic_block_shortcut_and_strides():
    x = torch.randn(2, 8, 4, 8, 8)
    b = BasicBlock3d(8, 16, (2, 2, 2), conv1=conv3x3x3_builder())
    assert b.shortcut is not None and b.shortcut.conv.stride == (2, 2, 2)
    assert b(x).shape == (2, 16, 2, 4, 4)
    same = BasicBlock3d(8, 8, 1, conv1=conv3x3x3_builder())
    assert same.shortcut is None
    two_d = BasicBlock3d(8, 16, (1, 2, 2), conv1=conv1x3x3_builder())
    assert two_d(x).shape == (2, 16, 4, 4, 4)
    fac = BasicBlock3d(8, 16, (2, 2, 2), conv1=conv2plus1d_builder())
    assert fac(x).shape == (2, 16, 2, 4, 4)


def test_group_norm_injected_everywhere():
    b = Bottleneck3d(8, 4, 16, 2, conv_b=conv1x3x3_builder(), norm="gn", temporal_kernel=3)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in b.modules())
    assert sum(isinstance(m, nn.GroupNorm) for m in b.modules()) == 4  # a, b, c, shortcut
    assert b.conv_a.kernel_size == (3, 1, 1)
    assert b(torch.randn(1, 8, 4, 8, 8)).shape == (1, 16, 2, 4, 4)


def test_zero_init_makes_block_identity():
    x = torch.rand(2, 8, 2, 4, 4)  # non-negative: ReLU(x + 0) == x
    b = Bottleneck3d(8, 4, 8, 1, conv_b=conv3x3x3_builder())
    zero_init_last_norm(b)
    b.eval()
    assert torch.allclose(b(x), x)


def test_se_and_swish_x3d_block():
    b = Bottleneck3d(
        24, 54, 24, (1, 2, 2), conv_b=depthwise_builder(), act_b="swish", se_channels=8, shortcut_norm=False
    )
    assert isinstance(b.se, SqueezeExcite3d) and isinstance(b.act_b, nn.SiLU)
    assert isinstance(b.shortcut.norm, nn.Identity)  # equal widths: PyTorchVideo's X3D has no norm there
    assert b(torch.randn(2, 24, 2, 8, 8)).shape == (2, 24, 2, 4, 4)
    assert round_width(54, 0.0625) == 8 and round_width(12, 2.0) == 24 and round_width(432, 0.0625) == 32


def test_nonlocal_identity_at_init_and_modes():
    x = torch.randn(2, 16, 2, 4, 4)
    for mode in ("embedded_gaussian", "dot_product"):
        nl = NonLocal3d(16, mode=mode).eval()
        assert torch.allclose(nl(x), x)
        nn.init.ones_(nl.norm.weight)
        y = nl(x)
        assert y.shape == x.shape and not torch.allclose(y, x)
    eg, dp = NonLocal3d(16, pool=None).eval(), NonLocal3d(16, mode="dot_product", pool=None).eval()
    dp.load_state_dict(eg.state_dict())
    nn.init.ones_(eg.norm.weight)
    nn.init.ones_(dp.norm.weight)
    assert not torch.allclose(eg(x), dp(x))  # softmax vs 1/N normalization


def test_residual_stage_wires_widths_strides_and_extra_modules():
    calls = []

    def block(i, o, stride, index):
        calls.append((i, o, stride, index))
        return BasicBlock3d(i, o, stride, conv1=conv3x3x3_builder())

    def after(index):
        return NonLocal3d(16) if index == 1 else None

    stage = residual_stage(block, 8, 16, 3, (2, 2, 2), after_block=after)
    assert calls == [(8, 16, (2, 2, 2), 0), (16, 16, 1, 1), (16, 16, 1, 2)]  # only the first block strides
    assert [type(m).__name__ for m in stage] == ["BasicBlock3d", "BasicBlock3d", "NonLocal3d", "BasicBlock3d"]
    assert stage(torch.randn(1, 8, 4, 8, 8)).shape == (1, 16, 2, 4, 4)


def test_projection_shortcut_only_where_shape_changes():
    bn = nn.BatchNorm3d
    assert projection_shortcut(8, 8, (1, 1, 1), bn) is None
    strided = projection_shortcut(8, 8, (1, 2, 2), bn)
    assert strided.conv.stride == (1, 2, 2) and isinstance(strided.norm, nn.BatchNorm3d)
    assert isinstance(projection_shortcut(8, 16, (1, 1, 1), bn, with_norm=False).norm, nn.Identity)
