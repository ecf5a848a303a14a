"""Rolling-window prediction on a live source (RTSP / HTTP / file URL / webcam) through PyAV.

:func:`stream_frames` opens the source with FFmpeg (``/dev/videoN`` through ``v4l2``) and yields
RGB frames resized to the scorer's short side as they are decoded; :func:`stream_predictions`
feeds them to :func:`~deepvideo.serve.longvideo.predict_windows` one window at a time (no
batching: a prediction comes out as soon as its window is complete). Closing the generator
(e.g. on Ctrl-C) closes the source.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import av
import torch

from deepvideo.io.errors import VideoError, error_reason
from deepvideo.io.meta import output_size
from deepvideo.serve.longvideo import predict_windows
from deepvideo.serve.timeline import top_k
from deepvideo.serve.windows import parse_duration


def open_source(source: str, timeout_s: float = 10.0):
    """``av.open`` on a URL, file or camera device; a :class:`VideoError` naming it on failure."""
    options, fmt = {}, None
    if source.startswith("/dev/video"):
        fmt = "v4l2"
    if source.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = "tcp"
    try:
        container = av.open(source, mode="r", format=fmt, options=options, timeout=timeout_s,
                            metadata_errors="ignore")
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(source, f"cannot open the stream: {error_reason(exc)}") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(source, "has no video stream")
    return container


def stream_frames(container, short_side: int) -> Iterator[torch.Tensor]:
    """Decoded frames ``uint8 [H, W, 3]`` (short side ``short_side``) of the first video stream."""
    stream = container.streams.video[0]
    try:
        for frame in container.decode(stream):
            h, w = output_size(frame.height, frame.width, short_side)
            yield torch.from_numpy(frame.to_ndarray(format="rgb24", width=w, height=h))
    except av.error.FFmpegError as exc:
        raise VideoError(str(container.name), f"decoding failed: {error_reason(exc)}") from exc


def stream_rate(container) -> float:
    """Frames per second of the first video stream (0 when unknown)."""
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def stream_predictions(scorer, source: str, window: str = "2s", stride: str = "1s", k: int = 5,
                       count: int | None = None) -> Iterator[dict]:
    """``{"window", "start", "end", "top"}`` per window as frames arrive; stops after ``count``."""
    container = open_source(source)
    try:
        fps = stream_rate(container)
        length = parse_duration(window, fps, "--window")
        step = parse_duration(stride, fps, "--stride")
        frames = stream_frames(container, scorer.short_side)
        windows = predict_windows(scorer, frames, length, step, batch=1, source=source)
        for n, (win, probs) in enumerate(windows):
            yield {"source": source, "window": win.index, "start": _seconds(win.start, fps),
                   "end": _seconds(win.end, fps), "top": top_k(probs, scorer.class_names, k)}
            if count is not None and n + 1 >= count:
                return
    finally:
        container.close()


def _seconds(frame: int, fps: float) -> float:
    return round(frame / fps, 4) if fps else float(frame)


def post_json(url: str, doc: dict, timeout_s: float = 5.0) -> int:
    """POST ``doc`` as JSON to ``url``; returns the HTTP status (raises ``OSError`` on failure)."""
    request = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (the user's URL)
        return response.status
