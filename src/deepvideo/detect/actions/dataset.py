"""Keyframe samples of an AVA-format set for training and evaluating an action detector.

An item is one keyframe: its keyframe-centred clip (:mod:`.sampling`; ``num_frames`` at
``stride`` as the backbone's :class:`~deepvideo.spec.InputSpec`), resized to ``size``² and
normalised, ``rgb [3, T, size, size]``; the people ``boxes [P, 4]`` (pixels of the resized
frame, padded to ``max_people`` rows with ``valid [P]`` marking the real ones) and their
multi-hot ``labels [P, K]`` over ``classes`` (action ids). Training uses the ground-truth
boxes; evaluation the person proposals when given (else the ground-truth boxes). Keyframes in
the excluded timestamps are left out. ``augment`` (training) adds a horizontal flip and box
jitter, and skips unreadable videos as the engine's contract asks (logged, listed in
``bad_items``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from deepvideo.data.dataset import BAD_VIDEO_ERRORS
from deepvideo.detect.actions.ava import keyframe_people
from deepvideo.detect.actions.model import jitter_boxes
from deepvideo.detect.actions.sampling import keyframe_clip
from deepvideo.io import VideoReader

JITTER = 0.05
MAX_RETRIES = 10
log = logging.getLogger("deepvideo.detect")


class AvaKeyframes(Dataset):
    """Keyframes of AVA rows over the videos ``video_root/<video_id><suffix>``."""

    def __init__(self, rows, video_root: str | Path, classes: Sequence[int], *, num_frames: int,
                 stride: int, size: int, mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225),
                 excluded=(), proposals: dict | None = None, max_people: int = 8, augment: bool = False,
                 suffix: str = ".mp4", start: float = 0.0, seed: int = 0):
        self.people = {k: v for k, v in keyframe_people(rows).items() if k not in set(excluded)}
        self.keys = sorted(self.people)
        self.video_root, self.suffix, self.start = Path(video_root), suffix, start
        self.classes = list(classes)
        self.num_frames, self.stride, self.size = num_frames, stride, size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
        self.proposals, self.max_people = proposals, max_people
        self.augment, self.seed = augment, seed
        self.bad_items: list = []
        self._readers: dict[str, VideoReader] = {}
        for key in self.keys:
            count = len(self.boxes_of(key)[0])
            if count > max_people:
                raise ValueError(f"keyframe {key[0]},{key[1]} has {count} people, more than "
                                 f"max_people={max_people}: raise max_people")

    def __len__(self) -> int:
        return len(self.keys)

    def boxes_of(self, key) -> tuple[np.ndarray, np.ndarray]:
        """(normalised boxes [n, 4], multi-hot labels [n, K]) of a keyframe: proposals (labels
        zero) when given, else the ground truth."""
        if self.proposals is not None:
            props = np.asarray(self.proposals.get(key, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
            return props[:, :4], np.zeros((len(props), len(self.classes)), np.float32)
        people = self.people[key]
        boxes = np.array([p[0] for p in people], dtype=np.float64).reshape(-1, 4)
        labels = np.array([[c in p[1] for c in self.classes] for p in people], np.float32)
        return boxes, labels.reshape(len(people), len(self.classes))

    def reader(self, video: str) -> VideoReader:
        if video not in self._readers:
            self._readers[video] = VideoReader(self.video_root / f"{video}{self.suffix}", threads=1)
        return self._readers[video]

    def clip(self, key) -> torch.Tensor:
        """The normalised clip ``[3, T, size, size]`` centred on the keyframe."""
        return load_clip(self.reader(key[0]), key[1], self.num_frames, self.stride, self.size,
                         self.mean, self.std, self.start)

    def record_bad(self, items: list[dict]) -> None:
        """Add failures reported by worker processes (deduplicated by path)."""
        known = {b["path"] for b in self.bad_items}
        self.bad_items += [dict(b) for b in items if b["path"] not in known]

    def __getitem__(self, item) -> dict:
        """In training an unreadable video is logged, recorded in ``bad_items`` and another
        keyframe delivered (up to ``MAX_RETRIES`` in a row); in evaluation it raises."""
        index, epoch = (int(item[0]), int(item[1])) if isinstance(item, tuple | list) else (int(item), 0)
        failures: list[dict] = []
        for attempt in range(MAX_RETRIES + 1):
            try:
                out = self.load(index, epoch)
                if failures:
                    out["bad_items"] = failures
                return out
            except BAD_VIDEO_ERRORS as exc:
                if not self.augment:
                    raise
                path = str(self.video_root / f"{self.keys[index][0]}{self.suffix}")
                failures.append({"path": path, "source": path, "error": f"{type(exc).__name__}: {exc}"})
                self.record_bad(failures[-1:])
                log.warning("skipping unreadable video %s (%s); delivering another keyframe", path, exc)
                index = int(np.random.default_rng([self.seed, epoch, index, attempt]).integers(len(self)))
        raise RuntimeError(f"{MAX_RETRIES + 1} videos in a row could not be read "
                           f"({', '.join(f['path'] for f in failures[:5])})")

    def load(self, index: int, epoch: int) -> dict:
        key = self.keys[index]
        rgb = self.clip(key)
        boxes, labels = self.boxes_of(key)
        boxes = torch.as_tensor(boxes, dtype=torch.float32) * self.size
        if self.augment:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 100_003 + index)
            boxes = jitter_boxes(boxes, JITTER, self.size, self.size, g)
            if torch.rand((), generator=g) < 0.5:
                rgb = rgb.flip(-1)
                boxes = torch.stack([self.size - boxes[:, 2], boxes[:, 1], self.size - boxes[:, 0],
                                     boxes[:, 3]], 1)
        n, p = len(boxes), self.max_people
        padded = torch.zeros(p, 4)
        padded[:n] = boxes
        targets = torch.zeros(p, len(self.classes))
        targets[:n] = torch.as_tensor(labels)
        valid = torch.zeros(p, dtype=torch.bool)
        valid[:n] = True
        return {"rgb": rgb, "boxes": padded, "labels": targets, "valid": valid, "index": index}


def load_clip(reader: VideoReader, timestamp: float, num_frames: int, stride: int, size: int,
              mean: torch.Tensor, std: torch.Tensor, start: float = 0.0) -> torch.Tensor:
    """The keyframe-centred clip of a video, resized to ``size``² and normalised:
    ``[3, num_frames, size, size]`` (``mean``/``std`` shaped ``[3, 1, 1, 1]``)."""
    idx = keyframe_clip(timestamp, reader.fps or 30.0, num_frames, stride, reader.num_frames, start)
    frames = reader.get_frames(idx).permute(3, 0, 1, 2).float() / 255.0
    frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
    return (frames - mean) / std


def rois_of(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rois [M, 5], (item, slot) [M, 2])`` of a collated batch's valid boxes."""
    item, slot = torch.nonzero(batch["valid"], as_tuple=True)
    rois = torch.cat([item[:, None].float(), batch["boxes"][item, slot]], 1)
    return rois, torch.stack([item, slot], 1)
