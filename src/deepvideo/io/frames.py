"""Frame folders ("rawframes"): one image per frame, ``img_00001.jpg, img_00002.jpg, ...``.

The layout TSN and MMAction2 extract videos into. :class:`FrameFolderReader` has the same
interface as :class:`~deepvideo.io.reader.VideoReader`: frame ``i`` (0-based) is the file
``template.format(start_index + i)``. The frame count is the number of files matching the
template; they must be numbered without gaps from ``start_index`` (a gap is reported with
the missing file's name). Resizing uses OpenCV (``bilinear`` = ``INTER_LINEAR``,
``area`` = ``INTER_AREA``, ``bicubic``, ``nearest``).
"""

from __future__ import annotations

import os
import re
import string
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

from deepvideo.io.errors import VideoError, error_reason
from deepvideo.io.meta import VideoMeta, check_indices, check_interpolation, gather, output_size

_CV2_INTERPOLATION = {"bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "bicubic": cv2.INTER_CUBIC,
                      "nearest": cv2.INTER_NEAREST}


def template_pattern(template: str) -> re.Pattern:
    """A regex matching the file names ``template`` produces; group 1 is the number."""
    parts = list(string.Formatter().parse(template))
    fields = [p for p in parts if p[1] is not None]
    if len(fields) != 1:
        raise ValueError(f"frame template {template!r} must contain exactly one '{{}}' field")
    regex = ""
    for literal, field, _spec, _conv in parts:
        regex += re.escape(literal)
        if field is not None:
            regex += r"(\d+)"
    return re.compile(regex + r"\Z")


def list_frame_numbers(folder: Path, template: str) -> list[int]:
    """Numbers of the files in ``folder`` named exactly as ``template`` formats them, sorted."""
    pattern = template_pattern(template)
    numbers = []
    for name in os.listdir(folder):
        m = pattern.match(name)
        if m and template.format(int(m.group(1))) == name:
            numbers.append(int(m.group(1)))
    return sorted(numbers)


class FrameFolderReader:
    """Random access to a folder of frame images, same interface as ``VideoReader``.

    ``fps`` is not stored in a frame folder; give it to get ``duration`` (else ``None``).
    ``threads > 1`` decodes the images of one call in a thread pool (OpenCV releases the GIL).
    """

    def __init__(self, folder: str | os.PathLike, template: str = "img_{:05d}.jpg", start_index: int = 1,
                 short_side: int | None = None, fps: float | None = None, threads: int = 0,
                 interpolation: str = "bilinear"):
        self.path = self.folder = Path(folder)
        check_interpolation(interpolation)
        self.template, self.start_index = template, start_index
        self.short_side, self.threads, self.interpolation = short_side, int(threads), interpolation
        if not self.folder.is_dir():
            raise VideoError(self.folder, "frame folder not found" if not self.folder.exists()
                             else "not a folder")
        try:
            numbers = list_frame_numbers(self.folder, template)
        except OSError as exc:  # e.g. no permission to list the folder
            raise VideoError(self.folder, f"cannot list the frame files: {error_reason(exc)}") from exc
        if not numbers:
            raise VideoError(self.folder, f"no frame files matching {template!r} "
                                          f"(e.g. {template.format(start_index)})")
        n = len(numbers)
        expected = list(range(start_index, start_index + n))
        if numbers != expected:
            missing = sorted(set(expected) - set(numbers))
            what = (f"numbering starts at {numbers[0]}, expected start_index={start_index}"
                    if numbers[0] != start_index else f"{template.format(missing[0])} is missing")
            raise VideoError(self.folder, f"{n} files match {template!r} but {what}; frames must be "
                                          f"numbered {template.format(start_index)}.. without gaps")
        first = self._load(0)
        height, width = first.shape[:2]
        suffix = Path(template.format(start_index)).suffix.lstrip(".").lower() or "image"
        self.meta = VideoMeta(path=str(self.folder), fps=fps, num_frames=n,
                              duration=n / fps if fps else None, width=width, height=height, codec=suffix,
                              pix_fmt="rgb24", container="frames", bit_rate=None, frame_count="files")
        self.frame_size = output_size(height, width, short_side)

    fps = property(lambda self: self.meta.fps)
    num_frames = property(lambda self: self.meta.num_frames)
    duration = property(lambda self: self.meta.duration)
    width = property(lambda self: self.meta.width)
    height = property(lambda self: self.meta.height)
    codec = property(lambda self: self.meta.codec)

    def __len__(self) -> int:
        return self.meta.num_frames

    def __repr__(self) -> str:
        return (f"FrameFolderReader({str(self.folder)!r}, {self.num_frames} frames, "
                f"{self.width}x{self.height})")

    def __enter__(self) -> FrameFolderReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Nothing is kept open; present for interface parity with ``VideoReader``."""

    def frame_path(self, index: int) -> Path:
        return self.folder / self.template.format(self.start_index + index)

    def _load(self, index: int) -> np.ndarray:
        path = self.frame_path(index)
        try:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        except cv2.error as exc:
            raise VideoError(path, f"frame {index}: not a readable image ({error_reason(exc)})") from exc
        reason = "file missing" if not path.exists() else "not a readable image"
        raise VideoError(path, f"frame {index}: {reason}")

    def _frame(self, index: int) -> np.ndarray:
        image = self._load(index)
        h, w = self.frame_size
        if image.shape[:2] != (h, w):
            if self.short_side is None:
                raise VideoError(self.frame_path(index), f"frame size {image.shape[1]}x{image.shape[0]} "
                                                         f"differs from the first frame's {w}x{h}")
            image = cv2.resize(image, (w, h), interpolation=_CV2_INTERPOLATION[self.interpolation])
        return image

    def get_frames(self, indices) -> torch.Tensor:
        """Frames at ``indices`` (any order, duplicates allowed) as ``uint8 [T,H,W,3]`` RGB."""
        idx = check_indices(self.folder, indices, self.num_frames)
        unique = np.unique(idx).tolist()
        if self.threads > 1 and len(unique) > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                images = list(pool.map(self._frame, unique))
        else:
            images = [self._frame(i) for i in unique]
        return gather(idx, dict(zip(unique, images, strict=True)), self.frame_size)

    def get_frame(self, index: int) -> torch.Tensor:
        return self.get_frames([index])[0]

    def __iter__(self):
        for i in range(self.num_frames):
            yield torch.from_numpy(self._frame(i))
