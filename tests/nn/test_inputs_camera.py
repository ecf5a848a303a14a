"""Camera-motion removal at a temporal net's input: the mean (Simonyan & Zisserman 2014) and the
affine fit (pan, zoom, rotation of the whole frame), checked against written-out fields."""

import pytest
import torch

from deepvideo.models.two_stream import two_stream_temporal
from deepvideo.nn.inputs import flow_to_snippets, remove_camera_motion

H, W = 24, 32


def _affine_field(a, b) -> torch.Tensor:
    """``[1, 2, 1, H, W]`` with u = a0 + a1 x + a2 y, v = b0 + b1 x + b2 y on x, y in [-1, 1]."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
    u = a[0] + a[1] * xs + a[2] * ys
    v = b[0] + b[1] * xs + b[2] * ys
    return torch.stack([u, v])[None, :, None]


def test_mean_removes_a_pan_and_affine_removes_pan_zoom_and_rotation():
    pan = _affine_field((1.5, 0, 0), (-0.7, 0, 0))
    zoom_rot = _affine_field((0.4, 0.8, -0.3), (0.2, 0.3, 0.8))
    assert remove_camera_motion(pan, "mean").abs().max() < 1e-6
    assert remove_camera_motion(zoom_rot, "mean").abs().max() > 0.5  # a zoom is not a constant
    assert remove_camera_motion(zoom_rot, "affine").abs().max() < 1e-5


def test_affine_keeps_an_object_moving_against_a_zooming_background():
    background = _affine_field((0.3, 0.5, 0.0), (0.0, 0.0, 0.5))  # camera zooming in
    obj = torch.zeros_like(background)
    obj[:, 0, :, 8:14, 10:16] = 2.0  # a small object moving right by 2 px
    left = remove_camera_motion(background + obj, "affine")
    # the removal is linear and exact on the background: what is left is the object's own motion
    # less its (small) share of the fit
    assert torch.allclose(left, remove_camera_motion(obj, "affine"), atol=1e-5)
    assert left[0, 0, 0, 8:14, 10:16].mean() > 1.8 and left[0, :, 0, :4, :4].abs().max() < 0.2


def test_flow_to_snippets_accepts_the_models_and_rejects_others():
    flow = torch.randn(2, 2, 4, H, W) + _affine_field((1, 2, 3), (4, 5, 6))
    for model in (True, "mean"):
        x = flow_to_snippets(flow, 4, mean_subtraction=model)
        assert torch.allclose(x.mean(dim=(2, 3)), torch.zeros(2, 8), atol=1e-5)
    x = flow_to_snippets(flow, 4, mean_subtraction="affine")
    assert torch.allclose(x.mean(dim=(2, 3)), torch.zeros(2, 8), atol=1e-5)
    with pytest.raises(ValueError, match="camera motion model must be one of"):
        flow_to_snippets(flow, 4, mean_subtraction="homography")


def test_a_temporal_stream_with_affine_removal_ignores_camera_zoom():
    torch.manual_seed(0)
    net = two_stream_temporal(5, backbone="resnet18", input_size=32, flow_stack=2,
                              mean_subtraction="affine", width=0.25).eval()
    flow = torch.randn(1, 2, 2, H, W)
    camera = _affine_field((0.5, -1.0, 0.2), (0.1, 0.3, -1.0)).expand(1, 2, 2, H, W)
    with torch.no_grad():
        assert torch.allclose(net({"flow": flow}), net({"flow": flow + camera}), atol=1e-4)
