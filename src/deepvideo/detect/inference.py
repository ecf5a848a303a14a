"""Detect (and track, and link) through a whole video.

:func:`detect_video` runs a detector (:class:`~deepvideo.detect.rfcn.RFCN`) or a D&T model
(:class:`~deepvideo.detect.dt.DetectTrack`) on frames ``0, τ, 2τ, ...``; a D&T model also
regresses where each detection of a detected frame moves to in the next detected frame (the
tracks of :mod:`deepvideo.detect.link`). With ``link`` the detections are linked into tubes,
rescored and, for τ > 1, interpolated on the frames in between (every box then belongs to a
tube); without it the detections are returned as they are (on the detected frames only). With
``causal`` the detections are instead rescored online (:func:`deepvideo.detect.link.causal_rescore`:
each by the best path ending at it, from the frames so far), without tubes. The time spent
linking is reported, so that its cost per frame can be measured.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from deepvideo.detect.dt import DetectTrack
from deepvideo.detect.link import FrameDetections, Tube, causal_rescore, interpolate, link_video, rescore

__all__ = ["VideoDetections", "detect_video", "to_tensor"]


@dataclass
class VideoDetections:
    """Per frame (every frame of the video) ``boxes [n, 4]``, ``scores [n]``, ``labels [n]``
    (1-based) and ``tube_ids [n]`` (-1 when not linked); the ``tubes``; seconds spent linking."""

    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    tube_ids: list[np.ndarray] = field(default_factory=list)
    tubes: list[Tube] = field(default_factory=list)
    link_seconds: float = 0.0


def to_tensor(frame) -> torch.Tensor:
    """An RGB uint8 ``[H, W, 3]`` frame (array or tensor) as float ``[1, 3, H, W]`` in [0, 1]."""
    frame = torch.as_tensor(np.asarray(frame))
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame [H, W, 3], got shape {tuple(frame.shape)}")
    return frame.permute(2, 0, 1)[None].float() / 255


@torch.no_grad()
def _detect_frames(model, frames: Iterable, stride: int, track: bool) -> tuple[list[FrameDetections], int]:
    detector = model.detector if isinstance(model, DetectTrack) else model
    out: list[FrameDetections] = []
    previous = None
    count = 0
    for index, frame in enumerate(frames):
        count += 1
        if index % stride:
            continue
        image = to_tensor(frame)
        maps = detector.features(image)
        (dets,) = detector.detect(image, maps)
        if track and previous is not None and isinstance(model, DetectTrack):
            boxes = torch.as_tensor(out[-1].boxes, dtype=torch.float32)
            moved = model.tracked_boxes(previous[1], maps, boxes)
            out[-1].track_from, out[-1].track_to = out[-1].boxes, moved.numpy().astype(np.float64)
        out.append(FrameDetections(index, dets.boxes.numpy().astype(np.float64), dets.scores.numpy(),
                                   dets.labels.numpy()))
        previous = (index, maps)
    return out, count


def detect_video(model, frames: Iterable, stride: int = 1, link: bool = True,
                 track: bool = True, causal: bool = False) -> VideoDetections:
    """See the module docstring; ``frames`` yields RGB uint8 ``[H, W, 3]`` frames."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    model.eval()
    detected, count = _detect_frames(model, frames, stride, track)
    result = VideoDetections()
    if causal:
        start = time.perf_counter()
        for frame, scores in zip(detected, causal_rescore(detected), strict=True):
            frame.scores = scores
        result.link_seconds = time.perf_counter() - start
    if causal or not link:
        by_frame = {f.frame: f for f in detected}
        for k in range(count):
            f = by_frame.get(k)
            n = 0 if f is None else len(f.scores)
            result.boxes.append(np.zeros((0, 4)) if f is None else f.boxes)
            result.scores.append(np.zeros(0) if f is None else f.scores.astype(np.float64))
            result.labels.append(np.zeros(0, np.int64) if f is None else f.labels.astype(np.int64))
            result.tube_ids.append(np.full(n, -1, np.int64))
        return result
    start = time.perf_counter()
    tubes = [interpolate(t) for t in rescore(link_video(detected))]
    result.link_seconds = time.perf_counter() - start
    result.tubes = tubes
    rows: list[list[tuple]] = [[] for _ in range(count)]
    for tube_id, tube in enumerate(tubes):
        for frame, box, score in zip(tube.frames, tube.boxes, tube.scores, strict=True):
            rows[frame].append((box, score, tube.label, tube_id))
    for row in rows:
        result.boxes.append(np.array([r[0] for r in row], np.float64).reshape(-1, 4))
        result.scores.append(np.array([r[1] for r in row], np.float64))
        result.labels.append(np.array([r[2] for r in row], np.int64))
        result.tube_ids.append(np.array([r[3] for r in row], np.int64))
    return result
