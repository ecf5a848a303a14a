"""Cross-stream connections into residual units (ST-ResNet, ST-Mult)."""

import pytest
import torch
from torchvision.models.resnet import BasicBlock, Bottleneck

from deepvideo.nn.cross_stream import CrossStreamConnection, ResidualUnit, cross_stream_unit
from deepvideo.nn.inflate import inflate_module
from deepvideo.nn.temporal import temporal_conv


def _block(bottleneck=True, seed=0):
    torch.manual_seed(seed)
    b = Bottleneck(16, 4) if bottleneck else BasicBlock(8, 8)
    for m in b.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.weight.data.uniform_(0.5, 1.5)
    return b.eval()


def _manual_residual(b, x):
    h = b.relu(b.bn1(b.conv1(x)))
    if isinstance(b, Bottleneck):
        h = b.relu(b.bn2(b.conv2(h)))
        return b.bn3(b.conv3(h))
    return b.bn2(b.conv2(h))


@pytest.mark.parametrize("bottleneck", [True, False])
def test_unit_without_extras_equals_block(bottleneck):
    b = _block(bottleneck)
    x = torch.rand(2, 16 if bottleneck else 8, 5, 5)
    assert torch.allclose(ResidualUnit(b)(x), b(x), atol=1e-6)


def test_unit_on_inflated_block_matches_per_frame():
    b = _block()
    b3 = inflate_module(b)
    x = torch.rand(1, 16, 3, 5, 5)
    y = ResidualUnit(b3)(x)
    ref = torch.stack([b(x[:, :, t]) for t in range(3)], 2)
    assert torch.allclose(y, ref, atol=1e-5)


@pytest.mark.parametrize("op", ["add", "mul"])
def test_residual_connection_formula(op):
    b = _block()
    unit = ResidualUnit(b)
    xa, xm = torch.rand(2, 16, 4, 4), torch.rand(2, 16, 4, 4)
    inj = xa + xm if op == "add" else xa * xm
    expected = b.relu(xa + _manual_residual(b, inj))  # f(x^a) + F(x^a * x^m)
    assert torch.allclose(cross_stream_unit(unit, xa, xm, op, "residual"), expected, atol=1e-5)


@pytest.mark.parametrize("op", ["add", "mul"])
def test_direct_connection_formula(op):
    b = _block()
    xa, xm = torch.rand(2, 16, 4, 4), torch.rand(2, 16, 4, 4)
    inj = xa + xm if op == "add" else xa * xm
    assert torch.allclose(cross_stream_unit(ResidualUnit(b), xa, xm, op, "direct"), b(inj), atol=1e-5)


def test_directions():
    ua, um = ResidualUnit(_block(seed=1)), ResidualUnit(_block(seed=2))
    xa, xm = torch.rand(1, 16, 3, 3), torch.rand(1, 16, 3, 3)
    ya, ym = CrossStreamConnection("mul", "residual", "m2a")(ua, um, xa, xm)
    assert torch.allclose(ym, um(xm)) and not torch.allclose(ya, ua(xa))
    ya, ym = CrossStreamConnection("mul", "residual", "a2m")(ua, um, xa, xm)
    assert torch.allclose(ya, ua(xa)) and not torch.allclose(ym, um(xm))
    ya, ym = CrossStreamConnection("add", "residual", "both")(ua, um, xa, xm)
    assert torch.allclose(ya, cross_stream_unit(ua, xa, xm, "add"))
    assert torch.allclose(ym, cross_stream_unit(um, xm, xa, "add"))


def test_bad_arguments():
    with pytest.raises(ValueError, match="direction"):
        CrossStreamConnection("add", "residual", "sideways")
    with pytest.raises(ValueError, match="equal shapes"):
        cross_stream_unit(ResidualUnit(_block()), torch.rand(1, 16, 3, 3), torch.rand(1, 8, 3, 3))
    with pytest.raises(TypeError):
        ResidualUnit(torch.nn.Conv2d(2, 2, 1))


def test_identity_temporal_filters_keep_the_unit_output():
    b3 = inflate_module(_block())
    x = torch.rand(1, 16, 5, 4, 4)
    plain = ResidualUnit(b3)(x)
    unit = ResidualUnit(
        b3,
        temporal_residual=temporal_conv(4, init="identity_center"),
        temporal_shortcut=temporal_conv(16, init="identity_center"),
    )
    assert torch.allclose(unit(x), plain, atol=1e-5)
    unit.temporal_residual = temporal_conv(4, init="identity_avg")
    assert not torch.allclose(unit(x), plain, atol=1e-4)
