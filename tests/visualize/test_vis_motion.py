"""Direction and curl of flow fields, and the model's own preprocessing applied to them."""

from __future__ import annotations

import pytest
import torch

from deepvideo.nn.snippet_net import SnippetNet
from deepvideo.visualize.motion import dominant_motion, flow_preprocessing, mean_curl, seen_flow


def _rotation(omega: float, size: int = 9) -> torch.Tensor:
    """Rigid rotation about the centre, clockwise on screen for omega > 0 (y down): [1, 2, H, W]."""
    c = (size - 1) / 2
    y, x = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    return torch.stack([-omega * y, omega * x])[None].float()


def test_curl_sign_and_value():
    assert mean_curl(_rotation(0.1)) == pytest.approx(0.2, rel=1e-5)  # curl of a rotation = 2 omega
    assert mean_curl(_rotation(-0.1)) == pytest.approx(-0.2, rel=1e-5)
    assert mean_curl(_rotation(0.1), fraction=0.1) == pytest.approx(0.2, rel=1e-5)


def test_dominant_motion_uses_the_largest_vectors():
    flow = torch.zeros(2, 2, 10, 10)
    flow[:, 0, :2, :] = -3.0  # 20 % of the pixels move left fast
    flow[:, 0, 2:, :] = 0.5  # the rest drift right slowly
    u, v = dominant_motion(flow, 0.1)
    assert (u, v) == (pytest.approx(-3.0), pytest.approx(0.0))
    with pytest.raises(ValueError, match="fraction"):
        dominant_motion(flow, 0.0)


def test_seen_flow_applies_mean_subtraction():
    net = SnippetNet(torch.nn.Identity(), "flow", flow_stack=1, mean_subtraction=True)
    flow = torch.full((1, 2, 4, 4), 2.0)
    flow[0, 0, 0, 0] = 6.0
    assert flow_preprocessing(net) == "mean"
    seen = seen_flow(net, flow)
    assert float(seen[0, 0].mean()) == pytest.approx(0.0, abs=1e-6)  # the global mean is gone
    assert float(seen[0, 0, 0, 0]) == pytest.approx(4.0 - 4.0 / 16)
    plain = SnippetNet(torch.nn.Identity(), "flow", flow_stack=1)
    assert flow_preprocessing(plain) is None and torch.equal(seen_flow(plain, flow), flow)
