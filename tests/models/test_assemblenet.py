"""AssembleNet: the published 4-stream graph, sigmoid-weighted connections, forward/backward."""

import pytest
import torch
from torch import nn

from deepvideo.models import create_model
from deepvideo.models.assemblenet import (
    ASN50,
    ASN_WEIGHTS,
    AssembleNet,
    InterleavedBottleneck,
    WeightedFusion,
)


def test_published_graph_and_connection_weights():
    with torch.device("meta"):
        m = create_model("assemblenet_50", 400)
    assert [n[0] for n in ASN50[:4]] == [-1, -1, -2, -2]  # two RGB and two flow stems
    assert m.nodes[0][0][0].out_channels == 32 and m.nodes[2][0][0].in_channels == 2  # 128 / 4 stems
    assert m.nodes[0][1][0].dilation == (4, 1, 1) and m.nodes[0][1][0].kernel_size == (5, 1, 1)
    assert m.final == [14] and m.fc.in_features == 4 * 512
    assert [len(m.nodes[i]) for i in (4, 8, 12, 14)] == [3, 4, 6, 3]  # ResNet-50 stage depths per level
    fusion = m.fusions[8]
    assert fusion.channels == [32, 128, 128, 128, 128] and fusion.out_channels == 128
    with torch.device("cpu"):
        weights = torch.sigmoid(create_model("assemblenet_50_small", 4).fusions[8].logits)
    torch.testing.assert_close(weights, torch.tensor(ASN_WEIGHTS[8]))
    assert all(len(ASN_WEIGHTS[i]) == len(ASN50[i][1]) for i in ASN_WEIGHTS)


def test_bottlenecks_interleave_2d_and_temporal_modules():
    with torch.device("meta"):
        m = create_model("assemblenet_50", 400)
    node = m.nodes[12]  # level 2, 6 blocks, width 256, dilation 1, stride 2
    kernels = [b.conv_a[0].kernel_size for b in node]
    assert kernels == [(1, 1, 1), (3, 1, 1)] * 3
    assert node[0].conv_b[0].stride == (1, 2, 2) and node[0].conv_b[0].out_channels == 256  # inner width
    assert node[0].shortcut is not None and node[1].shortcut is None
    assert m.nodes[13][1].conv_a[0].dilation == (4, 1, 1)


def test_weighted_fusion_is_the_sigmoid_weighted_sum():
    torch.manual_seed(0)
    fusion = WeightedFusion([4, 4, 8], init=(0.2, 0.7, 0.5))
    a, b = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 4, 2, 8, 8)
    c = torch.randn(1, 8, 2, 4, 4)
    pooled_b = nn.functional.max_pool3d(b, (1, 2, 2))  # 8x8 pooled to 4x4: window = stride = 2
    expected = fusion.project["4"](0.2 * a + 0.7 * pooled_b) + 0.5 * c  # narrow group projected to 8
    torch.testing.assert_close(fusion([a, b, c]), expected)
    assert fusion.logits.requires_grad
    assert not WeightedFusion([4, 4], (0.5, 0.5), learn=False).logits.requires_grad
    with pytest.raises(ValueError, match="2 connection weights for 3 inputs"):
        WeightedFusion([4, 4, 4], (0.5, 0.5))


def test_tiny_forward_backward_learns_connection_weights(samples_independent):
    torch.manual_seed(0)
    m = create_model("assemblenet_50_small", 5, width=0.125)
    batch = {"rgb": torch.randn(2, 3, 4, 32, 32), "flow": torch.randn(2, 2, 4, 32, 32)}
    out = m(batch)
    assert out.shape == (2, 5)
    out.sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None]
    assert missing == [] and m.fusions[6].logits.grad.abs().sum() > 0
    samples_independent(m, {"rgb": torch.randn(2, 3, 4, 32, 32), "flow": torch.randn(2, 2, 4, 32, 32)})
    with pytest.raises(KeyError, match="flow stems need batch\\['flow'\\]"):
        m({"rgb": batch["rgb"]})


def test_injected_norm_and_bad_graphs():
    gn = AssembleNet(3, width=0.125, stage_depths=(1, 1, 1, 1), norm="gn", act="swish")
    assert not any(isinstance(x, nn.BatchNorm3d) for x in gn.modules())
    assert isinstance(InterleavedBottleneck(8, 2, 4, 1, True, 2, gn_norm(), nn.ReLU).conv_c[1], nn.GroupNorm)
    with pytest.raises(ValueError, match="inputs must come earlier"):
        AssembleNet(3, structure=((-1, 1), (0, (2,), 8, 1, 1), (3, (1,), 8, 1, 1)), weights={})


def gn_norm():
    from deepvideo.nn.conv import norm_builder

    return norm_builder("gn", groups=2)
