"""Box arithmetic on ``(x, y, w, h)`` arrays ``[N, 4]`` (0-based pixels, top-left corner)."""

from __future__ import annotations

import numpy as np


def as_boxes(boxes) -> np.ndarray:
    """``boxes`` as a float64 array ``[N, 4]`` (a single box becomes ``[1, 4]``)."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes: expected shape [N, 4] (x, y, w, h), got {array.shape}")
    return array


def iou(a, b) -> np.ndarray:
    """Intersection over union of corresponding rows; 0 where the union is empty.

    Continuous boxes: a box covers ``[x, x + w) × [y, y + h)`` (no +1 pixel convention), as
    in the GOT-10k toolkit and the VOT toolkit's rectangle regions.
    """
    a, b = as_boxes(a), as_boxes(b)
    left = np.maximum(a[:, 0], b[:, 0])
    top = np.maximum(a[:, 1], b[:, 1])
    right = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    bottom = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return np.clip(out, 0.0, 1.0)


def centers(boxes) -> np.ndarray:
    """Box centres ``[N, 2]`` as ``(x + w/2, y + h/2)``."""
    boxes = as_boxes(boxes)
    return boxes[:, :2] + boxes[:, 2:] / 2


def center_error(a, b) -> np.ndarray:
    """Euclidean distance between corresponding box centres, in pixels."""
    return np.linalg.norm(centers(a) - centers(b), axis=1)


def polygon_to_box(points) -> np.ndarray:
    """Axis-aligned bounding rectangles ``[N, 4]`` of polygons ``[N, 2k]`` (x1, y1, x2, y2, ...):
    the min/max of the corners, as the VOT toolkit converts a polygon to a rectangle."""
    points = np.asarray(points, dtype=np.float64)
    points = points[None] if points.ndim == 1 else points
    if points.ndim != 2 or points.shape[1] < 6 or points.shape[1] % 2:
        raise ValueError(f"polygons: expected [N, 2k] coordinates with k >= 3, got {points.shape}")
    xs, ys = points[:, 0::2], points[:, 1::2]
    x0, y0 = xs.min(axis=1), ys.min(axis=1)
    return np.stack([x0, y0, xs.max(axis=1) - x0, ys.max(axis=1) - y0], axis=1)


def clip_box(box, height: int, width: int, min_size: float = 1.0) -> np.ndarray:
    """``box`` moved and shrunk to lie inside a ``height × width`` frame, at least
    ``min_size`` pixels wide and high."""
    x, y, w, h = as_boxes(box)[0]
    w, h = min(max(w, min_size), width), min(max(h, min_size), height)
    x = min(max(x, 0.0), width - w)
    y = min(max(y, 0.0), height - h)
    return np.array([x, y, w, h])
