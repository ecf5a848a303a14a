"""P3D blocks A, B, C and P3D ResNet interleaving (Qiu et al. 2017)."""

import pytest
import torch

from deepvideo.models import create_model, list_models
from deepvideo.models.p3d import P3DBlock


def test_blocks_compose_s_and_t_as_the_paper():
    x = torch.randn(1, 8, 4, 8, 8)
    for kind in "ABC":
        b = P3DBlock(8, 4, 8, kind=kind).eval()
        assert b.conv_s.kernel_size == (1, 3, 3) and b.conv_t.kernel_size == (3, 1, 1)
        assert b(x).shape == x.shape
    # B is parallel: T sees the block input, so zeroing S's path must not silence T
    b = P3DBlock(8, 4, 8, kind="B").eval()
    torch.nn.init.zeros_(b.conv_s.weight)
    c = P3DBlock(8, 4, 8, kind="C").eval()
    c.load_state_dict(b.state_dict())
    a = P3DBlock(8, 4, 8, kind="A").eval()
    a.load_state_dict(b.state_dict())
    # with S's conv zero, S outputs relu(bn(0)) = 0: A and C reduce to the same block, while
    # B's parallel T still sees the block input
    assert torch.allclose(a(x), c(x)) and not torch.allclose(b(x), a(x))
    with pytest.raises(ValueError, match="'A', 'B' or 'C'"):
        P3DBlock(8, 4, 8, kind="D")


def test_interleaving_and_strides():
    m = create_model("p3d_63", 10, width=8)
    kinds = [b.kind for layer in (m.layer1, m.layer2, m.layer3, m.layer4) for b in layer]
    assert kinds[:6] == list("ABCABC") and len(kinds) == 16
    m2 = create_model("p3d_63", 10, width=8, temporal_strides=(1, 2, 2, 2)).eval()
    assert m2(torch.randn(1, 3, 8, 32, 32)).shape == (1, 10)
    for layer in (m2.layer2, m2.layer4):  # temporal stride 2 in the first block of the stage
        x = torch.randn(1, layer[0].conv_a.in_channels, 8, 4, 4)
        assert layer(x).shape[2:] == (4, 2, 2)


@pytest.mark.parametrize("name", [i.name for i in list_models("p3d")])
def test_tiny_forward_backward(name, samples_independent):
    m = create_model(name, 5, width=8)
    assert samples_independent(m, {"rgb": torch.randn(2, 3, 4, 32, 32)}).shape == (2, 5)
    m(torch.randn(1, 3, 4, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
