"""PASCAL VOC-style average precision over frames, the measure of ImageNet VID and AVA.

Boxes are ``(x1, y1, x2, y2)`` in continuous coordinates (no +1 pixel convention; AVA's boxes
are normalised to [0, 1], VID's are pixels). Per class, detections over all frames are sorted
by score (ties keep their input order); each one is matched to the ground-truth box of its
frame with the highest IoU: a true positive when that IoU ≥ the threshold and the box is not
matched yet, else a false positive (Everingham et al., IJCV 2010; the rule of the VOC devkit,
the ImageNet VID devkit and AVA's evaluation code). Ground truth marked ``ignore`` (VOC's
"difficult") neither counts as a miss nor makes a detection false. AP is the area under the
interpolated precision–recall curve at every recall step ("all-point" interpolation, VOC
2010 onwards).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """One box of a frame: ``key`` names the frame (e.g. ``(video, frame)``), ``label`` the
    class; ``score`` is ignored for ground truth, ``ignore`` for detections."""

    key: Hashable
    label: Hashable
    box: Sequence[float]
    score: float = 1.0
    ignore: bool = False


def pairwise_iou(a, b) -> np.ndarray:
    """IoU matrix ``[len(a), len(b)]`` of ``(x1, y1, x2, y2)`` boxes; 0 where a union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP of a precision–recall curve (recall non-decreasing)."""
    recall = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    precision = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def match(detections: Sequence[Box], truths: Sequence[Box], iou_threshold: float) -> np.ndarray:
    """Per detection (in the given order, highest score first): 1 true positive, 0 false
    positive, -1 matched an ignored box (counts as neither)."""
    by_key: dict[Hashable, list[Box]] = defaultdict(list)
    for truth in truths:
        by_key[truth.key].append(truth)
    used = {key: np.zeros(len(boxes), dtype=bool) for key, boxes in by_key.items()}
    arrays = {key: np.asarray([t.box for t in boxes], dtype=np.float64)
              for key, boxes in by_key.items()}
    out = np.zeros(len(detections), dtype=np.int8)
    for i, det in enumerate(detections):
        if det.key not in arrays:
            continue
        overlaps = pairwise_iou(det.box, arrays[det.key])[0]
        best = int(np.argmax(overlaps))
        if overlaps[best] < iou_threshold:
            continue
        if by_key[det.key][best].ignore:
            out[i] = -1
        elif not used[det.key][best]:
            used[det.key][best] = True
            out[i] = 1
    return out


def class_ap(detections: Iterable[Box], truths: Iterable[Box], iou_threshold: float = 0.5) -> float:
    """AP of one class; NaN when the class has no (non-ignored) ground truth."""
    truths = list(truths)
    positives = sum(not t.ignore for t in truths)
    if positives == 0:
        return float("nan")
    detections = list(detections)
    order = np.argsort([-d.score for d in detections], kind="stable")
    flags = match([detections[i] for i in order], truths, iou_threshold)
    flags = flags[flags >= 0]
    tp = np.cumsum(flags == 1)
    fp = np.cumsum(flags == 0)
    if len(flags) == 0:
        return 0.0
    return average_precision(tp / positives, tp / np.maximum(tp + fp, 1))


def mean_ap(detections: Iterable[Box], truths: Iterable[Box], iou_threshold: float = 0.5,
            classes: Iterable[Hashable] | None = None) -> dict:
    """``{"per_class": {label: AP}, "mean": mAP}`` over ``classes`` (default: every label of
    the ground truth); classes without ground truth get NaN and are left out of the mean."""
    det_by: dict[Hashable, list[Box]] = defaultdict(list)
    gt_by: dict[Hashable, list[Box]] = defaultdict(list)
    for det in detections:
        det_by[det.label].append(det)
    for truth in truths:
        gt_by[truth.label].append(truth)
    labels = list(classes) if classes is not None else sorted(gt_by, key=str)
    per_class = {label: class_ap(det_by.get(label, []), gt_by.get(label, []), iou_threshold)
                 for label in labels}
    valid = [ap for ap in per_class.values() if not np.isnan(ap)]
    return {"per_class": per_class, "mean": float(np.mean(valid)) if valid else float("nan")}
