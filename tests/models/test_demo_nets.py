"""Tiny demo two-stream nets: shapes, registry specs, flow stacking order, fully convolutional."""

from __future__ import annotations

import pytest
import torch

from deepvideo.models import create_model, get_model_info
from deepvideo.models.demo_nets import DemoTemporalNet


def test_registered_specs():
    s = get_model_info("demo_spatial_cnn").spec
    t = get_model_info("demo_temporal_cnn").spec
    assert s.modalities == ("rgb",) and s.num_frames == 1
    assert t.modalities == ("flow",) and t.flow_stack == 5
    assert "Simonyan" in get_model_info("demo_temporal_cnn").paper


def test_shapes_any_frame_size_and_segment_consensus():
    torch.manual_seed(0)
    m = create_model("demo_spatial_cnn", num_classes=7).eval()
    assert m({"rgb": torch.randn(2, 3, 1, 40, 56)}).shape == (2, 7)
    clip = torch.randn(1, 3, 3, 32, 32)
    per_frame = torch.stack([m({"rgb": clip[:, :, k:k + 1]}) for k in range(3)]).mean(0)
    torch.testing.assert_close(m({"rgb": clip}), per_frame, rtol=1e-5, atol=1e-6)


def test_flow_stacking_interleaves_x_and_y():
    """Input channel 2k is d^x of field k and 2k+1 its d^y (Simonyan & Zisserman's stacking)."""
    net = DemoTemporalNet(num_classes=3, flow_stack=3).eval()
    seen = {}
    net.net.register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0]))
    flow = torch.zeros(1, 2, 3, 8, 8)
    for k in range(3):
        flow[0, 0, k] = 10 * k + 1  # x of field k
        flow[0, 1, k] = 10 * k + 2  # y of field k
    net({"flow": flow})
    assert seen["x"][0, :, 0, 0].tolist() == [1, 2, 11, 12, 21, 22]


def test_bad_flow_stack_is_an_error():
    net = create_model("demo_temporal_cnn", num_classes=3)
    with pytest.raises(ValueError, match=r"flow must be \[N, 2, K\*5, H, W\]"):
        net({"flow": torch.zeros(1, 2, 7, 16, 16)})
