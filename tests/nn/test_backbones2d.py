"""2D backbones: paper layer shapes, parameter counts, truncation; cross-modality init."""

import pytest
import torch
from torch import nn

from deepvideo.nn.backbones2d import build_backbone, karpathy_single_frame, resnet, vgg16, vgg_m_2048
from deepvideo.nn.init import adapt_input_channels, cross_modality_conv


def _params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def vggm_pair():
    return vgg_m_2048(101).eval(), vgg_m_2048(101, in_channels=20)


def test_vgg_m_2048_shapes_caffe_ceil_mode(vggm_pair):
    net = vggm_pair[0]
    x = torch.randn(1, 3, 224, 224)
    assert net.forward_until(x, "conv1").shape == (1, 96, 109, 109)
    assert net.forward_until(x, "relu2").shape == (1, 256, 26, 26)
    assert net.forward_until(x, "relu5").shape == (1, 512, 13, 13)
    assert net.forward_until(x, "pool5").shape == (1, 512, 6, 6)
    assert net.fc6.in_features == 512 * 36 and net.fc7.out_features == 2048
    assert net(x).shape == (1, 101)
    # floor-mode pooling (PyTorch default) would give a 12x12 conv5 instead
    assert vgg_m_2048(101, ceil_mode=False).conv5_size == 12


def test_vgg_m_2048_parameter_counts(vggm_pair):
    spatial, temporal = vggm_pair
    assert _params(spatial) == 90_627_813
    assert _params(temporal) == 90_707_781
    assert _params(spatial) + _params(temporal) == 181_335_594  # the Caffe-style 181.34M


def test_layered_net_trunk_and_head_compose():
    torch.manual_seed(0)
    net = vgg_m_2048(7, input_size=112, width=0.125, fc_dims=(32, 16)).eval()
    x = torch.randn(2, 3, 112, 112)
    mid = net.trunk("relu4")(x)
    assert torch.allclose(net.head("relu4")(mid), net(x), atol=1e-5)
    assert torch.allclose(net.forward_from(net.forward_until(x, "fc6"), "fc6"), net(x), atol=1e-5)
    assert net.channels_at("relu5") == 64 and net.channels_at("fc7") == 16
    with pytest.raises(KeyError, match="no layer 'relu9'"):
        net.forward_until(x, "relu9")


def test_vgg16_shapes_and_params():
    with torch.device("meta"):
        assert _params(vgg16(1000)) == 138_357_544
    small = vgg16(5, input_size=64, width=0.0625, fc_dims=(16, 16))
    x = torch.randn(1, 3, 64, 64)
    assert small.forward_until(x, "relu5").shape == (1, 32, 4, 4)
    assert small(x).shape == (1, 5)


@pytest.mark.parametrize(
    "depth,count",
    [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032), (101, 44_549_160), (152, 60_192_808)],
)
def test_resnet_parameter_counts_match_torchvision(depth, count):
    with torch.device("meta"):
        assert _params(resnet(depth, num_classes=1000)) == count


def test_resnet_small_forward_and_features():
    net = resnet(18, num_classes=4, width=0.25, in_channels=10)
    x = torch.randn(2, 10, 64, 64)
    assert net.features(x).shape == (2, 128, 2, 2)
    assert net(x).shape == (2, 4)


def test_resnet152_forward_small_input():
    net = resnet(152, num_classes=3).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 3)


def test_karpathy_single_frame_shapes():
    net = karpathy_single_frame(487).eval()
    x = torch.randn(1, 3, 170, 170)
    assert net.forward_until(x, "conv1").shape == (1, 96, 54, 54)
    assert net.forward_until(x, "pool5").shape == (1, 256, 6, 6)
    assert net(x).shape == (1, 487)
    assert net.fc6.out_features == 4096 and net.fc7.out_features == 4096


def test_build_backbone_names():
    assert isinstance(build_backbone("resnet18", 3, width=0.25), nn.Module)
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("alexnet", 3)


def test_cross_modality_init_averages_and_replicates():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 7, stride=2, padding=3)
    new = cross_modality_conv(conv, 20)
    assert new.weight.shape == (8, 20, 7, 7) and new.stride == (2, 2)
    mean = conv.weight.mean(dim=1)
    for c in (0, 7, 19):
        assert torch.allclose(new.weight[:, c], mean)
    assert torch.equal(new.bias, conv.bias)
    # a flow stack whose channels all equal one gray image gives 20/3 x the RGB response to it
    gray = torch.randn(1, 1, 16, 16)
    assert torch.allclose(
        new(gray.expand(-1, 20, -1, -1)) - new.bias.view(1, -1, 1, 1),
        (conv(gray.expand(-1, 3, -1, -1)) - conv.bias.view(1, -1, 1, 1)) * 20 / 3,
        atol=1e-4,
    )


def test_adapt_input_channels_replaces_first_conv():
    net = resnet(18, num_classes=2, width=0.125)
    rgb_w = net.conv1.weight.detach().clone()
    adapt_input_channels(net, 10)
    assert net.conv1.in_channels == 10
    assert torch.allclose(net.conv1.weight[:, 4], rgb_w.mean(1))
    assert net(torch.randn(2, 10, 32, 32)).shape == (2, 2)


def test_resnet_as_layered_same_outputs_keys_and_channels():
    net = resnet(18, num_classes=5, in_channels=4, width=0.25).eval()
    layered = net.as_layered()
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        assert torch.equal(layered(x), net(x))
        assert torch.equal(layered.forward_until(x, "relu5"), net.features(x))
    assert set(layered.state_dict()) == set(net.state_dict())
    assert [layered.channels_at(f"relu{i}") for i in (2, 3, 4, 5)] == [16, 32, 64, 128]
    assert layered.layer_names()[layered.index("relu5") + 1] == "pool5"  # the 3D fusion's pooling slot


@pytest.mark.parametrize("dilate", [(False, True, True), (False, False, True)])
def test_resnet_dilation_equals_torchvision(dilate):
    """``dilate`` is torchvision's ``replace_stride_with_dilation``: same keys, same outputs."""
    import torchvision

    ours = resnet(50, width=1.0, dilate=dilate).eval()
    theirs = torchvision.models.resnet50(replace_stride_with_dilation=list(dilate)).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 64, 64)
    stride = 8 if dilate[1] else 16
    assert ours.features(x).shape[-1] == 64 // stride
    torch.testing.assert_close(ours(x), theirs(x))


def test_resnet_dilation_needs_bottlenecks():
    with pytest.raises(ValueError, match="Bottleneck"):
        resnet(18, dilate=(False, True, True))
