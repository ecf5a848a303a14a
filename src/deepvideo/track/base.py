"""The tracker interface (DESIGN.md, "The seams"): ``initialize(frame, box)``, then
``track(frame) -> TrackResult``.

Frames are RGB ``uint8`` arrays ``[H, W, 3]``; boxes are ``(x, y, w, h)`` in float pixels,
0-based, ``(x, y)`` the top-left corner. A tracker keeps its own state between calls and
never reads files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

Box = tuple[float, float, float, float]


def as_box(box, what: str = "box") -> Box:
    """``box`` as a 4-tuple of finite floats with positive width and height, or a ValueError
    naming ``what``."""
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected 4 numbers x, y, w, h, got {box!r}") from None
    if len(values) != 4:
        raise ValueError(f"{what}: expected 4 numbers x, y, w, h, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what}: not finite: {values}")
    if values[2] <= 0 or values[3] <= 0:
        raise ValueError(f"{what}: width and height must be positive, got {values}")
    return values  # type: ignore[return-value]


def check_frame(frame: np.ndarray) -> np.ndarray:
    """``frame`` if it is an RGB ``uint8 [H, W, 3]`` array, else a ValueError saying what it is."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        dtype = getattr(frame, "dtype", type(frame).__name__)
        raise ValueError(f"frame: expected an RGB uint8 array [H, W, 3], got {dtype} {shape}")
    return frame


@dataclass
class TrackResult:
    """One frame's answer: the box, a confidence (tracker-specific scale, higher is surer;
    NaN when the tracker has none) and anything else the tracker wants to show
    (``extras``: e.g. ``"response"`` map, ``"mask"``)."""

    box: Box
    score: float = float("nan")
    extras: dict = field(default_factory=dict)


@runtime_checkable
class Tracker(Protocol):
    """What every single-object tracker implements."""

    def initialize(self, frame: np.ndarray, box: Box) -> None: ...

    def track(self, frame: np.ndarray) -> TrackResult: ...
