"""Dense sampling of feature points (Wang et al. 2011, 2013).

Points lie on a grid with spacing W = 5 px (one candidate at the centre of each W×W cell) at
every spatial scale. Points in homogeneous areas are dropped: a candidate is kept when the
smaller eigenvalue of its 3×3 auto-correlation matrix exceeds ``QUALITY`` (0.001) times the
largest such eigenvalue in the image (the release's threshold). Cells that already hold a
tracked point get no new one.
"""

from __future__ import annotations

import cv2
import numpy as np

GRID_STEP = 5     # W
QUALITY = 0.001   # eigenvalue threshold relative to the image's maximum


def min_eigenvalues(gray: np.ndarray) -> np.ndarray:
    """Smaller eigenvalue of the 3×3 structure tensor (Sobel aperture 3) at every pixel."""
    return cv2.cornerMinEigenVal(np.ascontiguousarray(gray), 3, 3)


def dense_sample(gray: np.ndarray, occupied: np.ndarray | None = None, step: int = GRID_STEP,
                 quality: float = QUALITY) -> np.ndarray:
    """New points ``float32 [P, 2]`` (x, y) on the grid of ``gray`` ([H, W] uint8).

    ``occupied``: current track positions ``[Q, 2]``; their grid cells are skipped.
    """
    h, w = gray.shape
    gw, gh = w // step, h // step
    if gw == 0 or gh == 0:
        return np.zeros((0, 2), np.float32)
    eig = min_eigenvalues(gray)
    threshold = float(eig.max()) * quality
    off = step // 2
    ys, xs = np.meshgrid(np.arange(gh) * step + off, np.arange(gw) * step + off, indexing="ij")
    keep = eig[ys, xs] > threshold
    if occupied is not None and len(occupied):
        cell = np.floor(np.asarray(occupied, np.float64)).astype(np.int64)
        inside = (cell[:, 0] >= 0) & (cell[:, 1] >= 0) & (cell[:, 0] < gw * step) & (cell[:, 1] < gh * step)
        cell = cell[inside] // step
        keep[cell[:, 1], cell[:, 0]] = False
    return np.stack([xs[keep], ys[keep]], axis=1).astype(np.float32)
