"""Shared by the serve tests: the tiny run's settings, a colour scorer whose logits are the
clip's mean RGB (predictions known from the pixels), colour videos."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepvideo.spec import InputSpec

TINY_KWARGS = {"width": 8}
TINY_SPEC = {"num_frames": 4, "crop_size": 32, "frame_stride": 1}
CLASSES = ["red", "green", "blue"]


@dataclass
class ColourScorer:
    """Logits = 10 x the clip's mean (R, G, B) in [0, 1]: a red clip is predicted "red"."""

    short_side: int = 16
    spec: InputSpec = field(default_factory=lambda: InputSpec(num_frames=4, crop_size=16))
    class_names: list = field(default_factory=lambda: list(CLASSES))
    name: str = "colour"
    calls: list = field(default_factory=list)

    def logits(self, clips) -> np.ndarray:
        self.calls.append(len(clips))
        return np.stack([10 * c.float().mean(dim=(0, 1, 2)).numpy() / 255 for c in clips])


def colour_frames(seconds_per_colour, fps: int = 10, size: int = 16) -> np.ndarray:
    """uint8 [T, size, size, 3] frames: pure red, green or blue for the given seconds each,
    e.g. ``[("red", 3), ("green", 2)]``."""
    parts = []
    for name, seconds in seconds_per_colour:
        block = np.zeros((int(seconds * fps), size, size, 3), np.uint8)
        block[..., CLASSES.index(name)] = 255
        parts.append(block)
    return np.concatenate(parts)
