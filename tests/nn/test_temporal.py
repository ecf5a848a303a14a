"""Temporal convs and their initializations, temporal pooling (ST-ResNet / ST-Mult)."""

import pytest
import torch
from torch import nn

from deepvideo.nn.temporal import (
    TemporalMaxPool1d,
    TemporalPool,
    init_temporal_filter,
    temporal_conv,
    temporal_pool,
    temporalize_conv,
)


def test_identity_center_is_identity():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 7, 3, 4)
    conv = temporal_conv(5, time_kernel=3, init="identity_center")
    assert torch.allclose(conv(x), x, atol=1e-6)


def test_identity_avg_is_box_filter_over_time():
    x = torch.randn(1, 3, 6, 2, 2)
    y = temporal_conv(3, time_kernel=3, init="identity_avg")(x)
    ref = (x[:, :, :-2] + x[:, :, 1:-1] + x[:, :, 2:]) / 3
    assert torch.allclose(y[:, :, 1:-1], ref, atol=1e-6)
    assert torch.allclose(y[:, :, 0], (x[:, :, 0] + x[:, :, 1]) / 3, atol=1e-6)  # zero padding


def test_average_init_of_1x1_conv():
    torch.manual_seed(0)
    conv = nn.Conv3d(4, 6, 1)
    t = temporalize_conv(conv, 3, "average")
    assert t.kernel_size == (3, 1, 1) and t.padding == (1, 0, 0)
    assert torch.allclose(t.weight, conv.weight.expand(-1, -1, 3, -1, -1) / 3)
    # a temporally constant input gives the original output away from the time borders
    x = torch.randn(1, 4, 1, 3, 3).expand(-1, -1, 5, -1, -1)
    assert torch.allclose(t(x)[:, :, 1:-1], conv(x)[:, :, 1:-1], atol=1e-5)


def test_random_init_differs_and_identity_needs_square():
    w = torch.zeros(4, 4, 3, 1, 1)
    init_temporal_filter(w, "random")
    assert w.std() > 0
    with pytest.raises(ValueError, match="C_out == C_in"):
        init_temporal_filter(torch.zeros(4, 5, 3, 1, 1), "identity_center")
    with pytest.raises(ValueError, match="unknown temporal init"):
        init_temporal_filter(w, "xavier")


def test_temporalize_rejects_3d_kernel():
    with pytest.raises(ValueError, match="temporal kernel 1"):
        temporalize_conv(nn.Conv3d(2, 2, 3))


def test_global_temporal_pooling():
    x = torch.tensor([1.0, 5.0, 3.0]).view(1, 1, 3, 1, 1)
    assert temporal_pool(x, "max").item() == 5.0
    assert temporal_pool(x, "avg").item() == 3.0
    assert TemporalPool("max")(x).shape == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="unknown temporal pooling"):
        temporal_pool(x, "median")


def test_windowed_temporal_max_pool_11_to_4():
    x = torch.arange(11.0).view(1, 1, 11)
    y = TemporalMaxPool1d(5, 2)(x)
    assert y.flatten().tolist() == [4.0, 6.0, 8.0, 10.0]
    with pytest.raises(ValueError, match="exceeds"):
        TemporalMaxPool1d(5, 2)(torch.zeros(1, 1, 3))
