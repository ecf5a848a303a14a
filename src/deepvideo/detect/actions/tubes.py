"""Action tubes: greedy online linking of per-frame detections and video-mAP.

Linking follows Singh et al., "Online Real-time Multiple Spatiotemporal Action Localisation
and Prediction", ICCV 2017, per class: the active tubes, best score first, each take the
highest-scoring not yet taken detection of the next frame whose IoU with the tube's last box
exceeds ``λ = 0.1``; detections nobody takes start new tubes; a tube not extended for
``k = 5`` consecutive frames ends. A tube's score is the mean of its boxes' scores. (The
paper's optional label-consistency trimming is not applied.)

Video-mAP (Weinzaepfel et al., ICCV 2015; Gkioxari & Malik, CVPR 2015): the spatio-temporal
IoU of two tubes is their temporal IoU (frame ranges) times the mean spatial IoU over the
frames both ranges cover (a frame where one tube has no box counts 0). Per class, tubes of
all videos sorted by score are true positives when their ST-IoU with a not yet matched
ground-truth tube of the same video and class reaches δ; AP is the all-point VOC AP of
:mod:`deepvideo.detect.ap`. Reported at δ = 0.2, 0.5 and the mean over 0.5:0.05:0.95.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping

import numpy as np

from deepvideo.detect.actions.framebox import Tube
from deepvideo.detect.ap import average_precision, pairwise_iou

LINK_IOU = 0.1  # λ, Singh et al. 2017
MAX_MISSED = 5  # k, Singh et al. 2017
VIDEO_THRESHOLDS = (0.2, 0.5)
COCO_RANGE = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


class _Growing:
    def __init__(self, frame: int, box, score: float):
        self.frames, self.boxes, self.scores = [frame], [np.asarray(box, float)], [float(score)]

    @property
    def score(self) -> float:
        return float(np.mean(self.scores))


def link_tubes(detections: Mapping[int, tuple[np.ndarray, np.ndarray]], label: int = 0,
               iou_threshold: float = LINK_IOU, max_missed: int = MAX_MISSED) -> list[Tube]:
    """Greedy online linking of one class's detections ``{frame: (boxes [n, 4], scores [n])}``
    into tubes (best score first)."""
    active: list[_Growing] = []
    done: list[_Growing] = []
    for frame in sorted(detections):
        boxes, scores = (np.asarray(a, float) for a in detections[frame])
        boxes, scores = boxes.reshape(-1, 4), scores.reshape(-1)
        still = []
        for tube in active:
            (done if frame - tube.frames[-1] > max_missed else still).append(tube)
        active = sorted(still, key=lambda t: -t.score)
        taken = np.zeros(len(boxes), dtype=bool)
        for tube in active:
            if not len(boxes):
                break
            overlap = pairwise_iou(tube.boxes[-1], boxes)[0]
            ok = (overlap > iou_threshold) & ~taken
            if ok.any():
                best = int(np.argmax(np.where(ok, scores, -np.inf)))
                taken[best] = True
                tube.frames.append(frame)
                tube.boxes.append(boxes[best])
                tube.scores.append(float(scores[best]))
        active += [_Growing(frame, boxes[i], scores[i]) for i in np.flatnonzero(~taken)]
    tubes = [Tube(label, t.frames, np.stack(t.boxes), t.score) for t in done + active]
    return sorted(tubes, key=lambda t: -t.score)


def link_classes(frames: Mapping[int, tuple[np.ndarray, np.ndarray]], num_classes: int, top_k: int = 10,
                 iou_threshold: float = LINK_IOU, max_missed: int = MAX_MISSED) -> list[Tube]:
    """Tubes of every class from a per-frame detector's ``{frame: (boxes [n, 4], scores [n, K])}``:
    per class, each frame's ``top_k`` best boxes are linked by :func:`link_tubes`."""
    tubes: list[Tube] = []
    for c in range(num_classes):
        per_frame = {}
        for f, (boxes, scores) in frames.items():
            boxes = np.asarray(boxes, float).reshape(-1, 4)
            column = np.asarray(scores, float).reshape(len(boxes), num_classes)[:, c]
            keep = np.argsort(-column, kind="stable")[:top_k]
            per_frame[f] = (boxes[keep], column[keep])
        tubes += link_tubes(per_frame, c, iou_threshold, max_missed)
    return sorted(tubes, key=lambda t: -t.score)


def spatiotemporal_iou(a: Tube, b: Tube) -> float:
    """Temporal IoU of the frame ranges times the mean per-frame IoU over their overlap."""
    start, end = max(a.frames[0], b.frames[0]), min(a.frames[-1], b.frames[-1])
    if end < start:
        return 0.0
    union = max(a.frames[-1], b.frames[-1]) - min(a.frames[0], b.frames[0]) + 1
    temporal = (end - start + 1) / union
    box_a = dict(zip(a.frames.tolist(), a.boxes, strict=True))
    box_b = dict(zip(b.frames.tolist(), b.boxes, strict=True))
    ious = [float(pairwise_iou(box_a[f], box_b[f])[0, 0]) if f in box_a and f in box_b else 0.0
            for f in range(start, end + 1)]
    return temporal * float(np.mean(ious))


def video_ap(detected: Iterable[tuple[Hashable, Tube]], truth: Iterable[tuple[Hashable, Tube]],
             threshold: float) -> float:
    """AP of one class: ``(video, tube)`` pairs of detections and ground truth; NaN without truth."""
    gt_by: dict[Hashable, list[Tube]] = defaultdict(list)
    for video, tube in truth:
        gt_by[video].append(tube)
    positives = sum(len(v) for v in gt_by.values())
    if positives == 0:
        return float("nan")
    dets = sorted(detected, key=lambda vt: -vt[1].score)
    used = {v: np.zeros(len(t), dtype=bool) for v, t in gt_by.items()}
    tp = np.zeros(len(dets))
    for i, (video, tube) in enumerate(dets):
        overlaps = [spatiotemporal_iou(tube, g) for g in gt_by.get(video, [])]
        if overlaps:
            best = int(np.argmax(overlaps))
            if overlaps[best] >= threshold and not used[video][best]:
                used[video][best] = True
                tp[i] = 1
    if not len(dets):
        return 0.0
    ctp = np.cumsum(tp)
    return average_precision(ctp / positives, ctp / np.arange(1, len(dets) + 1))


def video_map(detected: Mapping[Hashable, list[Tube]], truth: Mapping[Hashable, list[Tube]],
              thresholds=VIDEO_THRESHOLDS, coco: bool = True) -> dict:
    """``{"0.2": mAP, "0.5": mAP, "0.5:0.95": mean over 0.5..0.95, "per_class": {δ: {label: AP}}}``
    over the labels of the ground truth; tubes by video."""
    labels = sorted({t.label for tubes in truth.values() for t in tubes})

    def pairs(source, label):
        return [(v, t) for v, tubes in source.items() for t in tubes if t.label == label]

    def at(delta):
        return {c: video_ap(pairs(detected, c), pairs(truth, c), delta) for c in labels}

    out: dict = {"per_class": {}}
    for delta in thresholds:
        per = at(delta)
        out["per_class"][str(delta)] = per
        out[str(delta)] = float(np.nanmean(list(per.values()))) if per else float("nan")
    if coco:
        means = [np.nanmean(list(at(d).values())) if labels else np.nan for d in COCO_RANGE]
        out["0.5:0.95"] = float(np.mean(means))
    return out
