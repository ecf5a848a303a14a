"""Self-supervised SiamFC training pairs from unlabelled videos: no box is ever annotated.

Each item picks a video (a file :mod:`deepvideo.io` decodes, or a folder of numbered frames),
a frame ``t``, a gap ``1 <= g <= max_gap`` and a random region of frame ``t`` (side a share
``region`` of the frame's shorter side, aspect ratio within ``aspect``); a region whose mean
gradient magnitude (:func:`gradient_energy`, grey levels per pixel) is below ``min_texture`` is
flat (sky, wall, letterbox) and drawn again. Then, by ``mode``:

- ``"region"``: the same region ``g`` frames later is the search target (the target is assumed
  to move little over a few frames; the scale/shift augmentation moves it in the crop).
- ``"cycle"``: forward-backward cycle consistency. A cheap tracker of the library (``tracker``,
  default the KCF correlation filter, any name of :mod:`deepvideo.track.registry`) follows the
  region frame by frame from ``t`` to ``t + g``, then a fresh one follows its last box back to
  ``t``; the pair is kept only when the backward box overlaps the start region with IoU >=
  ``min_cycle_iou``, and the forward box is the search target. The idea is UDT's: Wang, Song,
  Ma, Zhou, Liu, Li, "Unsupervised Deep Tracking", CVPR 2019 (a robust tracker follows the
  target forward and traces it back to where it started; UDT trains on that consistency,
  here it filters the pairs). The thresholds are this module's choices, not the paper's.

A draw that fails a check is replaced by the next draw of the same generator; after ``tries``
failures the item is a :class:`SelfSupError` naming the videos and what failed (flat or too
fast videos fail loudly, never silently).

Items have exactly :class:`deepvideo.track.pairs.PairDataset`'s format (``exemplar`` float32
``[3, 127, 127]``, ``search`` ``[3, 255, 255]``, RGB 0..255, ``target`` the search target's
``x, y, w, h`` in search-crop pixels), cropped the same way (SiamFC's context margin,
:func:`deepvideo.track.pairs.context_side`) with the same augmentation and defaults (search
side scaled by ``1 +- scale``, centre shifted by up to ``shift`` output pixels, a share
``gray_share`` made grayscale). Keys ``(index, epoch)`` or an index (epoch 0); an item is a
pure function of its key and ``seed``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import torch

from deepvideo.track.boxes import iou
from deepvideo.track.dcf import extract_patch
from deepvideo.track.pairs import context_side, gray, to_chw
from deepvideo.track.sequence_files import IMAGE_SUFFIXES, SequenceError, numbered_frames

__all__ = ["MODES", "VIDEO_SUFFIXES", "FrameSource", "SelfSupError", "SelfSupPairs", "cycle_error",
           "gradient_energy", "rgb_prefix", "video_sources"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
MODES = ("region", "cycle")


class SelfSupError(RuntimeError):
    """No draw of an item passed the texture / cycle checks."""


def video_sources(paths) -> list[Path]:
    """The videos ``paths`` name (one path or a list): a video file, a frame folder (a folder
    holding images), or a folder whose video files and frame folders are taken (sorted). A path
    that is none of these, or no video at all, is a ``SequenceError`` naming it."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
            found.append(path)
        elif path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            found.append(path)
        elif path.is_dir():
            inside = [p for p in sorted(path.iterdir()) if not p.name.startswith(".") and (
                p.suffix.lower() in VIDEO_SUFFIXES
                or p.is_dir() and any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir()))]
            if not inside:
                raise SequenceError(f"{path}: no video files ({', '.join(VIDEO_SUFFIXES)}) or frame folders")
            found += inside
        else:
            raise SequenceError(f"{path}: not a video file, an image or a folder of them")
    if not found:
        raise SequenceError("no videos given")
    return found


class FrameSource:
    """Frames of one video file, frame folder (images numbered in their names; of a rawframes
    folder the ``img_`` ones, :func:`rgb_prefix`) or image (one frame): ``len(source)`` frames,
    :meth:`frames` decodes some as RGB ``uint8 [H, W, 3]``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.files: list[Path] = []
        self._reader = None
        if self.path.is_dir():
            self.files, _ = numbered_frames(self.path, gaps=True, prefix=rgb_prefix(self.path))
            self.count = len(self.files)
        elif self.path.suffix.lower() in IMAGE_SUFFIXES:
            self.files, self.count = [self.path], 1
        else:
            from deepvideo.io import VideoReader

            with VideoReader(self.path, threads=1) as reader:
                self.count = reader.packet_count()[0]

    def __len__(self) -> int:
        return self.count

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_reader": None}  # each worker process opens its own decoder

    def frames(self, indices) -> list[np.ndarray]:
        indices = [int(i) for i in indices]
        if not self.files:
            if self._reader is None:
                from deepvideo.io import VideoReader

                self._reader = VideoReader(self.path, threads=1)
            return list(self._reader.get_frames(indices).numpy())
        out = []
        for i in indices:
            image = cv2.imread(str(self.files[i]), cv2.IMREAD_COLOR)
            if image is None:
                raise SequenceError(f"{self.files[i]}: not a readable image")
            out.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return out


def rgb_prefix(folder: Path) -> str:
    """``"img_"`` for a TSN / MMAction2 "rawframes" folder, whose ``img_00001.jpg...`` RGB frames
    lie beside ``x_00001.jpg`` / ``y_00001.jpg`` flow images; else ``""`` (every image)."""
    stems = {re.sub(r"\d+$", "", p.stem) for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    return "img_" if len(stems) > 1 and "img_" in stems else ""


def gradient_energy(image: np.ndarray) -> float:
    """The mean gradient magnitude of an RGB image's grey levels (0..255 per pixel): 0 on a
    flat patch, about ``4 a / period`` on a sinusoidal grating of amplitude ``a``."""
    grey = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    gy, gx = np.gradient(grey)
    return float(np.mean(np.hypot(gx, gy)))


def cycle_error(tracker_factory, frames: list[np.ndarray], box) -> tuple[np.ndarray, float]:
    """Track ``box`` from ``frames[0]`` to the last frame, then back with a fresh tracker:
    ``(the forward box in the last frame, IoU of the backward box in frames[0] with box)``."""
    forward = tracker_factory()
    forward.initialize(frames[0], tuple(box))
    end = np.asarray(box, np.float64)
    for frame in frames[1:]:
        end = np.asarray(forward.track(frame).box, np.float64)
    backward = tracker_factory()
    backward.initialize(frames[-1], tuple(end))
    back = end
    for frame in frames[-2::-1]:
        back = np.asarray(backward.track(frame).box, np.float64)
    return end, float(iou(back, np.asarray(box, np.float64))[0])


class SelfSupPairs(torch.utils.data.Dataset):
    """SiamFC pairs cut from unlabelled ``videos`` (paths, see :func:`video_sources`); the
    parameters after ``tries`` are :class:`deepvideo.track.pairs.PairDataset`'s, same defaults."""

    def __init__(self, videos, mode: str = "cycle", max_gap: int = 10, region: tuple = (0.15, 0.4),
                 aspect: tuple = (0.5, 2.0), min_texture: float = 6.0, tracker: str = "kcf",
                 tracker_params: dict | None = None, min_cycle_iou: float = 0.7, tries: int = 20,
                 exemplar_size: int = 127, search_size: int = 255, context: float = 0.5,
                 pairs_per_epoch: int = 10000, shift: float = 8.0, scale: float = 0.05,
                 gray_share: float = 0.25, seed: int = 0):
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
        if max_gap < 1 or tries < 1 or pairs_per_epoch < 1 or not 0 < region[0] <= region[1] <= 1 \
                or not 0 < aspect[0] <= aspect[1] or not 0 <= gray_share <= 1 or not 0 <= scale < 1:
            raise ValueError(f"bad SelfSupPairs arguments: max_gap={max_gap} (>= 1), tries={tries} (>= 1), "
                             f"pairs_per_epoch={pairs_per_epoch} (>= 1), region={region} (0 < lo <= hi <= 1),"
                             f" aspect={aspect} (0 < lo <= hi), gray_share={gray_share} (0..1), "
                             f"scale={scale} (0..1)")
        self.sources = [FrameSource(p) for p in video_sources(videos)]
        for source in self.sources:
            if len(source) < 2:
                raise SequenceError(f"{source.path}: {len(source)} frame(s); a training pair needs two")
        self.mode, self.max_gap, self.region, self.aspect = mode, int(max_gap), tuple(region), tuple(aspect)
        self.min_texture, self.min_cycle_iou, self.tries = min_texture, min_cycle_iou, int(tries)
        self.tracker, self.tracker_params = tracker, dict(tracker_params or {})
        if mode == "cycle":
            try:
                self.new_tracker()  # an unknown tracker or parameter fails here, not in a worker
            except (KeyError, TypeError) as exc:
                raise ValueError(f"tracker {tracker!r}: {exc.args[0]}") from None
        self.exemplar_size, self.search_size = int(exemplar_size), int(search_size)
        self.context, self.pairs_per_epoch = context, int(pairs_per_epoch)
        self.shift, self.scale, self.gray_share, self.seed = shift, scale, gray_share, seed

    def __len__(self) -> int:
        return self.pairs_per_epoch

    def new_tracker(self):
        from deepvideo.track.registry import create_tracker

        return create_tracker(self.tracker, **self.tracker_params)

    def draw(self, rng: np.random.Generator) -> tuple[FrameSource, int, int]:
        """``(video, first frame, second frame)``, the two at most ``max_gap`` apart."""
        source = self.sources[int(rng.integers(len(self.sources)))]
        gap = int(rng.integers(1, min(self.max_gap, len(source) - 1) + 1))
        first = int(rng.integers(len(source) - gap))
        return source, first, first + gap

    def region_box(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A random ``x, y, w, h`` inside a ``width x height`` frame."""
        side = rng.uniform(*self.region) * min(height, width)
        ratio = math.exp(rng.uniform(math.log(self.aspect[0]), math.log(self.aspect[1])))
        w, h = min(side * math.sqrt(ratio), width - 1.0), min(side / math.sqrt(ratio), height - 1.0)
        return np.array([rng.uniform(0, width - w), rng.uniform(0, height - h), w, h])

    def pick(self, rng: np.random.Generator, key) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(first frame, its region, second frame, the region's box there)`` of the first draw
        that passes the checks."""
        failed: Counter = Counter()
        for _ in range(self.tries):
            source, first, second = self.draw(rng)
            frames = source.frames([first])  # the rest only once the region is not flat
            box = self.region_box(rng, *frames[0].shape[:2])
            x, y, w, h = box
            if gradient_energy(frames[0][int(y):int(math.ceil(y + h)), int(x):int(math.ceil(x + w))]) \
                    < self.min_texture:
                failed["flat region"] += 1
                continue
            frames += source.frames([second] if self.mode == "region" else range(first + 1, second + 1))
            if self.mode == "region":
                return frames[0], box, frames[1], box
            end, overlap = cycle_error(self.new_tracker, frames, box)
            if overlap >= self.min_cycle_iou:
                return frames[0], box, frames[-1], end
            failed["backward track missed the start"] += 1
        names = ", ".join(s.path.name for s in self.sources[:5]) + (" ..." if len(self.sources) > 5 else "")
        raise SelfSupError(f"item {key}: no pair in {self.tries} draws ({dict(failed)}) from {names}; "
                           f"lower min_texture ({self.min_texture}) or min_cycle_iou "
                           f"({self.min_cycle_iou}), or give other videos")

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        first, box, second, target_box = self.pick(rng, key)
        return crop_pair(rng, first, box, second, target_box, self)


def crop_pair(rng: np.random.Generator, first: np.ndarray, box, second: np.ndarray, target_box,
              p) -> dict[str, torch.Tensor]:
    """The exemplar around ``box`` in ``first`` and the augmented search crop around
    ``target_box`` in ``second``, as :class:`deepvideo.track.pairs.PairDataset` cuts them
    (``p`` holds the sizes and augmentation parameters)."""
    x, y, w, h = box
    side = context_side(w, h, p.context)
    exemplar = extract_patch(first, (x + w / 2, y + h / 2), (side, side), (p.exemplar_size, p.exemplar_size))
    x, y, w, h = target_box
    search_side = context_side(w, h, p.context) * p.search_size / p.exemplar_size
    search_side *= 1 + rng.uniform(-p.scale, p.scale)
    ratio = p.search_size / search_side                  # output pixels per frame pixel
    dx, dy = rng.uniform(-p.shift, p.shift, size=2) / ratio
    center = (x + w / 2 + dx, y + h / 2 + dy)
    search = extract_patch(second, center, (search_side, search_side), (p.search_size, p.search_size))
    left, top = center[0] - search_side / 2, center[1] - search_side / 2
    target = np.array([(x - left) * ratio, (y - top) * ratio, w * ratio, h * ratio], np.float32)
    if rng.random() < p.gray_share:
        exemplar, search = gray(exemplar), gray(search)
    return {"exemplar": to_chw(exemplar), "search": to_chw(search), "target": torch.from_numpy(target)}
