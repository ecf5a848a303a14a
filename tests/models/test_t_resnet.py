"""T-ResNet (Feichtenhofer et al. CVPR 2017, dynamic scenes)."""

import pytest
import torch

from deepvideo.models import create_model
from deepvideo.models.t_resnet import TemporalBranch, t_resnet
from deepvideo.nn.backbones2d import resnet
from deepvideo.nn.resnet_streams import ResNetStream


@pytest.mark.parametrize("T,size", [(2, 32), (5, 48)])
def test_shapes_and_gradients(T, size):
    model = t_resnet(7, width=0.125)
    out = model({"rgb": torch.randn(2, 3, T, size, size)})
    assert out.shape == (2, 7)
    out.square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_branches_in_first_and_third_units():
    model = t_resnet(20, width=0.125)
    assert model.branch_units == [(s, u) for s in range(4) for u in (0, 2)]
    branches = [m for m in model.modules() if isinstance(m, TemporalBranch)]
    assert len(branches) == 8
    b = branches[3]
    assert b.conv.kernel_size == (3, 1, 1) and b.conv.padding == (1, 0, 0)
    assert torch.all(b.scale == 0.01)


def test_zero_scale_gives_the_frame_resnet_with_temporal_max():
    torch.manual_seed(0)
    model = t_resnet(4, width=0.125, scale_init=0.0).eval()
    plain = ResNetStream(resnet(50, num_classes=4, width=0.125), 4, temporal_head="max").eval()
    plain.load_state_dict(model.stream.state_dict(), strict=False)
    x = torch.randn(1, 3, 3, 32, 32)
    with torch.no_grad():
        y = model({"rgb": x})
        assert torch.allclose(y, plain(x), atol=1e-5)
        # spatial average, then max over time: the max over per-frame pooled features
        feats = plain.features(x).mean(dim=(3, 4))
        assert torch.allclose(y, plain.fc(feats.amax(dim=2)), atol=1e-5)


def test_presets():
    model = create_model("t_resnet_small", num_classes=5).eval()
    spec = model.input_spec
    assert spec.modalities == ("rgb",) and spec.num_frames == 8
    with torch.no_grad():
        assert model({"rgb": torch.randn(1, 3, 8, 32, 32)}).shape == (1, 5)
    with torch.device("meta"):
        big = create_model("t_resnet50", num_classes=20)
    assert big.stream.num_features == 2048 and len(big.branch_units) == 8


def test_temporal_branch_is_pre_activated_bn_relu_then_conv():
    """S · f(W_t f(BN(h)) + b): the branch's own BN and ReLU come before its temporal conv."""
    torch.manual_seed(0)
    branch = TemporalBranch(4, 6, stride=2).eval()
    branch.norm.running_mean.uniform_(-1, 1)
    branch.norm.running_var.uniform_(0.5, 2)
    h = torch.randn(2, 4, 5, 6, 6)
    bn = (h - branch.norm.running_mean.view(1, -1, 1, 1, 1)) / torch.sqrt(
        branch.norm.running_var.view(1, -1, 1, 1, 1) + branch.norm.eps
    )
    bn = bn * branch.norm.weight.view(1, -1, 1, 1, 1) + branch.norm.bias.view(1, -1, 1, 1, 1)
    w, b = branch.conv.weight, branch.conv.bias
    conv = torch.nn.functional.conv3d(torch.relu(bn), w, b, (1, 2, 2), (1, 0, 0))
    expected = 0.01 * torch.relu(conv)
    with torch.no_grad():
        torch.testing.assert_close(branch(h), expected)
    assert branch.norm.num_features == 4  # normalizes the branch input, before the conv
