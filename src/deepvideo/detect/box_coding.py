"""Anchors and the box parametrisation of Faster R-CNN / R-FCN / D&T.

A box ``b = (x1, y1, x2, y2)`` relative to a reference ``r`` (an anchor, a RoI, or the box of
the same object in frame ``t`` for D&T's tracking targets) is encoded as
``((x_b - x_r) / w_r, (y_b - y_r) / h_r, log(w_b / w_r), log(h_b / h_r))`` (centres, widths,
heights; Girshick 2015, Ren et al. 2015), each multiplied by ``weights`` — the usual
normalisation of the targets by (0.1, 0.1, 0.2, 0.2) standard deviations is
``weights = (10, 10, 5, 5)``.

Anchors (Ren et al. 2015): at every cell of a stride-``s`` feature map, one box per
(scale, ratio), of area ``scale²`` and ``height / width = ratio``, centred on the cell's centre
``((j + 0.5) s, (i + 0.5) s)``. The order is cell-major: ``[H * W * A, 4]`` with the ``A``
anchors of a cell adjacent, as a ``[N, A * 4, H, W]`` regression map reshaped with
:func:`per_anchor` lays them out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["BBOX_WEIGHTS", "cell_anchors", "decode", "encode", "grid_anchors", "per_anchor"]

BBOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
MAX_LOG = math.log(1000.0 / 16)  # clamp of decoded log-sizes (Detectron's bound)


def cell_anchors(scales: Sequence[float], ratios: Sequence[float]) -> torch.Tensor:
    """``[len(scales) * len(ratios), 4]`` anchors centred at 0 (scale-major order)."""
    out = []
    for scale in scales:
        for ratio in ratios:
            w = scale / math.sqrt(ratio)
            h = scale * math.sqrt(ratio)
            out.append((-w / 2, -h / 2, w / 2, h / 2))
    return torch.tensor(out, dtype=torch.float32)


def grid_anchors(cells: torch.Tensor, height: int, width: int, stride: float) -> torch.Tensor:
    """Anchors of a ``height x width`` map: ``[height * width * A, 4]``."""
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    centres = torch.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 1, 4)
    return (centres + cells.to(centres).reshape(1, -1, 4)).reshape(-1, 4)


def per_anchor(maps: torch.Tensor, values: int) -> torch.Tensor:
    """``[N, A * values, H, W]`` -> ``[N, H * W * A, values]`` (the order of :func:`grid_anchors`)."""
    n, channels, h, w = maps.shape
    return maps.view(n, channels // values, values, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, values)


def _centre_size(boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h


def encode(boxes: torch.Tensor, reference: torch.Tensor,
           weights: Sequence[float] = BBOX_WEIGHTS) -> torch.Tensor:
    """Targets ``[..., 4]`` of ``boxes`` relative to ``reference`` (same shape)."""
    bx, by, bw, bh = _centre_size(boxes)
    rx, ry, rw, rh = _centre_size(reference)
    rw, rh = rw.clamp(min=1e-6), rh.clamp(min=1e-6)
    wx, wy, ww, wh = weights
    return torch.stack([wx * (bx - rx) / rw, wy * (by - ry) / rh,
                        ww * torch.log(bw.clamp(min=1e-6) / rw), wh * torch.log(bh.clamp(min=1e-6) / rh)], -1)


def decode(deltas: torch.Tensor, reference: torch.Tensor,
           weights: Sequence[float] = BBOX_WEIGHTS) -> torch.Tensor:
    """The boxes that :func:`encode` maps to ``deltas`` (log-sizes clamped at ``MAX_LOG``)."""
    rx, ry, rw, rh = _centre_size(reference)
    wx, wy, ww, wh = weights
    cx = deltas[..., 0] / wx * rw + rx
    cy = deltas[..., 1] / wy * rh + ry
    w = torch.exp((deltas[..., 2] / ww).clamp(max=MAX_LOG)) * rw
    h = torch.exp((deltas[..., 3] / wh).clamp(max=MAX_LOG)) * rh
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
