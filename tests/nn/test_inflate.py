"""Inflation of 2D convs / networks to 3D (I3D-style mean and centre initializations)."""

import pytest
import torch
from torch import nn

from deepvideo.nn.backbones2d import resnet
from deepvideo.nn.inflate import inflate_conv2d, inflate_module


def _per_frame(conv2d, video):
    n, c, t, h, w = video.shape
    y = conv2d(video.transpose(1, 2).reshape(n * t, c, h, w))
    return y.reshape(n, t, *y.shape[1:]).transpose(1, 2)


def test_mean_inflation_on_a_static_video_equals_2d():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    c3 = inflate_conv2d(conv, 3, init="mean")
    assert c3.kernel_size == (3, 3, 3) and c3.stride == (1, 2, 2) and c3.padding == (1, 1, 1)
    frame = torch.randn(1, 3, 1, 8, 8)
    video = frame.expand(-1, -1, 5, -1, -1)
    ref = _per_frame(conv, video)
    assert torch.allclose(c3(video)[:, :, 1:-1], ref[:, :, 1:-1], atol=1e-5)


def test_center_inflation_equals_per_frame_2d():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    c3 = inflate_conv2d(conv, 3, init="center")
    video = torch.randn(2, 3, 4, 6, 6)
    assert torch.allclose(c3(video), _per_frame(conv, video), atol=1e-5)


def test_time_stride_and_padding():
    c3 = inflate_conv2d(nn.Conv2d(2, 2, 3), 4, time_stride=2, time_padding=0)
    assert c3(torch.randn(1, 2, 10, 5, 5)).shape == (1, 2, 4, 3, 3)


def test_bad_inputs():
    with pytest.raises(TypeError):
        inflate_conv2d(nn.Conv1d(2, 2, 3))
    with pytest.raises(ValueError, match="unknown inflation init"):
        inflate_conv2d(nn.Conv2d(2, 2, 3), 3, init="gaussian")


def test_inflated_resnet_matches_2d_on_each_frame():
    torch.manual_seed(0)
    net = resnet(18, num_classes=5, width=0.125).eval()
    net3 = inflate_module(net, time_kernel=1).eval()
    assert isinstance(net3.conv1, nn.Conv3d) and isinstance(net3.layer1[0].bn1, nn.BatchNorm3d)
    assert isinstance(net.conv1, nn.Conv2d)  # the original is untouched
    video = torch.randn(1, 3, 3, 32, 32)
    feats3 = net3.layer4(
        net3.layer3(net3.layer2(net3.layer1(net3.maxpool(net3.relu(net3.bn1(net3.conv1(video)))))))
    )
    ref = torch.stack([net.features(video[:, :, t]) for t in range(3)], dim=2)
    assert torch.allclose(feats3, ref, atol=1e-5)


def test_inflate_module_per_layer_kernel():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3))
    net3 = inflate_module(net, lambda name, conv: 3 if name == "0" else 1, init="mean")
    assert net3[0].kernel_size == (3, 3, 3) and net3[3].kernel_size == (1, 3, 3)
    assert isinstance(net3[2], nn.MaxPool3d) and net3[2].kernel_size == (1, 2, 2)
    assert net3(torch.randn(1, 3, 4, 12, 12)).shape == (1, 4, 4, 3, 3)
