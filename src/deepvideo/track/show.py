"""Tracking results as a video: each frame with the tracker's box (and the ground truth when
given, in another colour), the tracker's mask when it gives one (segmentation trackers:
``TrackResult.extras["mask"]``, shaded), the frame number, and to its right a strip plotting
the tracker's score over time up to that frame.

Masks are kept between tracking and drawing as :class:`PackedMask` (the mask's bounding crop,
one bit per pixel), so a long video's masks stay small.

Drawn with OpenCV on numpy arrays, one frame at a time (frames are streamed, never all held);
written with :class:`deepvideo.io.VideoWriter` (atomic: nothing at ``path`` unless it finished).
This is what ``deepvideo track VIDEO --show out.mp4`` writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deepvideo.io import VideoWriter
from deepvideo.track.base import check_frame
from deepvideo.track.boxes import as_boxes

TRACKER_COLOR = (255, 48, 48)    # RGB
MASK_ALPHA = 0.45                # opacity of the mask shading
TRUTH_COLOR = (48, 255, 48)
STRIP_BACKGROUND = (32, 32, 32)
SCORE_COLOR = (255, 200, 0)
TEXT_COLOR = (255, 255, 255)
STRIP_WIDTH = 160
MARGIN = 8                       # pixels between the strip's edge and its plot


def draw_box(image: np.ndarray, box, color, thickness: int = 2) -> None:
    """Draw ``box`` (``x, y, w, h``; it covers ``[x, x + w)``) onto ``image`` in place; a NaN or
    empty box draws nothing."""
    x, y, w, h = (float(v) for v in box)
    if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
        return
    top_left = (round(x), round(y))
    bottom_right = (round(x + w) - 1, round(y + h) - 1)
    cv2.rectangle(image, top_left, bottom_right, color, thickness, cv2.LINE_8)


@dataclass(frozen=True)
class PackedMask:
    """A boolean frame mask stored as its bounding crop's bits."""

    frame_shape: tuple[int, int]
    top_left: tuple[int, int]
    crop_shape: tuple[int, int]
    bits: np.ndarray

    @classmethod
    def of(cls, mask) -> PackedMask | None:
        """``mask`` (bool ``[H, W]``) packed; None for no mask or an empty one."""
        if mask is None:
            return None
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise ValueError(f"a tracker's mask must be [H, W], got shape {mask.shape}")
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return None
        crop = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        return cls(mask.shape, (int(rows[0]), int(cols[0])), crop.shape, np.packbits(crop))

    def unpack(self) -> np.ndarray:
        mask = np.zeros(self.frame_shape, bool)
        (y, x), (h, w) = self.top_left, self.crop_shape
        mask[y:y + h, x:x + w] = np.unpackbits(self.bits, count=h * w).reshape(h, w).astype(bool)
        return mask


def shade_mask(image: np.ndarray, mask: np.ndarray, color, alpha: float = MASK_ALPHA) -> None:
    """Blend ``color`` into ``image`` (in place) where ``mask`` is set; a mask of another size
    than the frame is a ValueError."""
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask of shape {mask.shape} for a frame of {image.shape[:2]}")
    image[mask] = ((1 - alpha) * image[mask] + alpha * np.asarray(color, np.float64)).astype(np.uint8)


def put_text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.45) -> None:
    """White text with a dark outline, readable on any background."""
    for color, thickness in (((0, 0, 0), 3), (TEXT_COLOR, 1)):
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)


def score_range(scores: np.ndarray) -> tuple[float, float]:
    """The plot's vertical range: the finite scores' min and max (widened when equal)."""
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return (low - 0.5, high + 0.5) if high - low < 1e-12 else (low, high)


def score_strip(scores: np.ndarray, index: int, height: int, width: int = STRIP_WIDTH,
                limits: tuple[float, float] | None = None) -> np.ndarray:
    """A ``height x width`` RGB strip plotting ``scores[:index + 1]`` against time; the
    horizontal axis spans all ``len(scores)`` frames, the vertical one ``limits``
    (default :func:`score_range`). NaN scores leave gaps."""
    strip = np.empty((height, width, 3), np.uint8)
    strip[:] = STRIP_BACKGROUND
    low, high = limits or score_range(scores)
    top, bottom, left, right = 2 * MARGIN + 12, height - MARGIN, MARGIN, width - MARGIN
    cv2.rectangle(strip, (left, top), (right, bottom), (90, 90, 90), 1)
    xs = left + np.arange(len(scores)) * (right - left) / max(len(scores) - 1, 1)
    ys = bottom - (scores - low) / (high - low) * (bottom - top)
    shown = np.isfinite(scores) & (np.arange(len(scores)) <= index)
    for run in np.split(np.flatnonzero(shown), np.flatnonzero(np.diff(np.flatnonzero(shown)) > 1) + 1):
        if run.size:
            points = np.stack([xs[run], ys[run]], axis=1).round().astype(np.int32)
            cv2.polylines(strip, [points], False, SCORE_COLOR, 1, cv2.LINE_AA)
    current = scores[index] if index < len(scores) else np.nan
    label = "score: n/a" if not np.isfinite(current) else f"score {current:.3g}"
    put_text(strip, label, (left, MARGIN + 10), 0.4)
    return strip


def annotate_frame(frame: np.ndarray, index: int, box=None, gt_box=None, scores=None,
                   limits: tuple[float, float] | None = None, strip_width: int = STRIP_WIDTH,
                   mask: np.ndarray | None = None) -> np.ndarray:
    """``frame`` (RGB ``uint8 [H, W, 3]``, not modified) with the mask shaded, the boxes and
    frame number drawn, and the score strip of ``scores`` up to ``index`` joined on its right:
    ``[H, W + strip_width, 3]``."""
    image = check_frame(frame).copy()
    if mask is not None:
        shade_mask(image, mask, TRACKER_COLOR)
    if gt_box is not None:
        draw_box(image, gt_box, TRUTH_COLOR)
    if box is not None:
        draw_box(image, box, TRACKER_COLOR)
    put_text(image, f"#{index}", (4, 16))
    scores = np.full(index + 1, np.nan) if scores is None else np.asarray(scores, np.float64)
    return np.concatenate([image, score_strip(scores, index, image.shape[0], strip_width, limits)], axis=1)


def annotate_frames(frames: Iterable[np.ndarray], boxes, scores=None, gt_boxes=None, *,
                    strip_width: int = STRIP_WIDTH, masks=None) -> Iterator[np.ndarray]:
    """Each frame annotated (:func:`annotate_frame`) with its row of ``boxes`` ``[N, 4]``,
    ``gt_boxes`` ``[N, 4]``, the ``scores`` ``[N]`` so far and its entry of ``masks`` (``[N]``
    :class:`PackedMask` or None); one box per frame, or a ValueError saying how many of each."""
    boxes = as_boxes(boxes)
    gt = None if gt_boxes is None else as_boxes(gt_boxes)
    scores = None if scores is None else np.asarray(scores, np.float64).reshape(-1)
    for name, rows in (("scores", scores), ("ground-truth boxes", gt), ("masks", masks)):
        if rows is not None and len(rows) != len(boxes):
            raise ValueError(f"{len(rows)} {name} for {len(boxes)} boxes")
    limits = None if scores is None else score_range(scores)
    count = 0
    for count, frame in enumerate(frames, start=1):
        index = count - 1
        if index >= len(boxes):
            raise ValueError(f"more frames than boxes ({len(boxes)} boxes)")
        packed = None if masks is None else masks[index]
        yield annotate_frame(frame, index, boxes[index], None if gt is None else gt[index],
                             scores, limits, strip_width, None if packed is None else packed.unpack())
    if count != len(boxes):
        raise ValueError(f"{count} frames for {len(boxes)} boxes")


def write_tracking_video(path: str | Path, frames: Iterable[np.ndarray], boxes, scores=None,
                         gt=None, fps: float = 25.0, *, strip_width: int = STRIP_WIDTH,
                         masks=None) -> Path:
    """Write the annotated frames (:func:`annotate_frames`) as an H.264 mp4 at ``path``,
    atomically; returns ``path``."""
    with VideoWriter(path, fps=fps) as writer:
        for image in annotate_frames(frames, boxes, scores, gt, strip_width=strip_width, masks=masks):
            writer.write(image)
    return Path(path)
