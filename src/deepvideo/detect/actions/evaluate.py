"""Frame-mAP of AVA-style detections (Gu et al., CVPR 2018; the AVA v2 evaluation protocol).

Each detection is a keyframe's person box with one action and a score; per action class, the
detections of all keyframes are matched to the ground truth at IoU ≥ 0.5 and scored with
PASCAL VOC-style AP (:func:`deepvideo.detect.ap.mean_ap`). Keyframes listed in the excluded
timestamps are removed from both sides; only the evaluated classes count (the action list of
the protocol: 60 of AVA's 80 actions), other rows are dropped. A person with several actions
is one ground-truth box per action (one row each, as in the CSV).
"""

from __future__ import annotations

from collections.abc import Iterable

from deepvideo.detect.actions.ava import AvaBox
from deepvideo.detect.ap import Box, mean_ap

FRAME_IOU = 0.5


def frame_map(detections: Iterable[AvaBox], truths: Iterable[AvaBox], classes: Iterable[int],
              excluded: Iterable[tuple[str, int]] = (), iou_threshold: float = FRAME_IOU) -> dict:
    """``{"per_class": {action id: AP}, "mean": frame-mAP}`` over ``classes``."""
    classes = list(classes)
    keep, skip = set(classes), set(excluded)

    def boxes(rows, score: bool):
        out = []
        for r in rows:
            if r.action in keep and r.key not in skip:
                out.append(Box(r.key, r.action, r.box, float(r.score) if score else 1.0))
        return out

    return mean_ap(boxes(detections, True), boxes(truths, False), iou_threshold, classes)
