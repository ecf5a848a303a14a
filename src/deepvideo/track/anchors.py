"""Anchors of the Siamese region-proposal trackers, their training targets and box deltas.

B. Li, J. Yan, W. Wu, Z. Zhu, X. Hu, "High Performance Visual Tracking with Siamese Region
Proposal Network", CVPR 2018 (Sec. 3.3, 3.4), and B. Li et al., "SiamRPN++", CVPR 2019, with the
values of their reference implementation pysot (``pysot/core/config.py``,
``pysot/utils/anchor.py``, ``pysot/datasets/anchor_target.py``, ``experiments/*/config.yaml``):

- ``k = 5`` anchors per score-map position: total stride 8, ratios ``h / w`` of 0.33, 0.5, 1, 2, 3
  and one scale 8. An anchor of ratio ``r`` has the area of a ``stride × stride`` square before
  scaling, in whole pixels: ``w0 = floor(sqrt(64 / r))``, ``h0 = floor(w0 · r)``, then
  ``(w, h) = 8 · (w0, h0)`` (e.g. ratio 1: 64 × 64, ratio 0.33: 104 × 32).
- Positions: score-map cell ``(i, j)`` of an ``S × S`` map is centred on
  ``c + (j - (S - 1) / 2) · 8`` (and likewise rows) where ``c`` is the search image's centre, so
  the middle cell looks at the middle of the search image (continuous pixel coordinates, the
  convention of :mod:`deepvideo.track.pairs`).
- Targets: an anchor is positive when its IoU with the target box is > 0.6 and negative when it
  is < 0.3 (others are ignored); per pair at most 16 positives and ``64 - 16 = 48`` negatives are
  drawn at random (pysot's ``POS_NUM`` and ``TOTAL_NUM - POS_NUM``). Each positive's regression
  weight is ``1 / (number of positives)``.
- Deltas (Sec. 3.3): ``dx = (gx - ax) / aw``, ``dy = (gy - ay) / ah``, ``dw = log(gw / aw)``,
  ``dh = log(gh / ah)`` between the centre and size of the target ``g`` and the anchor ``a``.

Tensors: anchors ``[k, S, S, 4]`` as ``(cx, cy, w, h)``; score maps follow pysot's channel layout,
classification ``[N, 2k, S, S]`` viewed as ``[N, 2, k, S, S]`` (background, foreground) and
regression ``[N, 4k, S, S]`` viewed as ``[N, 4, k, S, S]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

STRIDE = 8
RATIOS = (0.33, 0.5, 1.0, 2.0, 3.0)
SCALES = (8.0,)
POSITIVE_IOU = 0.6
NEGATIVE_IOU = 0.3
POSITIVES = 16
SAMPLED = 64

__all__ = ["POSITIVE_IOU", "NEGATIVE_IOU", "POSITIVES", "RATIOS", "SAMPLED", "SCALES", "STRIDE",
           "AnchorTargets", "anchor_grid", "anchor_iou", "anchor_sizes", "assign_targets",
           "decode", "encode"]


def anchor_sizes(stride: int = STRIDE, ratios: Sequence[float] = RATIOS,
                 scales: Sequence[float] = SCALES) -> torch.Tensor:
    """``[k, 2]`` anchor widths and heights (ratios outer, scales inner), pysot's whole-pixel
    rounding: ``w0 = floor(sqrt(stride² / r))``, ``h0 = floor(w0 r)``, ``(w, h) = s (w0, h0)``."""
    sizes = []
    for r in ratios:
        w0 = math.floor(math.sqrt(stride * stride / r))
        h0 = math.floor(w0 * r)
        sizes += [(w0 * s, h0 * s) for s in scales]
    return torch.tensor(sizes, dtype=torch.float32)


def anchor_grid(score_size: int, search_size: float = 255, stride: int = STRIDE,
                ratios: Sequence[float] = RATIOS, scales: Sequence[float] = SCALES) -> torch.Tensor:
    """``[k, S, S, 4]`` anchors ``(cx, cy, w, h)`` in search-image pixels for an ``S × S`` score
    map, centred on the search image of side ``search_size``."""
    sizes = anchor_sizes(stride, ratios, scales)
    offsets = (torch.arange(score_size, dtype=torch.float32) - (score_size - 1) / 2) * stride
    pos = search_size / 2 + offsets
    k = len(sizes)
    cx = pos[None, None, :].expand(k, score_size, score_size)
    cy = pos[None, :, None].expand(k, score_size, score_size)
    w = sizes[:, 0, None, None].expand(k, score_size, score_size)
    h = sizes[:, 1, None, None].expand(k, score_size, score_size)
    return torch.stack([cx, cy, w, h], dim=-1)


def encode(anchors: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Deltas ``[..., 4]`` taking ``anchors [..., 4]`` (cx, cy, w, h) to ``boxes [..., 4]``
    (cx, cy, w, h): ``((gx - ax) / aw, (gy - ay) / ah, log(gw / aw), log(gh / ah))``."""
    return torch.stack([(boxes[..., 0] - anchors[..., 0]) / anchors[..., 2],
                        (boxes[..., 1] - anchors[..., 1]) / anchors[..., 3],
                        torch.log(boxes[..., 2] / anchors[..., 2]),
                        torch.log(boxes[..., 3] / anchors[..., 3])], dim=-1)


def decode(anchors: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`encode`: boxes ``(cx, cy, w, h)`` from anchors and deltas."""
    return torch.stack([deltas[..., 0] * anchors[..., 2] + anchors[..., 0],
                        deltas[..., 1] * anchors[..., 3] + anchors[..., 1],
                        torch.exp(deltas[..., 2]) * anchors[..., 2],
                        torch.exp(deltas[..., 3]) * anchors[..., 3]], dim=-1)


def anchor_iou(anchors: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU ``[N, k, S, S]`` of every anchor ``[k, S, S, 4]`` (cx, cy, w, h) with each of
    ``boxes [N, 4]`` (x, y, w, h)."""
    a = anchors[None]
    b = boxes[:, None, None, None, :]
    ax0, ay0 = a[..., 0] - a[..., 2] / 2, a[..., 1] - a[..., 3] / 2
    ax1, ay1 = ax0 + a[..., 2], ay0 + a[..., 3]
    bx0, by0, bx1, by1 = b[..., 0], b[..., 1], b[..., 0] + b[..., 2], b[..., 1] + b[..., 3]
    iw = (torch.minimum(ax1, bx1) - torch.maximum(ax0, bx0)).clamp(min=0)
    ih = (torch.minimum(ay1, by1) - torch.maximum(ay0, by0)).clamp(min=0)
    inter = iw * ih
    return inter / (a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter).clamp(min=1e-12)


class AnchorTargets:
    """Training targets of a batch: ``labels [N, k, S, S]`` (1 positive, 0 negative, -1 ignored),
    ``deltas [N, 4, k, S, S]`` (to the target, every anchor), ``weights [N, k, S, S]``
    (``1 / positives`` on the positives, else 0) and ``iou [N, k, S, S]``."""

    def __init__(self, labels, deltas, weights, iou):
        self.labels, self.deltas, self.weights, self.iou = labels, deltas, weights, iou


def sample(mask: torch.Tensor, keep: int, generator: torch.Generator | None) -> torch.Tensor:
    """``mask`` (bool) with all but ``keep`` of its True entries, drawn at random, set False."""
    where = torch.nonzero(mask.flatten()).flatten()
    if len(where) <= keep:
        return mask
    order = torch.randperm(len(where), generator=generator, device="cpu").to(where.device)
    out = torch.zeros(mask.numel(), dtype=torch.bool, device=mask.device)
    out[where[order[:keep]]] = True
    return out.reshape(mask.shape)


def assign_targets(anchors: torch.Tensor, boxes: torch.Tensor, generator: torch.Generator | None = None,
                   positive_iou: float = POSITIVE_IOU, negative_iou: float = NEGATIVE_IOU,
                   positives: int = POSITIVES, sampled: int = SAMPLED) -> AnchorTargets:
    """Targets of ``anchors [k, S, S, 4]`` for the target ``boxes [N, 4]`` (x, y, w, h in
    search pixels): IoU > ``positive_iou`` positive, < ``negative_iou`` negative, at most
    ``positives`` positives and ``sampled - positives`` negatives per item, drawn with
    ``generator``."""
    iou = anchor_iou(anchors, boxes)
    labels = torch.full(iou.shape, -1, dtype=torch.long, device=boxes.device)
    weights = torch.zeros(iou.shape, dtype=torch.float32, device=boxes.device)
    for n in range(len(boxes)):
        pos = sample(iou[n] > positive_iou, positives, generator)
        neg = sample(iou[n] < negative_iou, sampled - positives, generator)
        labels[n][neg] = 0
        labels[n][pos] = 1
        weights[n][pos] = 1.0 / max(int(pos.sum()), 1)
    centre = torch.cat([boxes[:, :2] + boxes[:, 2:] / 2, boxes[:, 2:]], dim=1)
    deltas = encode(anchors[None], centre[:, None, None, None, :].expand(-1, *anchors.shape))
    return AnchorTargets(labels, deltas.permute(0, 4, 1, 2, 3), weights, iou)
