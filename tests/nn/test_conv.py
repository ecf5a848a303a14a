"""(2+1)D factorization (Tran et al. 2018), builders and group norm."""

import pytest
import torch
from torch import nn

from deepvideo.nn.conv import (
    Conv2Plus1d,
    ConvNormAct,
    conv1x3x3_builder,
    conv3d,
    depthwise_builder,
    ip_csn_builder,
    midplanes,
    norm_builder,
    resolve_norm,
    resolve_token_norm,
    triple,
)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_paper_example_one_mid_channel():
    # 32 input channels, d = t = 3: a 3D filter has 864 weights, a (2+1)D pair with one
    # intermediate channel 32*9 + 1*3*32 = 384
    assert conv3d(32, 1, 3).weight.numel() == 864
    pair = Conv2Plus1d(32, 32, 3, mid=1, norm="none")
    assert pair[0].weight.numel() + pair[3].weight.numel() == 384


@pytest.mark.parametrize("n_in,n_out", [(64, 64), (64, 128), (128, 128), (256, 512), (3, 64)])
def test_midplanes_matches_3d_parameter_count(n_in, n_out):
    m = midplanes(n_in, n_out)
    assert m == (27 * n_in * n_out) // (9 * n_in + 3 * n_out)
    full = 27 * n_in * n_out
    fact = 9 * n_in * m + 3 * m * n_out
    assert fact <= full and full - fact < 9 * n_in + 3 * n_out  # floor loses less than one mid channel


def test_conv2plus1d_shapes_strides_and_order():
    x = torch.randn(2, 4, 8, 16, 16)
    m = Conv2Plus1d(4, 6, (3, 3, 3), (2, 2, 2), norm="bn")
    assert m.mid_channels == midplanes(4, 6)
    assert m[0].kernel_size == (1, 3, 3) and m[3].kernel_size == (3, 1, 1)
    assert m(x).shape == (2, 6, 4, 8, 8)
    tf = Conv2Plus1d(4, 6, 3, 1, mid=5, temporal_first=True)
    assert tf[0].kernel_size == (3, 1, 1) and tf[0].out_channels == 5 and tf[3].kernel_size == (1, 3, 3)
    assert tf(x).shape == (2, 6, 8, 16, 16)


def test_builders():
    x = torch.randn(1, 8, 4, 8, 8)
    two_d = conv1x3x3_builder()(8, 8, (1, 2, 2))
    assert two_d.kernel_size == (1, 3, 3) and two_d.padding == (0, 1, 1)
    assert two_d(x).shape == (1, 8, 4, 4, 4)
    dw = depthwise_builder()(8, 8, (1, 1, 1))
    assert dw.groups == 8 and n_params(dw) == 8 * 27
    with pytest.raises(ValueError, match="depthwise"):
        depthwise_builder()(8, 16, (1, 1, 1))
    ip = ip_csn_builder()(8, 8, (1, 2, 2))
    assert n_params(ip) == 64 + 8 * 27 and ip(x).shape == (1, 8, 4, 4, 4)


def test_norm_builder_group_norm():
    gn = norm_builder("gn")(64)
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 32
    assert norm_builder("gn")(24).num_groups == 24  # fewer channels than groups
    assert norm_builder("gn")(48).num_groups == 24  # largest divisor <= 32
    assert isinstance(norm_builder("bn")(8), nn.BatchNorm3d)
    block = ConvNormAct(3, 64, 3, norm="gn")
    assert isinstance(block[1], nn.GroupNorm)
    with pytest.raises(ValueError, match="unknown norm"):
        norm_builder("ln")
    with pytest.raises(ValueError, match="3 values"):
        triple((1, 2))


def test_norm_kinds_in_2d_and_for_tokens():
    assert type(norm_builder("bn", dims=2)(8)) is nn.BatchNorm2d
    assert type(resolve_norm("bn", dims=1)(8)) is nn.BatchNorm1d
    bn = resolve_norm("bn", dims=2, eps=1e-3, momentum=0.01)(8)
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)
    with pytest.raises(ValueError, match="dims 1, 2 or 3"):
        norm_builder("bn", dims=4)
    ln = resolve_token_norm()(16)  # ViT's LayerNorm: eps 1e-6
    assert type(ln) is nn.LayerNorm and ln.eps == 1e-6 and ln.normalized_shape == (16,)
    assert type(resolve_token_norm("none")(16)) is nn.Identity
    assert resolve_token_norm(nn.RMSNorm) is nn.RMSNorm
    with pytest.raises(ValueError, match="unknown token norm 'gn'"):
        resolve_token_norm("gn")
