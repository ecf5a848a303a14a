"""SlowFast (Feichtenhofer et al. 2019)."""

import pytest
import torch

from deepvideo.models import create_model, list_models
from deepvideo.models.slowfast import FastToSlow


def test_pathways_and_lateral_connections():
    m = create_model("slowfast_r50_4x16", 10)
    assert m.alpha == 8 and m.slow_stem[0].out_channels == 64 and m.fast_stem[0].out_channels == 8
    assert m.slow_stem[0].kernel_size == (1, 7, 7) and m.fast_stem[0].kernel_size == (5, 7, 7)
    lat = m.fuse0.conv
    assert lat.kernel_size == (5, 1, 1) and lat.stride == (8, 1, 1) and lat.out_channels == 16  # 2*beta*C
    assert [b.conv_a.kernel_size[0] for b in m.slow_layer3] == [3] * 6
    assert {b.conv_a.kernel_size[0] for b in m.slow_layer2} == {1}
    assert {b.conv_a.kernel_size[0] for layer in (m.fast_layer1, m.fast_layer4) for b in layer} == {3}
    assert m.slow_layer1[0].conv_a.in_channels == 64 + 16 and m.fc.in_features == 2048 + 256
    assert create_model("slowfast_r50", 10).fuse1.conv.kernel_size == (7, 1, 1)


def test_slow_pathway_is_subsampled_inside():
    m = create_model("slowfast_r50", 3, width=16).eval()  # alpha = 4
    x = torch.arange(16.0).view(1, 1, 16, 1, 1).expand(1, 3, 16, 2, 2)
    slow, fast = m.pathways(x)
    assert slow.shape[2] == 4 and fast is x
    assert slow[0, 0, :, 0, 0].tolist() == [0.0, 5.0, 10.0, 15.0]  # linspace(0, T-1, T/alpha)


def test_any_t_tau_and_errors():
    m = create_model("slowfast_r50_4x16", 3, width=16).eval()
    for t in (8, 16, 24):
        assert m({"rgb": torch.randn(1, 3, t, 32, 32)}).shape == (1, 3)
    with pytest.raises(ValueError, match="at least alpha"):
        m(torch.randn(1, 3, 4, 32, 32))
    f = FastToSlow(2, 4)
    with pytest.raises(ValueError, match=r"alpha\*T"):
        f(torch.randn(1, 8, 3, 4, 4), torch.randn(1, 2, 8, 4, 4))


@pytest.mark.parametrize("name", [i.name for i in list_models("slowfast")])
def test_tiny_forward_backward(name):
    m = create_model(name, 4, width=16).eval()
    out = m({"rgb": torch.randn(1, 3, 8, 32, 32)})
    assert out.shape == (1, 4)
    out.sum().backward()
    assert m.fuse0.conv.weight.grad is not None
