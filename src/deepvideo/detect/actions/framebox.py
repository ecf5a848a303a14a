"""Per-frame box annotations of action tubes (UCF101-24, J-HMDB-21) as a documented JSON file.

The corrected UCF101-24 annotations (Singh et al., ICCV 2017) and J-HMDB's puppet boxes
(Jhuang et al., ICCV 2013) are distributed as Python pickles / MATLAB files; deepvideo reads
and writes their content as one JSON document (no pickle)::

    {"format": "deepvideo-action-tubes",
     "labels": ["Basketball", ...],                 # class names; a tube's label indexes them
     "videos": {"Basketball/v_Basketball_g01_c01": {
         "num_frames": 95, "width": 320, "height": 240,
         "tubes": [{"label": 0,
                    "frames": [0, 1, 2, ...],       # 0-based frame indices, increasing
                    "boxes": [[x1, y1, x2, y2], ...]}]}}}   # pixels, one per frame

A video may hold several tubes (UCF101-24 has several actors per video, all of the video's
class); J-HMDB has one tube over every frame. Errors name the file and the JSON path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepvideo.io.atomic import atomic_write_json

FORMAT = "deepvideo-action-tubes"


class TubeFormatError(ValueError):
    """A malformed tube annotation file (the message names the file and the entry)."""


@dataclass
class Tube:
    """An action tube: ``frames [n]`` (increasing) and ``boxes [n, 4]`` (x1, y1, x2, y2)."""

    label: int
    frames: np.ndarray
    boxes: np.ndarray
    score: float = 1.0

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if len(self.frames) != len(self.boxes) or len(self.frames) == 0:
            raise ValueError(f"a tube needs one box per frame and at least one frame, got "
                             f"{len(self.frames)} frames and {len(self.boxes)} boxes")
        if np.any(np.diff(self.frames) <= 0):
            raise ValueError("a tube's frames must be strictly increasing")


@dataclass
class TubeVideo:
    num_frames: int
    width: int
    height: int
    tubes: list[Tube] = field(default_factory=list)


def _video(path, name: str, entry) -> TubeVideo:
    where = f"{path}: videos[{name!r}]"
    try:
        video = TubeVideo(int(entry["num_frames"]), int(entry["width"]), int(entry["height"]))
        for i, t in enumerate(entry["tubes"]):
            try:
                tube = Tube(int(t["label"]), t["frames"], t["boxes"])
            except (KeyError, TypeError, ValueError) as exc:
                raise TubeFormatError(f"{where}.tubes[{i}]: {exc!s}") from None
            if tube.frames[0] < 0 or tube.frames[-1] >= video.num_frames:
                raise TubeFormatError(f"{where}.tubes[{i}]: frames outside 0..{video.num_frames - 1}")
            video.tubes.append(tube)
    except (KeyError, TypeError) as exc:
        raise TubeFormatError(f"{where}: needs num_frames, width, height and tubes ({exc!s})") from None
    return video


def read_tubes(path: str | Path) -> tuple[list[str], dict[str, TubeVideo]]:
    """``(labels, {video: TubeVideo})`` of a tube annotation file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TubeFormatError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TubeFormatError(f"{path}: expected a JSON object with \"format\": \"{FORMAT}\"")
    labels = [str(x) for x in data.get("labels", [])]
    videos = {name: _video(path, name, entry) for name, entry in data.get("videos", {}).items()}
    for name, video in videos.items():
        for i, tube in enumerate(video.tubes):
            if not 0 <= tube.label < len(labels):
                raise TubeFormatError(f"{path}: videos[{name!r}].tubes[{i}]: label {tube.label} is "
                                      f"not an index of the {len(labels)} labels")
    return labels, videos


def write_tubes(path: str | Path, labels: list[str], videos: dict[str, TubeVideo]) -> Path:
    data = {"format": FORMAT, "labels": list(labels), "videos": {
        name: {"num_frames": v.num_frames, "width": v.width, "height": v.height,
               "tubes": [{"label": t.label, "frames": t.frames.tolist(), "boxes": t.boxes.tolist()}
                         for t in v.tubes]}
        for name, v in videos.items()}}
    return atomic_write_json(path, data)
