"""Tiny Video Networks: TVN-1 layout, "same" padding, gates, forward/backward."""

import math

import pytest
import torch
from torch import nn

from deepvideo.models import create_model
from deepvideo.models.tvn import TVN1, ChannelGate, SamePool, TinyVideoNet, TVNBlock, same_pad


def test_tvn1_layout_unrolled():
    """4 blocks repeated 2, 1, 2, 2 times; the temporal max pool (2, stride 2) only in the first
    unit; expansion widths filters x expand; SE widths int(C x ratio)."""
    with torch.device("meta"):
        m = create_model("tvn_1", 339)
    units = list(m.blocks)
    assert len(units) == 7
    assert [u.out_channels for u in units] == [256, 256, 512, 512, 512, 2048, 2048]
    assert isinstance(units[0].temporal, SamePool) and units[0].temporal.kernel == (2, 1, 1)
    assert all(isinstance(u.temporal, nn.Identity) for u in units[1:])
    assert units[1].squeeze is None and units[2].squeeze.fc[0].out_features == int(512 * 0.9067600752736579)
    assert units[5].squeeze.fc[0].out_features == int(2048 * 0.7265534208526172) and units[5].gate is not None
    assert [u.skip is not None for u in units] == [False, False, False, True, True, False, False]
    depthwise = units[3].spatial[1].conv
    assert depthwise.groups == 128 and depthwise.kernel_size == (1, 5, 5) and depthwise.stride == (1, 3, 3)
    assert units[4].spatial[1].conv.stride == (1, 1, 1)  # repeats run with stride 1
    assert m.input_spec.num_frames == 2 and m.input_spec.crop_size == 224 and m.fc.in_features == 2048


@pytest.mark.parametrize("size,k,s", [(112, 4, 2), (56, 3, 2), (28, 5, 3), (10, 3, 2), (7, 2, 2)])
def test_same_padding_gives_ceil_outputs_extra_at_the_end(size, k, s):
    x = torch.arange(float(size)).view(1, 1, 1, 1, size).expand(1, 1, 1, size, size)
    padded = same_pad(x, (1, k, k), (1, s, s))
    out = (padded.shape[-1] - k) // s + 1
    assert out == math.ceil(size / s)
    total, before = padded.shape[-1] - size, (padded.shape[-1] - size) // 2  # the odd one at the end
    assert torch.equal(padded[0, 0, 0, before, before : before + size], x[0, 0, 0, 0])
    assert total == max((math.ceil(size / s) - 1) * s + k - size, 0)


def test_same_pools_ignore_padding():
    x = torch.full((1, 2, 1, 5, 5), 3.0)
    assert torch.allclose(SamePool("avgpool", (1, 3, 3), (1, 2, 2))(x), torch.full((1, 2, 1, 3, 3), 3.0))
    neg = -torch.ones(1, 1, 1, 5, 5)
    assert torch.all(SamePool("maxpool", (1, 3, 3), (1, 2, 2))(neg) == -1)


def test_channel_gates_follow_their_formulas():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 2, 3, 3)
    cg = ChannelGate(8)
    torch.testing.assert_close(cg(x), x * torch.sigmoid(cg.fc(x.mean(dim=(2, 3, 4))))[:, :, None, None, None])
    se = ChannelGate(8, 4)
    hidden = torch.relu(se.fc[0](x.mean(dim=(2, 3, 4))))
    torch.testing.assert_close(se(x), x * torch.sigmoid(se.fc[2](hidden))[:, :, None, None, None])


def test_tiny_forward_backward_and_injected_norm(samples_independent):
    torch.manual_seed(0)
    m = create_model("tvn_1_small", 5, width=0.125)
    out = m({"rgb": torch.randn(2, 3, 2, 32, 32)})
    assert out.shape == (2, 5)
    out.sum().backward()
    assert [n for n, p in m.named_parameters() if p.grad is None] == []
    samples_independent(m, {"rgb": torch.randn(2, 3, 2, 32, 32)})
    gn = TinyVideoNet(3, width=0.125, norm="gn", act="swish")
    assert not any(isinstance(x, nn.BatchNorm3d) for x in gn.modules())
    assert any(isinstance(x, nn.SiLU) for x in gn.modules())
    with pytest.raises(ValueError, match="unknown TVN layer types"):
        TinyVideoNet(3, blocks=(TVNBlock("conv", 3, 1, "1d", 1, 1, 8, 1, 0.0, False, False, 1),))
    assert TVN1[2].skip and not TVN1[0].skip


def test_tvn1_cannot_tell_the_order_of_its_two_frames():
    """TVN-1's only temporal layer is the first unit's max pool over its two frames (every later
    layer is per frame), so its scores are unchanged when the frames are swapped: a clip and its
    time reversal (move left / move right, grow / shrink, ...) get the same class."""
    torch.manual_seed(0)
    m = TinyVideoNet(5, blocks=TVN1, width=0.125, dropout=0.0).train()  # batch statistics: unit-scale outputs
    x = torch.randn(2, 3, 2, 32, 32)
    with torch.no_grad():
        out, swapped = m(x), m(x.flip(2))
        other = m(torch.cat([x[:, :, :1], torch.randn(2, 3, 1, 32, 32)], dim=2))
    assert out.abs().max() > 1e-3
    assert torch.allclose(out, swapped, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(out, other, rtol=1e-2, atol=1e-4)  # yet it does see the second frame
