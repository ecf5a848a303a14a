"""Run a trained action detector over a video: per-person action scores at every keyframe
(1 fps) for the given person boxes, written as JSON, as AVA detection CSV rows, and drawn on
an annotated copy of the video.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from deepvideo.detect.actions.ava import AvaBox
from deepvideo.detect.actions.dataset import load_clip
from deepvideo.detect.actions.sampling import keyframe_index, keyframe_timestamps
from deepvideo.io import VideoReader
from deepvideo.io.writer import write_video


@dataclass
class KeyframeResult:
    timestamp: int
    boxes: np.ndarray  # [n, 4] normalised
    scores: np.ndarray  # [n, K] sigmoid
    person_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the detector's


@torch.no_grad()
def detect_video(model, video: str | Path, persons: dict[int, np.ndarray], *, start: float = 0.0,
                 device: str = "cpu") -> list[KeyframeResult]:
    """Scores of every person box ``persons[timestamp] = [n, 5]`` (normalised x1, y1, x2, y2,
    score) at the video's keyframes; ``model.input_spec`` gives the clip."""
    spec = model.input_spec
    stride = spec.frame_stride if isinstance(spec.frame_stride, int) else spec.frame_stride[0]
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(3, 1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(3, 1, 1, 1)
    reader = VideoReader(video)
    fps = reader.fps or 30.0
    out = []
    for ts in keyframe_timestamps(reader.num_frames, fps, start=start):
        boxes = np.asarray(persons.get(ts, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
        if not len(boxes):
            continue
        clip = load_clip(reader, ts, spec.num_frames, stride, spec.crop_size, mean, std, start)
        pixels = torch.as_tensor(boxes[:, :4]).float() * spec.crop_size
        rois = torch.cat([torch.zeros(len(boxes), 1), pixels], 1)
        logits = model({"rgb": clip[None].to(device), "rois": rois.to(device)})
        out.append(KeyframeResult(ts, boxes[:, :4], torch.sigmoid(logits.float()).cpu().numpy(), boxes[:, 4]))
    return out


@torch.no_grad()
def person_boxes(detector, video: str | Path, label: int, *, min_score: float = 0.5,
                 start: float = 0.0) -> dict[int, np.ndarray]:
    """Person boxes at every keyframe from an object detector (e.g. the R-FCN of
    :mod:`deepvideo.detect.rfcn`): ``{timestamp: [n, 5]}`` (normalised x1, y1, x2, y2, score)
    of its class ``label`` (1-based) scoring at least ``min_score``."""
    from deepvideo.detect.inference import to_tensor

    detector.eval()
    reader = VideoReader(video)
    fps = reader.fps or 30.0
    out = {}
    for ts in keyframe_timestamps(reader.num_frames, fps, start=start):
        frame = reader.get_frames([keyframe_index(ts, fps, start)])[0].numpy()
        height, width = frame.shape[:2]
        (dets,) = detector.detect(to_tensor(frame))
        keep = (dets.labels == label) & (dets.scores >= min_score)
        boxes = dets.boxes[keep].double().numpy() / np.array([width, height, width, height])
        out[ts] = np.concatenate([boxes.clip(0, 1), dets.scores[keep].double().numpy()[:, None]], 1)
    return out


def as_rows(video_id: str, results: list[KeyframeResult], actions: list[int]) -> list[AvaBox]:
    """AVA detection rows: one per box and action."""
    return [AvaBox(video_id, r.timestamp, tuple(float(v) for v in box), a, score=float(s))
            for r in results for box, row in zip(r.boxes, r.scores, strict=True)
            for a, s in zip(actions, row, strict=True)]


def as_json(video_id: str, results: list[KeyframeResult], names: list[str], threshold: float) -> dict:
    """``{"video", "actions", "threshold", "keyframes": [{"timestamp", "people": [{"box",
    "scores", "labels"}]}]}``; labels are the actions scoring at least ``threshold``."""
    frames = []
    for r in results:
        people = [{"box": [round(float(v), 4) for v in box],
                   "scores": {n: round(float(s), 4) for n, s in zip(names, row, strict=True)},
                   "labels": [n for n, s in zip(names, row, strict=True) if s >= threshold]}
                  for box, row in zip(r.boxes, r.scores, strict=True)]
        frames.append({"timestamp": r.timestamp, "people": people})
    return {"video": video_id, "actions": names, "threshold": threshold, "keyframes": frames}


def draw(frame: np.ndarray, boxes: np.ndarray, labels: list[list[str]]) -> np.ndarray:
    """A copy of an RGB frame with each box and its labels drawn."""
    out = np.ascontiguousarray(frame).copy()
    h, w = out.shape[:2]
    scale = max(0.3, min(w, h) / 600)
    for box, names in zip(boxes, labels, strict=True):
        x1, y1, x2, y2 = (int(round(v)) for v in box * [w, h, w, h])
        cv2.rectangle(out, (x1, y1), (x2, y2), (255, 220, 0), max(1, round(2 * scale)))
        for i, name in enumerate(names):
            y = min(h - 2, y1 + int((i + 1) * 14 * scale * 1.6))
            cv2.putText(out, name, (x1 + 2, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale * 1.6, (255, 255, 255),
                        1, cv2.LINE_AA)
    return out


def write_annotated(video: str | Path, out: str | Path, results: list[KeyframeResult], names: list[str],
                    threshold: float, start: float = 0.0) -> Path:
    """The video with each keyframe's boxes and labels drawn over the half second either side."""
    reader = VideoReader(video)
    fps = reader.fps or 30.0
    centres = np.array([keyframe_index(r.timestamp, fps, start) for r in results])
    frames = []
    for i, frame in enumerate(reader.get_frames(range(reader.num_frames)).numpy()):
        if len(centres) and abs(centres - i).min() <= fps / 2:
            r = results[int(np.argmin(abs(centres - i)))]
            labels = [[n for n, s in zip(names, row, strict=True) if s >= threshold] for row in r.scores]
            frame = draw(frame, r.boxes, labels)
        frames.append(frame)
    return write_video(out, np.stack(frames), fps=fps)
