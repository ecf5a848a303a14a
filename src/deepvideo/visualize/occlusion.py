"""Occlusion sensitivity for video (Zeiler & Fergus, ECCV 2014, with a cube sliding over space
and over time): how much the score of a class drops when a part of the clip is hidden.

A cube of ``size`` pixels by ``frames`` frames (``spacetime``), a ``size`` square through the
whole clip (``space``) or a slab of ``frames`` whole frames (``time``) slides over one stream of a
batch of one (spatial stride ``stride``, temporal stride 1); inside it the input is set to
``fill`` in model units (0: the dataset mean colour for RGB, no motion for flow). The map
holds, at every position the cube covered, the mean over the cubes covering it of
``score(original) - score(occluded)`` (positive: the region supports the class), upsampled to
``[T, H, W]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepvideo.visualize.hooks import frozen, logits_of

MODES = ("space", "time", "spacetime")


def _starts(length: int, window: int, stride: int) -> list[int]:
    if window >= length:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def _cubes(shape: tuple[int, int, int], mode: str, size: int, frames: int, stride: int):
    """Index slices ``(t, y, x)`` of every cube: ``space`` slides a ``size`` square through all
    frames over the frame (stride ``stride``), ``time`` a ``frames``-long slab of whole frames
    over time (stride 1), ``spacetime`` a ``size x size x frames`` cube over both."""
    if mode not in MODES:
        raise ValueError(f"unknown occlusion mode {mode!r}; choose one of {', '.join(MODES)}")
    if size < 1 or frames < 1 or stride < 1:
        raise ValueError(f"size, frames and stride must be >= 1, got {size}, {frames}, {stride}")
    t, h, w = shape
    ct = t if mode == "space" else min(frames, t)
    ch, cw = (h, w) if mode == "time" else (min(size, h), min(size, w))
    for t0 in _starts(t, ct, 1):
        for y0 in _starts(h, ch, stride):
            for x0 in _starts(w, cw, stride):
                yield (slice(t0, t0 + ct), slice(y0, y0 + ch), slice(x0, x0 + cw))


@torch.no_grad()
def occlusion_map(
    model: nn.Module,
    batch: dict,
    stream: str,
    target: int,
    *,
    mode: str = "space",
    size: int = 8,
    frames: int = 2,
    stride: int = 4,
    fill: float = 0.0,
    chunk: int = 16,
    on_progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Score drop map ``[T, H, W]`` of class ``target`` for ``batch[stream]`` ``[1, C, T, H, W]``."""
    x = batch[stream]
    if x.dim() != 5 or x.shape[0] != 1:
        raise ValueError(f"occlusion takes a batch of one clip [1, C, T, H, W], got {tuple(x.shape)}")
    shape = tuple(x.shape[2:])
    cubes = list(_cubes(shape, mode, size, frames, stride))
    total = torch.zeros(shape)
    count = torch.zeros(shape)
    with frozen(model):
        base = float(logits_of(model(batch))[0, target])
        for i in range(0, len(cubes), chunk):
            part = cubes[i : i + chunk]
            xs = x.repeat(len(part), 1, 1, 1, 1)
            for j, (ts, ys, xs_) in enumerate(part):
                xs[j, :, ts, ys, xs_] = fill
            others = {
                k: v.expand(len(part), *v.shape[1:])
                for k, v in batch.items()
                if k != stream and isinstance(v, torch.Tensor) and v.dim() >= 2
            }
            scores = logits_of(model({**others, stream: xs}))[:, target]
            for (ts, ys, xs_), s in zip(part, scores, strict=True):
                total[ts, ys, xs_] += base - float(s)
                count[ts, ys, xs_] += 1
            if on_progress is not None:
                on_progress(len(part))
    return total / count.clamp_min(1)


def cube_count(
    shape: tuple[int, int, int], mode: str = "space", size: int = 8, frames: int = 2, stride: int = 4
) -> int:
    """How many occluded copies :func:`occlusion_map` scores (for a progress bar)."""
    return sum(1 for _ in _cubes(shape, mode, size, frames, stride))
