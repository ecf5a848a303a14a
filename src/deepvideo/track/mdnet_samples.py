"""MDNet's sample boxes around a target and its 107 × 107 patch crops.

Nam & Han, CVPR 2016, Sec. 3.3–4: candidates are drawn from a Gaussian around the previous
state with covariance ``diag(0.09 r², 0.09 r², 0.25)`` (``r`` = mean of the target's width
and height) on the translation and on the exponent ``s`` of the scale ``1.05^s``; training
samples are positives (IoU ≥ 0.7) and negatives (IoU ≤ 0.5) drawn around the target. The
generators follow py-MDNet (``modules/sample_generator.py``): each box is
``(cx, cy, w, h)`` of the target moved and scaled, then

- ``gaussian``: ``c += trans · r · clip(0.5 N(0,1), −1, 1)``, ``(w, h) *= scale^clip(0.5 N(0,1), −1, 1)``
  (``trans = 0.6``, ``scale = 1.05`` give the paper's covariance, clipped at 2σ);
- ``uniform``: ``c += trans · r · U(−1, 1)``, ``(w, h) *= scale^U(−1, 1)``;
- ``whole``: centres on a grid over the whole frame, ``(w, h) *= scale^U(−1, 1)``;
- optional ``aspect``: ``(w, h) *= aspect^U(−1, 1)`` per side; sizes are clipped to
  ``[10, frame − 10]`` and centres to the frame.

:func:`draw_samples` keeps only boxes whose IoU with the target (and area ratio) lie in given
ranges, drawing ``2×, 4×, 8×, ...`` the missing number until it has enough (py-MDNet stops at
8×, which often leaves the 1000 box-regression samples short; here up to 256×); it can return
fewer boxes when the ranges cannot be met (callers check).

:func:`crop_regions`: each box with ``16`` pixels of context on each side of the 107-pixel
patch (the box fills the central 75 pixels: the paper's R-CNN-style crop padding), resampled
bilinearly; outside the frame the patch is grey 128 (py-MDNet's border value).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from deepvideo.track.boxes import as_boxes, iou

KINDS = ("gaussian", "uniform", "whole")
MIN_SIDE = 10.0            # py-MDNet clips sample sides to [10, frame - 10]
FILL = 128
MAX_FACTOR = 256           # draw_samples redraws 2x, 4x, ... up to 256x the missing number
MAX_DRAW = 200_000         # boxes drawn at once at most


def _centred(box: np.ndarray, n: int) -> np.ndarray:
    x, y, w, h = box
    return np.tile(np.array([x + w / 2, y + h / 2, w, h], dtype=np.float64), (n, 1))


def generate(kind: str, rng: np.random.Generator, box, n: int, frame_size: tuple[int, int],
             trans: float = 1.0, scale: float = 1.0, aspect: float | None = None) -> np.ndarray:
    """``n`` boxes ``[n, 4]`` (x, y, w, h) of ``kind`` around ``box`` in a frame of
    ``frame_size = (width, height)``, without IoU filtering."""
    if kind not in KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; use {', '.join(KINDS)}")
    box = as_boxes(box)[0]
    size = np.asarray(frame_size, dtype=np.float64)
    samples = _centred(box, n)
    if aspect is not None:
        samples[:, 2:] *= aspect ** rng.uniform(-1, 1, size=(n, 2))
    r = box[2:].mean()
    if kind == "gaussian":
        samples[:, :2] += trans * r * np.clip(0.5 * rng.standard_normal((n, 2)), -1, 1)
        samples[:, 2:] *= scale ** np.clip(0.5 * rng.standard_normal((n, 1)), -1, 1)
    elif kind == "uniform":
        samples[:, :2] += trans * r * rng.uniform(-1, 1, size=(n, 2))
        samples[:, 2:] *= scale ** rng.uniform(-1, 1, size=(n, 1))
    else:
        m = max(2, int(2 * math.sqrt(n)))
        grid = np.stack(np.meshgrid(np.linspace(0, 1, m), np.linspace(0, 1, m)), -1).reshape(-1, 2)
        grid = grid[rng.permutation(len(grid))[:n]]
        samples[:, :2] = box[2:] / 2 + grid * (size - box[2:] / 2 - 1)
        samples[:, 2:] *= scale ** rng.uniform(-1, 1, size=(n, 1))
    samples[:, 2:] = np.clip(samples[:, 2:], MIN_SIDE, np.maximum(size - MIN_SIDE, MIN_SIDE))
    samples[:, :2] = np.clip(samples[:, :2], 0, size)
    samples[:, :2] -= samples[:, 2:] / 2
    return samples


def in_ranges(samples: np.ndarray, box, iou_range=None, area_range=None) -> np.ndarray:
    """Boolean mask of ``samples`` whose IoU with ``box`` and area ratio (sample / box) lie in the
    closed ranges given."""
    keep = np.ones(len(samples), dtype=bool)
    box = as_boxes(box)
    if iou_range is not None:
        overlap = iou(samples, np.repeat(box, len(samples), axis=0))
        keep &= (overlap >= iou_range[0]) & (overlap <= iou_range[1])
    if area_range is not None:
        ratio = samples[:, 2] * samples[:, 3] / (box[0, 2] * box[0, 3])
        keep &= (ratio >= area_range[0]) & (ratio <= area_range[1])
    return keep


def draw_samples(kind: str, rng: np.random.Generator, box, n: int, frame_size: tuple[int, int],
                 trans: float = 1.0, scale: float = 1.0, aspect: float | None = None,
                 iou_range=None, area_range=None) -> np.ndarray:
    """Up to ``n`` boxes of ``kind`` around ``box`` whose IoU with it (and area ratio) lie in the
    ranges; redraws ``2×, 4×, ..., 256×`` the missing number while short (fewer only when the
    ranges are out of reach)."""
    if n <= 0:
        return np.zeros((0, 4))
    if iou_range is None and area_range is None:
        return generate(kind, rng, box, n, frame_size, trans, scale, aspect)
    found: list[np.ndarray] = []
    remain, factor = n, 2
    while remain > 0 and factor <= MAX_FACTOR:
        drawn = generate(kind, rng, box, min(remain * factor, MAX_DRAW), frame_size, trans, scale, aspect)
        drawn = drawn[in_ranges(drawn, box, iou_range, area_range)][:remain]
        found.append(drawn)
        remain -= len(drawn)
        factor *= 2
    return np.concatenate(found)


def warp(frame: np.ndarray, origin: tuple[float, float], scale: tuple[float, float],
         out_size: tuple[int, int]) -> np.ndarray:
    """``frame`` resampled bilinearly so that frame point ``origin`` lands on output point
    ``(0, 0)`` and one frame pixel spans ``scale = (sx, sy)`` output pixels (continuous
    coordinates); ``out_size = (w, h)``; grey 128 outside the frame."""
    (x, y), (sx, sy) = origin, scale
    matrix = np.array([[sx, 0, -x * sx + 0.5 * sx - 0.5], [0, sy, -y * sy + 0.5 * sy - 0.5]])
    return cv2.warpAffine(frame, matrix, (int(out_size[0]), int(out_size[1])), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(FILL, FILL, FILL))


def crop_regions(frame: np.ndarray, boxes, size: int = 107, padding: int = 16) -> np.ndarray:
    """``uint8 [N, size, size, 3]``: each box resampled so that it fills the central
    ``size − 2·padding`` pixels, with context around; grey 128 outside the frame."""
    boxes = as_boxes(boxes)
    inner = size - 2 * padding
    if inner <= 0:
        raise ValueError(f"crop padding {padding} leaves no room for the box in a {size} patch")
    out = np.empty((len(boxes), size, size, 3), dtype=np.uint8)
    for i, (x, y, w, h) in enumerate(boxes):
        sx, sy = inner / max(w, 1e-6), inner / max(h, 1e-6)
        out[i] = warp(frame, (x - padding / sx, y - padding / sy), (sx, sy), (size, size))
    return out


def to_tensor_layout(patches: np.ndarray) -> np.ndarray:
    """``[N, H, W, 3]`` → ``[N, 3, H, W]`` (contiguous)."""
    return np.ascontiguousarray(patches.transpose(0, 3, 1, 2))
