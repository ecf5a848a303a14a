"""The curl convention against the renderer's own ground truth: motion-shapes' RotateClockwise
turns clockwise on screen (checked on the rendered object masks, independently of the exact
motion field), and the exact motion field of ``benchmarks/bench_visualize.py`` has the curl sign
:func:`deepvideo.visualize.motion.mean_curl` promises (positive clockwise, image y down) and
the mean (u, v) sign of its class over the largest vectors, after mean subtraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepvideo.data.synth.common import RenderParams, video_rngs
from deepvideo.data.synth.motion_shapes import CLASSES, SET
from deepvideo.nn.inputs import remove_camera_motion
from deepvideo.visualize.motion import dominant_motion, mean_curl


def _turned(mask: np.ndarray, center: np.ndarray, angle: float) -> np.ndarray:
    """``mask`` turned by ``angle`` about ``center``, positive = clockwise on screen (a point to
    the right of the centre moves down), nearest-neighbour, wrapping like the renderer's torus."""
    h, w = mask.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    dx = (xs - center[0] + w / 2) % w - w / 2  # the nearest torus copy of the centre
    dy = (ys - center[1] + h / 2) % h - h / 2
    c, s = np.cos(angle), np.sin(angle)  # source = inverse rotation of the target pixel
    sx = np.rint(center[0] + c * dx + s * dy).astype(int) % w
    sy = np.rint(center[1] - s * dx + c * dy).astype(int) % h
    return mask[sy, sx]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize("name, sign", [("RotateClockwise", 1), ("RotateCounterclockwise", -1)])
def test_renderer_rotation_direction_on_screen(name, sign):
    params = RenderParams(width=64, height=64, frames=3)
    c = CLASSES.index(name)
    checked = 0
    for video in range(6):
        info = SET.render(c, video, *video_rngs(0, SET.name, c, video), params).info
        if info["shape"] == "circle":
            continue  # a turning disc leaves its mask unchanged
        checked += 1
        masks = info["mask"] > 127
        turn = abs(float(info["angle"][2] - info["angle"][0]))
        center = info["center"][0]
        cw = _iou(_turned(masks[0], center, turn), masks[2])
        ccw = _iou(_turned(masks[0], center, -turn), masks[2])
        assert (cw - ccw) * sign > 0.1, f"{name} video {video}: IoU clockwise {cw:.3f}, counter {ccw:.3f}"
    assert checked >= 3


def test_exact_flow_curl_and_direction_signs(vis_bench):
    names = list(vis_bench.EXPECTED)
    flows, labels, _ = vis_bench.render_set(3, first=200, classes=names)
    for flow, label in zip(flows, labels, strict=True):
        name = CLASSES[int(label)]
        seen = remove_camera_motion(flow[None])[0].transpose(0, 1)  # [T, 2, H, W], mean removed
        u, v = dominant_motion(seen)
        measured = {"u": u, "v": v, "curl": mean_curl(seen, 0.1)}
        key, sign = vis_bench.EXPECTED[name]
        assert sign * measured[key] > 0, f"{name}: {measured}"
    torch.testing.assert_close(
        vis_bench.exact_flow(
            {
                "center": np.array([[8.0, 8.0], [9.0, 7.0]]),
                "size": np.array([6.0, 6.0]),
                "angle": np.array([0.0, 0.0]),
                "mask": np.full((2, 16, 16), 255, np.uint8),
            },
            16,
            16,
        ),
        torch.stack([torch.ones(16, 16), -torch.ones(16, 16)])[None],
    )  # a pure translation by (+1, -1) px
