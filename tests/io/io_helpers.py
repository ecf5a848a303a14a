"""Helpers of the io tests: tiny synthetic videos and the sequential-decoding reference."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def make_frames(num_frames: int = 40, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """Smoothly moving content (so x264 uses B-frames) with a per-frame marker block."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        frames[t, ..., 0] = (x * 3 + t * 4) % 256
        frames[t, ..., 1] = (y * 4 + t * 2) % 256
        frames[t, ..., 2] = ((x + y) * 2 + t * 6) % 256
        frames[t] = np.clip(frames[t] + rng.integers(0, 6, frames[t].shape), 0, 255)
        frames[t, (t * 3) % (height - 6):(t * 3) % (height - 6) + 6, :6] = 255
    return frames


def write_av(path: Path, frames: np.ndarray, codec: str, pix_fmt: str, options: dict | None = None,
             fps: int = 25, container_options: dict | None = None) -> Path:
    """Encode with plain PyAV (codecs and containers ``write_video`` does not make)."""
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.options = options or {}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_all(path, short_side_size: tuple[int, int] | None = None) -> np.ndarray:
    """Reference: every frame of a plain sequential PyAV decode, as RGB."""
    with av.open(str(path)) as container:
        if short_side_size is None:
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        h, w = short_side_size
        return np.stack([f.reformat(width=w, height=h, format="rgb24", interpolation="BILINEAR").to_ndarray()
                         for f in container.decode(video=0)])


def picture_types(path) -> list[str]:
    with av.open(str(path)) as container:
        # AVPictureType: 1 = I, 2 = P, 3 = B (PyAV returns the plain int here).
        return ["?IPB"[int(f.pict_type)] if int(f.pict_type) < 4 else "?" for f in container.decode(video=0)]
