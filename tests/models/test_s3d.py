"""S3D and S3D-G (Xie et al. 2018)."""

import pytest
import torch

from deepvideo.models import create_model
from deepvideo.models.s3d import SeparableConv3d
from deepvideo.nn.inception3d import SelfGating


def test_separable_convs_replace_3d():
    m = create_model("s3d", 400)
    stem = m.features[0]
    assert isinstance(stem, SeparableConv3d)
    assert stem[0][0].kernel_size == (1, 7, 7) and stem[1][0].kernel_size == (7, 1, 1)
    assert stem[0][0].stride == (1, 2, 2) and stem[1][0].stride == (2, 1, 1)
    assert not any(
        getattr(x, "kernel_size", None) == (3, 3, 3) for x in m.modules() if isinstance(x, torch.nn.Conv3d)
    )
    assert sum(p.numel() for p in m.parameters()) == 8_320_048  # torchvision's s3d


def test_gating():
    g = create_model("s3d_g", 10)
    assert sum(isinstance(x, SelfGating) for x in g.modules()) == 9 * 4 + 1
    gate = SelfGating(4)
    torch.nn.init.zeros_(gate.fc.weight)
    torch.nn.init.constant_(gate.fc.bias, -1e4)
    assert torch.all(gate(torch.ones(1, 4, 2, 2, 2)) == 0)


@pytest.mark.parametrize("name", ["s3d", "s3d_g"])
def test_tiny_forward_backward(name, samples_independent):
    m = create_model(name, 3)
    for norm in m.modules():  # default init shrinks activations ~4x a layer: keep their scale
        if isinstance(norm, torch.nn.BatchNorm3d):
            torch.nn.init.constant_(norm.weight, 3.0)
    assert samples_independent(m, {"rgb": torch.randn(2, 3, 8, 32, 32)}).shape == (2, 3)
    m({"rgb": torch.randn(1, 3, 8, 32, 32)}).sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_s3d_g_gates_the_stem_3x3_conv_output():
    """Conv2d_2c_3x3 (the separable 1x3x3 + 3x1x1 conv to 192 channels) is followed by
    y = sigmoid(W avgpool(x) + b) ⊙ x, as the reference starts gating there."""
    torch.manual_seed(0)
    g = create_model("s3d_g", 10).eval()
    conv, gate = g.features[3][:2], g.features[3][2]
    assert isinstance(gate, SelfGating) and gate.fc.in_features == 192
    assert conv[0][0].kernel_size == (1, 3, 3) and conv[1][0].kernel_size == (3, 1, 1)
    x = torch.randn(1, 64, 2, 4, 4)
    with torch.no_grad():
        h = conv(x)
        expected = h * torch.sigmoid(gate.fc(h.mean(dim=(2, 3, 4))))[:, :, None, None, None]
        torch.testing.assert_close(g.features[3](x), expected)
    plain = create_model("s3d", 10)
    assert not any(isinstance(m, SelfGating) for m in plain.features[3].modules())
