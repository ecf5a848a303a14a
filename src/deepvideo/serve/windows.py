"""Sliding windows over a stream of frames, decoded once, with memory bounded by one window.

A window of ``length`` frames starts every ``stride`` frames: window ``k`` covers frames
``[k * stride, k * stride + length)``. Inside a window the model's test sampler
(:func:`deepvideo.data.sampling.build_sampler`, the same one ``deepvideo test`` and
``deepvideo predict`` use on whole videos) picks the frames the model sees, as if the window
were a short video of ``length`` frames. :class:`WindowBuffer` keeps only those frames, so a
long video never holds more than one window of frames (fewer: only the sampled ones), and
yields each window as soon as its last frame has arrived. A video shorter than one window
gives one window of all its frames; frames after the last full window are not predicted
(they are less than ``stride`` frames).

Durations are given as ``"2s"``, ``"500ms"``, ``"48f"`` (frames) or a bare number of seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from deepvideo.data.sampling import build_sampler
from deepvideo.spec import InputSpec

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|ms|f)?\s*$")


def parse_duration(text: str | float, fps: float, what: str = "duration") -> int:
    """Frames in ``text`` (``"2s"``, ``"500ms"``, ``"48f"``, ``"1.5"`` = seconds) at ``fps``; >= 1."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"{what} must look like 2s, 500ms, 48f or a number of seconds, got {text!r}")
    value, unit = float(m.group(1)), m.group(2) or "s"
    if unit == "f":
        if value != int(value):
            raise ValueError(f"{what} in frames must be a whole number, got {text!r}")
        frames = int(value)
    else:
        if not fps or not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"{what} {text!r} is in seconds but the video has no frame rate; "
                             "give frames (48f)")
        frames = round(value * (0.001 if unit == "ms" else 1.0) * fps)
    if frames < 1:
        raise ValueError(f"{what} {text!r} is less than one frame at {fps:g} fps")
    return frames


@dataclass(frozen=True)
class Window:
    """One window: frames ``[start, end)`` and the sampled clip ``uint8 [T, H, W, 3]``."""

    index: int
    start: int
    end: int
    clip: torch.Tensor


class WindowBuffer:
    """Feed frames one by one (:meth:`push`); complete windows come out in order.

    ``length``/``stride`` in frames; ``spec`` gives the frames sampled inside each window.
    At most ``length`` frames are held before the first window completes; after that only
    the sampled frames of the open windows.
    """

    def __init__(self, spec: InputSpec, length: int, stride: int):
        if length < 1 or stride < 1:
            raise ValueError(f"window length and stride must be >= 1 frame, got {length} and {stride}")
        self.spec, self.length, self.stride = spec, int(length), int(stride)
        self.offsets = self._offsets(self.length)
        self.frames: dict[int, torch.Tensor] = {}
        self.seen = 0
        self.emitted = 0

    def _offsets(self, num_frames: int) -> np.ndarray:
        """Frame offsets (inside a window of ``num_frames``) the model sees, in clip order."""
        sampler = build_sampler(self.spec.replace(modalities=("rgb",), flow_stack=0), train=False)
        return np.asarray(sampler(num_frames)["rgb"][0], dtype=np.int64)

    def _needed(self, i: int) -> bool:
        if i < self.length:
            return True  # the first window keeps everything (a short video needs all its frames)
        first = max(0, -(-(i - self.length + 1) // self.stride))
        wanted = set(self.offsets.tolist())
        return any(i - k * self.stride in wanted for k in range(first, i // self.stride + 1))

    def push(self, frame: torch.Tensor) -> Window | None:
        """Add the next frame; returns the window it completes, if any."""
        i = self.seen
        self.seen += 1
        if self._needed(i):
            self.frames[i] = frame
        start = self.emitted * self.stride
        if i != start + self.length - 1:
            return None
        window = self._window(start, self.offsets + start)
        self.emitted += 1
        keep_from = self.emitted * self.stride
        for j in [j for j in self.frames if j < keep_from]:
            del self.frames[j]
        return window

    def finish(self) -> Window | None:
        """After the last frame: the one window of a video shorter than ``length`` (else None)."""
        if self.emitted or not self.seen:
            return None
        window = self._window(0, self._offsets(self.seen))
        self.emitted = 1
        return window

    def _window(self, start: int, indices: np.ndarray) -> Window:
        clip = torch.stack([self.frames[int(j)] for j in indices])
        return Window(self.emitted, start, start + min(self.length, self.seen - start), clip)

    def held(self) -> int:
        """Frames currently held."""
        return len(self.frames)


def sliding_windows(frames: Iterable[torch.Tensor], spec: InputSpec, length: int,
                    stride: int) -> Iterator[Window]:
    """Windows over ``frames`` (any iterable of ``uint8 [H, W, 3]``), each yielded once complete."""
    buffer = WindowBuffer(spec, length, stride)
    for frame in frames:
        window = buffer.push(frame)
        if window is not None:
            yield window
    last = buffer.finish()
    if last is not None:
        yield last
