"""What readers share, below both of them: :class:`VideoMeta` and the index/size helpers.

:mod:`deepvideo.io.reader` (video files) and :mod:`deepvideo.io.frames` (frame folders)
import from here; nothing here imports a reader, so the imports inside ``deepvideo.io``
form a DAG (errors -> meta -> reader, frames -> probe).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from deepvideo.io.errors import VideoError

INTERPOLATIONS = {"bilinear": "BILINEAR", "area": "AREA", "bicubic": "BICUBIC", "nearest": "POINT"}


@dataclass(frozen=True)
class VideoMeta:
    """What a reader knows about a video before decoding any frame.

    ``frame_count`` says where ``num_frames`` comes from: ``"container"`` (the container's own
    frame table, e.g. the mp4 sample table or the AVI index), ``"packets"`` (counted by a
    demux-only pass over the packets when the container stores no count, e.g. mkv/webm),
    or ``"files"`` (frame folders: the image files matching the template).
    """

    path: str
    fps: float | None
    num_frames: int
    duration: float | None
    width: int
    height: int
    codec: str
    pix_fmt: str | None = None
    container: str | None = None
    bit_rate: int | None = None
    frame_count: str = "container"

    def to_dict(self) -> dict:
        return asdict(self)


def check_interpolation(interpolation: str) -> None:
    """``ValueError`` listing the choices unless ``interpolation`` is one of :data:`INTERPOLATIONS`."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}")


def output_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """``(h, w)`` of a ``height x width`` frame scaled so its shorter side is ``short_side``."""
    if short_side is None:
        return height, width
    if short_side <= 0:
        raise ValueError(f"short_side must be positive, got {short_side}")
    if width <= height:
        return max(1, round(height * short_side / width)), short_side
    return short_side, max(1, round(width * short_side / height))


def check_indices(path, indices, num_frames: int, note: str = "") -> np.ndarray:
    """Indices as a flat int64 array; ``VideoError`` naming the file and valid range if any is out."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= num_frames):
        bad = sorted({int(i) for i in idx if i < 0 or i >= num_frames})
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        raise VideoError(path, f"frame index {shown} out of range: valid indices are 0..{num_frames - 1} "
                               f"({num_frames} frames){note}")
    return idx


def gather(idx: np.ndarray, frames: dict[int, np.ndarray], shape: tuple[int, int]) -> torch.Tensor:
    """Stack decoded unique frames into ``uint8 [len(idx),H,W,3]`` following ``idx`` (duplicates ok)."""
    out = torch.empty((idx.size, *shape, 3), dtype=torch.uint8)
    view = out.numpy()
    for position, i in enumerate(idx.tolist()):  # one copy per output frame, no intermediate stack
        view[position] = frames[i]
    return out
