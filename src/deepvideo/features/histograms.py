"""Orientation histograms of HOG/HOF/MBH as integral images, read out per 32×32 patch.

Wang, Kläser, Schmid & Liu 2011 / 2013 ("Dense trajectories and motion boundary descriptors"):
each descriptor is computed in an N×N (N = 32) patch split into n_σ × n_σ = 2 × 2 cells.
Per frame, a vector field (image gradient for HOG, optical flow for HOF, the gradient of one
flow component for MBHx/MBHy) is quantised into orientation bins — 8 for HOG and MBH, 8 + 1
for HOF, whose last bin collects vectors with magnitude ≤ ``MIN_FLOW`` (0.4 px) with weight 1.
A vector's magnitude is split linearly between the two nearest orientation bins (bin centres
at multiples of 360°/bins, angle from ``cv2.cartToPolar`` in [0°, 360°), about 0.3° accurate
like the release's fastAtan2), as in the authors' release. Each pixel's histogram is
accumulated into an integral histogram so that the sum over any cell is four look-ups, for all
points at once.

Per frame and point, the 2×2 cells' histograms are concatenated (x-major, then y), every bin
is clipped at zero and raised by ``EPSILON`` (0.05), the vector is L1-normalised and
square-rooted (the release's "RootSIFT" step); :func:`pool_time` then averages these per-frame
vectors over the n_τ = 3 temporal cells (5 frames each for L = 15).
"""

from __future__ import annotations

import cv2
import numpy as np

PATCH = 32          # N: the patch side in pixels
CELLS_XY = 2        # n_σ
CELLS_T = 3         # n_τ
HOG_BINS = 8
HOF_BINS = 9        # 8 orientations + the zero bin
MBH_BINS = 8
MIN_FLOW = 0.4      # HOF zero-bin threshold (px)
EPSILON = 0.05      # added to every bin before normalisation


def central_gradient(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d/dx, d/dy) by the [-1, 0, 1] kernel (unnormalised), borders reflected (101)."""
    img = np.asarray(image, np.float32)
    return (cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=1))


def orientation_bins(xc: np.ndarray, yc: np.ndarray, bins: int, zero_bin: bool = False,
                     min_flow: float = MIN_FLOW) -> np.ndarray:
    """Per-pixel soft-binned histogram ``float32 [H, W, bins]`` of the vector field (xc, yc).

    With ``zero_bin`` the last of ``bins`` is the zero bin (weight 1 when magnitude ≤ min_flow)
    and the orientations use the other ``bins - 1``.
    """
    xc = np.ascontiguousarray(xc, np.float32)
    yc = np.ascontiguousarray(yc, np.float32)
    if xc.shape != yc.shape or xc.ndim != 2:
        raise ValueError(f"vector components must be two [H, W] arrays of one shape, "
                         f"got {xc.shape}, {yc.shape}")
    n_orient = bins - 1 if zero_bin else bins
    mag, angle = cv2.cartToPolar(xc, yc, angleInDegrees=True)
    mag, angle = mag.ravel(), angle.ravel()
    fbin = (angle % np.float32(360.0)) * np.float32(n_orient / 360.0)
    bin0 = np.minimum(fbin.astype(np.int64), n_orient - 1)
    bin1 = (bin0 + 1) % n_orient
    mag1 = (fbin - bin0) * mag
    mag0 = mag - mag1
    if zero_bin:
        still = mag <= min_flow
        bin0[still] = n_orient
        mag0[still] = 1.0
        mag1[still] = 0.0
    hist = np.zeros((mag.size, bins), np.float32)
    flat, base = hist.reshape(-1), np.arange(0, mag.size * bins, bins)
    flat[base + bin0] = mag0
    flat[base + bin1] += mag1
    return hist.reshape(*xc.shape, bins)


def integral_histogram(hist: np.ndarray) -> np.ndarray:
    """``[H+1, W+1, B]`` with ``I[y, x] = sum(hist[:y, :x])`` (float32, as the release)."""
    return cv2.integral(np.ascontiguousarray(hist, np.float32), sdepth=cv2.CV_32F)


def patch_corners(points: np.ndarray, height: int, width: int, patch: int = PATCH) -> np.ndarray:
    """Top-left corners ``int [P, 2]`` (x, y) of the patches centred on rounded ``points``,
    shifted to lie inside the image (as the release's GetRect)."""
    if height < patch or width < patch:
        raise ValueError(f"image {width}x{height} is smaller than the {patch}x{patch} descriptor patch")
    c = np.rint(np.asarray(points, np.float64)).astype(np.int64) - patch // 2
    c[:, 0] = np.clip(c[:, 0], 0, width - patch)
    c[:, 1] = np.clip(c[:, 1], 0, height - patch)
    return c


def cell_descriptors(integral: np.ndarray, corners: np.ndarray, patch: int = PATCH,
                     cells: int = CELLS_XY, epsilon: float = EPSILON) -> np.ndarray:
    """Per-frame descriptors ``float32 [P, cells²·B]`` of the patches at ``corners`` (x, y).

    Cells are ordered x-major (x0y0, x0y1, x1y0, x1y1), bins innermost; each vector is
    max(0, ·) + epsilon, L1-normalised, then square-rooted.
    """
    step = patch // cells
    offs = np.arange(cells + 1) * step
    ys = corners[:, 1, None] + offs[None]            # [P, cells+1]
    xs = corners[:, 0, None] + offs[None]
    grid = integral[ys[:, :, None], xs[:, None, :]]  # [P, cells+1 (y), cells+1 (x), B]
    sums = grid[:, 1:, 1:] - grid[:, :-1, 1:] - grid[:, 1:, :-1] + grid[:, :-1, :-1]  # [P, cy, cx, B]
    vec = np.maximum(sums.transpose(0, 2, 1, 3), 0.0) + epsilon  # x-major
    vec = vec.reshape(len(corners), cells * cells * integral.shape[2])
    vec /= vec.sum(axis=1, keepdims=True)
    return np.sqrt(vec).astype(np.float32)


def pool_time(per_frame: np.ndarray, cells_t: int = CELLS_T) -> np.ndarray:
    """``[P, L, D]`` per-frame descriptors -> ``[P, cells_t·D]``: means over L // cells_t frames
    per temporal cell (frames beyond cells_t·(L // cells_t) are not used, as in the release)."""
    p, length, d = per_frame.shape
    stride = length // cells_t
    if stride == 0:
        raise ValueError(f"trajectory length {length} is shorter than {cells_t} temporal cells")
    return per_frame[:, :stride * cells_t].reshape(p, cells_t, stride, d).mean(axis=2).reshape(p, -1)


def hog_integral(gray: np.ndarray) -> np.ndarray:
    """Integral HOG histogram (8 bins) of a grey image."""
    return integral_histogram(orientation_bins(*central_gradient(gray), HOG_BINS))


def hof_integral(flow: np.ndarray, min_flow: float = MIN_FLOW) -> np.ndarray:
    """Integral HOF histogram (8 orientations + zero bin) of a flow field ``[2, H, W]``."""
    return integral_histogram(orientation_bins(flow[0], flow[1], HOF_BINS, zero_bin=True, min_flow=min_flow))


def mbh_integrals(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integral MBHx and MBHy histograms (8 bins each): HOG of each flow component."""
    return hog_integral(flow[0]), hog_integral(flow[1])
