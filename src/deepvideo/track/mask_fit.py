"""Boxes fitted to a segmentation mask, as the D3S tracker does it.

Lukežič et al., CVPR 2020, Sec. 3.4, with the procedure and numbers of the authors' code
(github.com/alanlukezic/d3s: ``pytracking/bbox_fit.py``, ``pytracking/tracker/segm/segm.py``):

- the mask is thresholded and only its largest connected region (outer contour) is kept; a
  region of at most ``MIN_REGION_AREA = 50`` pixels (contour area) counts as no mask;
- :func:`min_area_box`: the minimum-area rotated rectangle of that region (its four corners),
  used for the position and the scale;
- :func:`axis_aligned_box`: the region's enclosing axis-aligned rectangle (what the tracker
  reports on axis-aligned benchmarks);
- :func:`rotated_box` (for rotated-box benchmarks such as VOT): the orientation from an ellipse
  fitted to the region (the minimum-area rectangle's when an ellipse axis exceeds 0.6 of the
  mask side), the mask rotated upright, its enclosing rectangle shrunk side by side, one pixel at
  a time (top, left, bottom, right in turn, from the enclosing rectangle's own score), while
  that raises ``N_in / (α (A − N_in) + N_total)`` (``α = 0.25``: background
  inside counts a quarter) and keeps at least 90 % of the mask, then rotated back.

Corner arrays are ``float [4, 2]`` of ``(x, y)``.
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_REGION_AREA = 50
ELLIPSE_LIMIT = 0.6
BACKGROUND_WEIGHT = 0.25   # alpha
MIN_KEPT = 0.9             # min_factor


def largest_region(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray | None:
    """The largest outer contour ``int [P, 2]`` of ``mask > threshold``, or None when there is
    none larger than ``MIN_REGION_AREA`` pixels."""
    binary = (np.asarray(mask) > threshold).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    areas = [cv2.contourArea(c) for c in contours]
    best = int(np.argmax(areas))
    return contours[best].reshape(-1, 2) if areas[best] > MIN_REGION_AREA else None


def region_mask(shape: tuple[int, int], contour: np.ndarray) -> np.ndarray:
    """``uint8 [H, W]``: 1 inside the filled ``contour``."""
    out = np.zeros(shape, np.uint8)
    cv2.drawContours(out, [contour.reshape(-1, 1, 2).astype(np.int32)], -1, 1, thickness=-1)
    return out


def min_area_box(contour: np.ndarray) -> np.ndarray:
    """Corners ``[4, 2]`` of the minimum-area rotated rectangle around ``contour``."""
    return cv2.boxPoints(cv2.minAreaRect(contour.astype(np.float32))).astype(np.float64)


def axis_aligned_box(contour: np.ndarray) -> tuple[float, float, float, float]:
    """``(x, y, w, h)`` of the pixels the contour encloses (whole pixels: ``w = max − min + 1``)."""
    x0, y0 = contour.min(axis=0)
    x1, y1 = contour.max(axis=0)
    return float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)


def area_preserving_box(corners: np.ndarray) -> tuple[float, float, float, float]:
    """An axis-aligned ``(x, y, w, h)`` with the centre and area of the rotated rectangle
    ``corners`` and the aspect ratio of its enclosing box (the authors' ``poly_to_aabbox``)."""
    cx, cy = corners.mean(axis=0)
    span = corners.max(axis=0) - corners.min(axis=0)
    area = np.linalg.norm(corners[0] - corners[1]) * np.linalg.norm(corners[1] - corners[2])
    s = np.sqrt(area / max(span[0] * span[1], 1e-12))
    w, h = s * span[0] + 1, s * span[1] + 1
    return float(cx - w / 2), float(cy - h / 2), float(w), float(h)


def box_score(integral: np.ndarray, rect: tuple[int, int, int, int], total: float) -> float:
    """``N_in / (α (A − N_in) + N_total)`` of the inclusive pixel rectangle ``(x0, y0, x1, y1)``,
    or −1 when it is empty or keeps less than ``MIN_KEPT`` of the mask."""
    x0, y0, x1, y1 = rect
    if x1 < x0 or y1 < y0:
        return -1.0
    inside = float(integral[y1 + 1, x1 + 1] - integral[y1 + 1, x0] - integral[y0, x1 + 1] + integral[y0, x0])
    if inside < MIN_KEPT * total:
        return -1.0
    area = float((x1 - x0 + 1) * (y1 - y0 + 1))
    return inside / (BACKGROUND_WEIGHT * (area - inside) + total)


def shrink_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The enclosing rectangle ``(x0, y0, x1, y1)`` (inclusive) of ``mask``'s largest region,
    shrunk side by side while :func:`box_score` rises."""
    contour = largest_region(mask)
    if contour is None:
        raise ValueError("shrink_box: the mask has no region")
    height, width = mask.shape
    x0, y0 = np.maximum(contour.min(axis=0), 0)
    x1, y1 = np.minimum(contour.max(axis=0), (width - 1, height - 1))
    rect = [int(x0), int(y0), int(x1), int(y1)]
    binary = (mask > 0.5).astype(np.uint8)
    integral, total = cv2.integral(binary), float(binary.sum())
    best = box_score(integral, tuple(rect), total)
    moves = ((1, 1), (0, 1), (3, -1), (2, -1))   # (rect index, step): top, left, bottom, right
    changed = True
    while changed:
        changed = False
        for index, step in moves:
            trial = list(rect)
            trial[index] += step
            score = box_score(integral, tuple(trial), total)
            if score > best:
                rect, best, changed = trial, score, True
    return tuple(rect)


def rotated_box(mask: np.ndarray) -> np.ndarray | None:
    """Corners ``[4, 2]`` of the rotated box fitted to ``mask`` (module docstring), or None."""
    contour = largest_region(mask)
    if contour is None:
        return None
    binary = region_mask(mask.shape, contour)
    (cx, cy), axes, angle = cv2.fitEllipse(contour.astype(np.float32))
    if axes[0] > mask.shape[0] * ELLIPSE_LIMIT or axes[1] > mask.shape[1] * ELLIPSE_LIMIT:
        (cx, cy), _, angle = cv2.minAreaRect(contour.astype(np.float32))
    rotation = cv2.getRotationMatrix2D((float(cx), float(cy)), float(angle), 1.0)
    upright = cv2.warpAffine(binary, rotation, (mask.shape[1], mask.shape[0]), flags=cv2.INTER_NEAREST)
    if largest_region(upright) is None:
        return min_area_box(contour)
    x0, y0, x1, y1 = shrink_box(upright)
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    back = cv2.invertAffineTransform(rotation)
    return corners @ back[:, :2].T + back[:, 2]
