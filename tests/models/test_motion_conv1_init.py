"""Motion conv1 from the RGB conv1: TSN's average-then-replicate vs ST-ResNet's replication."""

import pytest
import torch
from torch import nn

from deepvideo.models.tsn import tsn
from deepvideo.nn.init import cross_modality_conv
from deepvideo.nn.resnet_streams import make_stream


def test_tsn_averages_over_rgb_then_replicates():
    torch.manual_seed(0)
    rgb = nn.Conv2d(3, 4, 3)
    w = cross_modality_conv(rgb, 10, "tsn").weight
    mean = rgb.weight.mean(dim=1)
    assert all(torch.equal(w[:, k], mean) for k in range(10))


def test_st_resnet_replicates_the_rgb_filters_in_turn():
    """w'[:, k] = (3 / C') w[:, k mod 3]: the colour filters kept, the channel sum preserved."""
    torch.manual_seed(0)
    rgb = nn.Conv2d(3, 4, 3)
    conv = cross_modality_conv(rgb, 20, "st_resnet")
    for k in range(20):
        torch.testing.assert_close(conv.weight[:, k], rgb.weight[:, k % 3] * 3 / 20)
    twelve = cross_modality_conv(rgb, 12, "st_resnet")  # a multiple of 3: the channel sum is kept
    torch.testing.assert_close(twelve.weight.sum(1), rgb.weight.sum(1))
    torch.testing.assert_close(twelve(torch.full((1, 12, 5, 5), 0.7)), rgb(torch.full((1, 3, 5, 5), 0.7)))
    with pytest.raises(ValueError, match="unknown initialization from RGB"):
        cross_modality_conv(rgb, 20, "i3d")


def test_each_family_uses_its_papers_init():
    torch.manual_seed(0)
    motion = make_stream(18, 5, 10, width=0.125)  # ST-ResNet / ST-Mult motion stream
    w = motion.stem[0].weight[:, :, 0]
    torch.testing.assert_close(w[:, 3], w[:, 0])
    torch.testing.assert_close(w[:, 4], w[:, 1])
    assert not torch.allclose(w[:, 0], w[:, 1])  # not averaged over colour
    flow_tsn = tsn(5, modality="flow", backbone="resnet18", width=0.125).backbone.conv1.weight
    assert all(torch.equal(flow_tsn[:, 0], flow_tsn[:, c]) for c in range(10))
