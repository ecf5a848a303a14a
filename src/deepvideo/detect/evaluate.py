"""Frame-level VID mAP, overall and by motion speed (the split of FGFA, Zhu et al., ICCV 2017,
used by D&T's comparison).

The motion IoU of a ground-truth box is the mean IoU of that box with the boxes of the same
object (``trackid``) ``±10`` frames away (those of the two frames where the object is
annotated); slow motion is a motion IoU > 0.9, medium 0.7–0.9, fast < 0.7. An object with
neither neighbour annotated has no motion IoU and belongs to no speed class. The mAP of a
speed class scores all detections against the ground truth of that class, the other ground
truth boxes being ignored (a detection on them is neither true nor false, as the FGFA
evaluation does). AP per class: :mod:`deepvideo.detect.ap` (VOC all-point, IoU 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepvideo.detect.ap import Box, mean_ap, pairwise_iou
from deepvideo.detect.vid import VidVideo

__all__ = ["MOTION_OFFSET", "SPEED_BOUNDS", "evaluate_videos", "motion_iou", "speed_of"]

MOTION_OFFSET = 10
SPEED_BOUNDS = (0.7, 0.9)  # fast < 0.7 <= medium <= 0.9 < slow


def motion_iou(video: VidVideo, offset: int = MOTION_OFFSET) -> list[dict[int, float]]:
    """Per frame ``{trackid: motion IoU}`` (NaN without neighbours)."""
    boxes = [{o.trackid: o.box for o in f.objects} for f in video.frames]
    out = []
    for t, frame in enumerate(boxes):
        row = {}
        for tid, box in frame.items():
            values = [pairwise_iou(box, boxes[u][tid])[0, 0] for u in (t - offset, t + offset)
                      if 0 <= u < len(boxes) and tid in boxes[u]]
            row[tid] = float(np.mean(values)) if values else float("nan")
        out.append(row)
    return out


def speed_of(value: float) -> str | None:
    if np.isnan(value):
        return None
    if value > SPEED_BOUNDS[1]:
        return "slow"
    return "medium" if value >= SPEED_BOUNDS[0] else "fast"


def evaluate_videos(detections: Sequence, videos: Sequence[VidVideo], classes: Sequence[str],
                    iou_threshold: float = 0.5) -> dict:
    """``{"per_class", "mean", "by_speed": {speed: {"per_class", "mean", "boxes"}}}`` of the
    detections (per video, an object with per-frame ``boxes``, ``scores``, ``labels`` 1-based,
    e.g. :class:`~deepvideo.detect.inference.VideoDetections`) against the videos' ground truth."""
    if len(detections) != len(videos):
        raise ValueError(f"evaluate_videos: {len(detections)} detection sets for {len(videos)} videos")
    dets, truths = [], []
    for result, video in zip(detections, videos, strict=True):
        if len(result.boxes) != len(video.frames):
            raise ValueError(f"{video.name}: detections for {len(result.boxes)} frames, the video has "
                             f"{len(video.frames)}")
        speeds = motion_iou(video)
        for t, frame in enumerate(video.frames):
            key = (video.name, t)
            dets += [Box(key, classes[int(lab) - 1], tuple(b), float(s))
                     for b, s, lab in zip(result.boxes[t], result.scores[t], result.labels[t], strict=True)]
            truths += [(Box(key, o.name, o.box), speed_of(speeds[t][o.trackid])) for o in frame.objects]
    overall = mean_ap(dets, [t for t, _ in truths], iou_threshold, classes)
    by_speed = {}
    for speed in ("slow", "medium", "fast"):
        marked = [Box(t.key, t.label, t.box, ignore=s != speed) for t, s in truths]
        scores = mean_ap(dets, marked, iou_threshold, classes)
        by_speed[speed] = {**scores, "boxes": sum(s == speed for _, s in truths)}
    return {**overall, "by_speed": by_speed}
