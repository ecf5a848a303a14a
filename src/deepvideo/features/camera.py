"""Camera motion for improved dense trajectories (Wang & Schmid 2013).

Between consecutive frames a homography is fitted by RANSAC (reprojection threshold 1 px) to
two kinds of matches, as in the release: descriptor matches of keypoints (ORB here; the paper
uses SURF, which is not in free OpenCV builds) and flow matches — up to 1,000 good features to
track (quality 0.001, distance 3) displaced by the optical flow. The fit is used only with more
than 50 matches and more than 25 inliers; otherwise the camera is taken as still (identity).

The warped ("camera-compensated") flow is the flow that remains after the camera motion is
undone: for a pixel x moving to x + f(x), it is H⁻¹(x + f(x)) − x. The release obtains it by
warping the second frame with H⁻¹ and computing flow again; the closed form here needs no
second flow computation and agrees with it wherever the flow is right.
Human masks (the paper's person detector) are optional: pass ``mask`` (True where keypoints and
flow matches may be taken); without one the whole frame is used.
"""

from __future__ import annotations

import cv2
import numpy as np

RANSAC_THRESHOLD = 1.0
MIN_MATCHES = 50
MIN_INLIERS = 25
MAX_FLOW_POINTS = 1000
ORB_FEATURES = 1000


def keypoint_matches(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """ORB keypoint matches (mutual nearest neighbours by Hamming distance): two ``[M, 2]``."""
    orb = cv2.ORB_create(ORB_FEATURES)
    m = None if mask is None else mask.astype(np.uint8)
    kp0, d0 = orb.detectAndCompute(prev, m)
    kp1, d1 = orb.detectAndCompute(cur, m)
    if d0 is None or d1 is None or len(kp0) == 0 or len(kp1) == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(d0, d1)
    a = np.array([kp0[mt.queryIdx].pt for mt in matches], np.float32).reshape(-1, 2)
    b = np.array([kp1[mt.trainIdx].pt for mt in matches], np.float32).reshape(-1, 2)
    return a, b


def flow_matches(prev: np.ndarray, flow: np.ndarray, mask: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Good features to track in ``prev`` and where ``flow`` ([2, H, W]) moves them."""
    m = None if mask is None else mask.astype(np.uint8)
    pts = cv2.goodFeaturesToTrack(prev, MAX_FLOW_POINTS, 0.001, 3, mask=m)
    if pts is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    pts = pts.reshape(-1, 2)
    h, w = prev.shape
    xi = np.clip(pts[:, 0].astype(np.int64), 0, w - 1)
    yi = np.clip(pts[:, 1].astype(np.int64), 0, h - 1)
    moved = np.stack([xi + flow[0, yi, xi], yi + flow[1, yi, xi]], axis=1)
    return np.stack([xi, yi], axis=1).astype(np.float32), moved.astype(np.float32)


def estimate_homography(prev: np.ndarray, cur: np.ndarray, flow: np.ndarray,
                        mask: np.ndarray | None = None) -> np.ndarray:
    """3×3 homography mapping ``prev`` to ``cur`` (grey uint8) or the identity (see module doc)."""
    a0, b0 = keypoint_matches(prev, cur, mask)
    a1, b1 = flow_matches(prev, flow, mask)
    a, b = np.concatenate([a0, a1]), np.concatenate([b0, b1])
    if len(a) <= MIN_MATCHES:
        return np.eye(3)
    h, inliers = cv2.findHomography(a, b, cv2.RANSAC, RANSAC_THRESHOLD)
    if h is None or inliers is None or int(inliers.sum()) <= MIN_INLIERS:
        return np.eye(3)
    return h


def compensated_flow(flow: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Flow ``[2, H, W]`` with the camera motion removed: H⁻¹(x + f(x)) − x."""
    _, h, w = flow.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    tx, ty = xs + flow[0], ys + flow[1]
    inv = np.linalg.inv(homography)
    den = inv[2, 0] * tx + inv[2, 1] * ty + inv[2, 2]
    ux = (inv[0, 0] * tx + inv[0, 1] * ty + inv[0, 2]) / den
    uy = (inv[1, 0] * tx + inv[1, 1] * ty + inv[1, 2]) / den
    return np.stack([ux - xs, uy - ys]).astype(np.float32)


def scale_homography(homography: np.ndarray, factor: float) -> np.ndarray:
    """The same camera motion in an image resized by ``factor`` (coordinates × factor)."""
    s = np.diag([factor, factor, 1.0])
    return s @ homography @ np.linalg.inv(s)
