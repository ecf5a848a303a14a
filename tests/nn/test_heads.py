"""Classifier heads and stripping a 2D backbone's classifier."""

import pytest
import torch
from torch import nn

from deepvideo.nn.backbones2d import resnet, vgg_m_2048
from deepvideo.nn.heads import ClassifierHead, strip_classifier
from deepvideo.nn.stems import stem3d


def test_classifier_head_is_global_average_then_linear():
    head = ClassifierHead(4, 3, dropout=0.5).eval()
    x = torch.randn(2, 4, 3, 5, 5)
    expected = x.mean(dim=(2, 3, 4)) @ head.fc.weight.T + head.fc.bias
    torch.testing.assert_close(head(x), expected)


def test_strip_classifier_returns_the_features_before_it():
    net = resnet(18, num_classes=7, width=0.125).eval()
    x = torch.randn(2, 3, 32, 32)
    fc = net.fc
    with torch.no_grad():
        logits = net(x)
        trunk, dim = strip_classifier(net)
        feats = trunk(x)
    assert feats.shape == (2, dim) and isinstance(trunk.fc, nn.Identity)
    torch.testing.assert_close(fc(feats), logits)  # the removed classifier on the features
    vgg, vdim = strip_classifier(vgg_m_2048(5, 3, 64, width=0.125))
    assert vgg(torch.randn(1, 3, 64, 64)).shape == (1, vdim)
    with pytest.raises(TypeError, match="cannot find the classifier of Conv2d"):
        strip_classifier(nn.Conv2d(1, 1, 1))


def test_stem3d_layers_and_output_size():
    stem = stem3d(8, (3, 7, 7), pool=True)
    assert [type(m).__name__ for m in stem] == ["Conv3d", "BatchNorm3d", "ReLU", "MaxPool3d"]
    assert stem(torch.randn(1, 3, 4, 32, 32)).shape == (1, 8, 4, 8, 8)  # conv /2, pool /2 in space
