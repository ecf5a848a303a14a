"""Tracking sequences and the formats they come in.

A :class:`Sequence` is a named list of frames (image files, or a video file) with one
ground-truth box per frame (``(x, y, w, h)``, 0-based float pixels; NaN rows where the target
is absent or not annotated), an ``absent`` mask, and per-frame attribute flags where the
format has them. :func:`load_sequence` reads one sequence folder in any known format;
:func:`load_dataset` reads a folder of them.

Formats (first frame = index 0 everywhere here):

- OTB: ``img/0001.jpg...`` + ``groundtruth_rect.txt`` (comma, tab or space separated, 1-based
  pixel coordinates: 1 is subtracted from x and y).
- VOT: ``00000001.jpg...`` (or ``color/``) + ``groundtruth.txt`` with 4 values (x, y, w, h) or
  8 polygon coordinates per line (their axis-aligned bounding box).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from deepvideo.track.boxes import polygon_to_box

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class SequenceError(ValueError):
    """A tracking sequence that cannot be read; the message names the file (and line)."""


@dataclass
class Sequence:
    name: str
    frame_paths: list[Path]
    boxes: np.ndarray                      # [N, 4] float64, NaN rows where not annotated
    absent: np.ndarray | None = None       # [N] bool, True where the target is not visible
    attributes: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [N] bool
    format: str = ""
    root: Path | None = None

    def __len__(self) -> int:
        return len(self.frame_paths)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB ``uint8 [H, W, 3]``."""
        path = self.frame_paths[index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SequenceError(f"{path}: not a readable image (frame {index} of {self.name})")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def frames(self, start: int = 0) -> Iterator[np.ndarray]:
        for index in range(start, len(self)):
            yield self.frame(index)


def read_box_lines(path: Path) -> np.ndarray:
    """A text file of numbers, one box (or polygon) per line, separated by commas, tabs or
    spaces, as a float64 array; ``NaN`` allowed. A malformed line is an error naming it."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append([float(v) for v in re.split(r"[,\s]+", line.strip())])
        except ValueError:
            raise SequenceError(f"{path}, line {number}: not numbers: {line.strip()!r}") from None
        if len(rows[-1]) != len(rows[0]):
            raise SequenceError(f"{path}, line {number}: {len(rows[-1])} values, the first line "
                                f"has {len(rows[0])}")
    if not rows:
        raise SequenceError(f"{path}: no boxes")
    return np.asarray(rows, dtype=np.float64)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_otb(folder: Path) -> Sequence:
    boxes = read_box_lines(folder / "groundtruth_rect.txt")
    boxes[:, :2] -= 1.0
    return Sequence(folder.name, image_files(folder / "img"), boxes, format="otb", root=folder)


def load_vot(folder: Path) -> Sequence:
    values = read_box_lines(folder / "groundtruth.txt")
    boxes = values if values.shape[1] == 4 else polygon_to_box(values)
    frames = folder / "color" if (folder / "color").is_dir() else folder
    return Sequence(folder.name, image_files(frames), boxes, format="vot", root=folder)


def load_sequence(folder: str | Path) -> Sequence:
    folder = Path(folder)
    if (folder / "groundtruth_rect.txt").is_file():
        return load_otb(folder)
    if (folder / "groundtruth.txt").is_file():
        return load_vot(folder)
    raise SequenceError(f"{folder}: not a tracking sequence (no groundtruth_rect.txt or "
                        "groundtruth.txt)")
