"""Showing optimised inputs and heat maps: frames, flow codings, mp4 / GIF / PNG grid, a report.

Flow is shown (thesis ch. 6) as ``mag`` (R = u, G = v, B = magnitude), the Middlebury colour
``wheel`` or ``uv`` (u | v grayscale), each min-max scaled over the whole sequence (the codings
of :mod:`deepvideo.flow.colour`); RGB inputs as frames. Streams of one unit are shown side by
side; a grid has one row per unit and one column per frame. Every file is written atomically.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from deepvideo.flow.colour import CODINGS, colour_code
from deepvideo.io.atomic import atomic_write_bytes, atomic_write_text
from deepvideo.io.writer import write_video

FORMATS = ("mp4", "gif", "png")


def flow_frames(flow: torch.Tensor | np.ndarray, coding: str = "mag") -> np.ndarray:
    """``flow [T, 2, H, W]`` (px) -> ``uint8 [T, H, W', 3]`` in ``coding`` (scaled over the sequence)."""
    if coding not in CODINGS:
        raise ValueError(f"unknown flow coding {coding!r}; choose one of {', '.join(CODINGS)}")
    return colour_code(flow, coding)


def side_by_side(*videos: np.ndarray, gap: int = 2) -> np.ndarray:
    """Videos ``uint8 [T, H, W_i, 3]`` of equal T and H next to each other, white gaps between."""
    if len({v.shape[:2] for v in videos}) != 1:
        raise ValueError(
            f"videos to show side by side need equal frames and height, got {[v.shape for v in videos]}"
        )
    t, h = videos[0].shape[:2]
    spacer = np.full((t, h, gap, 3), 255, np.uint8)
    parts = []
    for i, v in enumerate(videos):
        parts += [spacer, v] if i else [v]
    return np.concatenate(parts, axis=2)


def grid(rows: Sequence[np.ndarray], gap: int = 2) -> np.ndarray:
    """One image ``uint8 [H', W', 3]``: row ``r`` shows the frames of ``rows[r]`` ``[T, H, W, 3]``
    left to right (rows of fewer frames are padded white)."""
    if not rows:
        raise ValueError("a grid needs at least one row")
    h = max(r.shape[1] for r in rows)
    w = max(r.shape[2] for r in rows)
    cols = max(r.shape[0] for r in rows)
    out = np.full((len(rows) * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, frame in enumerate(row):
            y, x = i * (h + gap), j * (w + gap)
            out[y : y + frame.shape[0], x : x + frame.shape[1]] = frame
    return out


def enlarge(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of ``[..., H, W, 3]`` by an integer ``factor`` (small inputs)."""
    if factor <= 1:
        return frames
    return frames.repeat(factor, axis=-3).repeat(factor, axis=-2)


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_png(path: str | Path, image: np.ndarray) -> Path:
    return atomic_write_bytes(path, png_bytes(image))


def write_gif(path: str | Path, frames: np.ndarray, fps: float = 8.0) -> Path:
    """An endlessly looping GIF of ``uint8 [T, H, W, 3]``."""
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    buf = io.BytesIO()
    images[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        loop=0,
        duration=max(20, int(round(1000 / fps))),
    )
    return atomic_write_bytes(path, buf.getvalue())


def write_clip(
    stem: str | Path, frames: np.ndarray, formats: Sequence[str] = FORMATS, fps: float = 8.0
) -> list[Path]:
    """``frames`` as ``<stem>.mp4`` / ``.gif`` / ``.png`` (the frames in one row)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown output format(s) {unknown}; choose from {', '.join(FORMATS)}")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        if fmt == "mp4":
            write_video(path, frames, fps=fps)
        elif fmt == "gif":
            write_gif(path, frames, fps)
        else:
            write_png(path, grid([frames]))
        written.append(path)
    return written


def overlay(frames: np.ndarray, heat: np.ndarray, strength: float = 0.5) -> np.ndarray:
    """Frames ``uint8 [T, H, W, 3]`` blended with ``heat [T, H, W]`` in ``[0, 1]`` (jet-like colours)."""
    h = np.clip(heat, 0, 1)[..., None]
    colour = (
        np.concatenate(
            [
                np.clip(1.5 - np.abs(4 * h - 3), 0, 1),
                np.clip(1.5 - np.abs(4 * h - 2), 0, 1),
                np.clip(1.5 - np.abs(4 * h - 1), 0, 1),
            ],
            -1,
        )
        * 255
    )
    return np.clip((1 - strength) * frames + strength * colour, 0, 255).astype(np.uint8)


def write_report(folder: str | Path, title: str, lines: Sequence[str], images: Sequence[str] = ()) -> Path:
    """``report.md`` in ``folder``: a title, text lines, then the images (paths relative to it)."""
    body = [f"# {title}", "", *lines, ""]
    body += [f"![{Path(p).stem}]({p})" for p in images]
    return atomic_write_text(Path(folder) / "report.md", "\n".join(body) + "\n")
