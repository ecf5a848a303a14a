"""Windowed prediction over a long video or a stream: decode once, score windows in batches.

:func:`predict_windows` turns any iterable of frames into ``(window, probabilities)`` pairs
(see :mod:`deepvideo.serve.windows` for the windows and the memory bound);
:func:`predict_long_video` runs it over a file, decoded sequentially once by
:class:`~deepvideo.io.VideoReader` at the scorer's short side, and returns a
:class:`~deepvideo.serve.timeline.Timeline`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from deepvideo.engine.evaluate import check_finite_scores
from deepvideo.engine.metrics import softmax as softmax_np
from deepvideo.io import VideoReader
from deepvideo.serve.timeline import Timeline
from deepvideo.serve.windows import Window, parse_duration, sliding_windows

DEFAULT_WINDOW, DEFAULT_STRIDE = "2s", "1s"


def predict_windows(scorer, frames: Iterable[torch.Tensor], length: int, stride: int, *,
                    batch: int = 4, source: str = "video") -> Iterator[tuple[Window, np.ndarray]]:
    """``(window, probabilities [K])`` for every window of ``frames``, in order.

    ``batch`` windows go through the model together (so at most ``batch`` clips wait).
    """
    pending: list[Window] = []

    def flush():
        logits = scorer.logits([w.clip for w in pending])
        check_finite_scores(logits[:, None], scorer.name, [f"{source} window {w.index}" for w in pending])
        probs = softmax_np(logits)
        out = list(zip(pending, probs, strict=True))
        pending.clear()
        return out

    for window in sliding_windows(frames, scorer.spec, length, stride):
        pending.append(window)
        if len(pending) >= batch:
            yield from flush()
    if pending:
        yield from flush()


def predict_long_video(scorer, video: str | Path, window: str = DEFAULT_WINDOW, stride: str = DEFAULT_STRIDE,
                       *, smooth: int = 3, batch: int = 4, threads: int = 0,
                       on_window: Callable[[int, int], None] | None = None) -> Timeline:
    """The timeline of ``video`` with windows of ``window`` every ``stride`` (``"2s"``, ``"48f"``...).

    ``on_window(frames_done, frames_total)`` is called after each scored window (progress).
    Errors: :class:`~deepvideo.io.errors.VideoError` for an unreadable file, ``ValueError``
    for bad durations.
    """
    reader = VideoReader(video, short_side=scorer.short_side, threads=threads)
    fps = reader.fps or 0.0
    length = parse_duration(window, fps, "--window")
    step = parse_duration(stride, fps, "--stride")
    timeline = Timeline(str(video), scorer.class_names, fps, smooth=smooth)
    total = reader.num_frames
    for win, probs in predict_windows(scorer, iter(reader), length, step, batch=batch, source=str(video)):
        timeline.add(win.start, win.end, probs)
        if on_window is not None:
            on_window(win.end, total)
    reader.close()
    return timeline


def predict_whole_video(scorer, video: str | Path) -> np.ndarray:
    """Probabilities ``[K]`` for a whole video: one clip sampled over all of it by the test
    sampler (random access through the GOP-aware reader, only the sampled frames decoded)."""
    from deepvideo.data.sampling import build_sampler

    with VideoReader(video, short_side=scorer.short_side) as reader:
        sampler = build_sampler(scorer.spec, train=False)
        clip = reader.get_frames(sampler(reader.num_frames)["rgb"][0])
    logits = scorer.logits([clip])
    check_finite_scores(logits[:, None], scorer.name, [str(video)])
    return softmax_np(logits)[0]
