"""Homography of improved trajectories (Wang & Schmid 2013): RANSAC on ORB + flow matches."""

import cv2
import numpy as np

from deepvideo.features import camera as cam


def _pair(dx=3):
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.random((128, 160)).astype(np.float32), (0, 0), 1.5)
    tex = ((tex - tex.min()) / np.ptp(tex) * 255).astype(np.uint8)
    return tex[:, 10:138], tex[:, 10 + dx:138 + dx]  # content moves -dx px


def test_release_thresholds():
    limits = (cam.RANSAC_THRESHOLD, cam.MIN_MATCHES, cam.MIN_INLIERS, cam.MAX_FLOW_POINTS)
    assert limits == (1.0, 50, 25, 1000)


def test_pan_is_recovered_and_compensated():
    prev, cur = _pair(3)
    flow = np.zeros((2, 128, 128), np.float32)
    flow[0] = -3.0
    h = cam.estimate_homography(prev, cur, flow)
    np.testing.assert_allclose(h / h[2, 2], [[1, 0, -3], [0, 1, 0], [0, 0, 1]], atol=0.05)
    np.testing.assert_allclose(cam.compensated_flow(flow, h), 0.0, atol=0.1)
    half = cam.scale_homography(h, 0.5)
    np.testing.assert_allclose(half[:2, 2] / half[2, 2], [-1.5, 0.0], atol=0.05)


def test_an_empty_mask_leaves_the_camera_still():
    prev, cur = _pair(3)
    flow = np.zeros((2, 128, 128), np.float32)
    flow[0] = -3.0
    h = cam.estimate_homography(prev, cur, flow, mask=np.zeros((128, 128), bool))
    np.testing.assert_array_equal(h, np.eye(3))


def test_compensated_flow_of_a_known_homography():
    h = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0], [0.0, 0.0, 1.0]])
    flow = np.zeros((2, 4, 5), np.float32)
    flow[0], flow[1] = 2.0 + 0.5, -1.0  # camera motion plus 0.5 px of own motion along x
    out = cam.compensated_flow(flow, h)
    np.testing.assert_allclose(out[0], 0.5, atol=1e-6)
    np.testing.assert_allclose(out[1], 0.0, atol=1e-6)
