"""Writing video: H.264 mp4 through PyAV (FFmpeg) and JPEG frame folders.

Both writers write to a temporary name and rename when done, so an interrupted write never
leaves a half-written output behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np
import torch


def _as_numpy(frames) -> np.ndarray:
    if isinstance(frames, torch.Tensor):
        frames = frames.cpu().numpy()
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [T,H,W,3], got {frames.dtype} {frames.shape}")
    return frames


class VideoWriter:
    """Stream RGB frames into an H.264 mp4 (yuv420p), atomically.

    ``with VideoWriter(path, fps=25, gop=16) as w: w.write(frames)`` — ``frames`` is one
    ``uint8 [H,W,3]`` frame or a batch ``[T,H,W,3]``. Frames go to a temporary file next to
    ``path`` that is renamed to ``path`` only when the ``with`` block ends without error;
    on error it is deleted. Odd widths or heights are padded by one pixel (yuv420p needs even
    sizes). ``gop`` fixes the keyframe interval (no scene-cut keyframes), which bounds the
    cost of a random access to ``gop`` decoded frames.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 25.0, *, crf: int = 18, gop: int | None = None,
                 preset: str = "veryfast", threads: int = 0):
        self.path = Path(path)
        self.fps, self.crf, self.gop, self.preset, self.threads = fps, crf, gop, preset, threads
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}.mp4")
        self._container = None
        self._stream = None
        self.frames_written = 0

    def __enter__(self) -> VideoWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.tmp), mode="w")
        return self

    def _add_stream(self, height: int, width: int) -> None:
        from fractions import Fraction

        rate = round(self.fps) if abs(self.fps - round(self.fps)) < 1e-6 else self.fps
        stream = self._container.add_stream("libx264", rate=Fraction(rate).limit_denominator(1001))
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        options = {"crf": str(self.crf), "preset": self.preset}
        if self.gop is not None:
            options.update({"g": str(self.gop), "keyint_min": str(self.gop), "sc_threshold": "0"})
        stream.options = options
        stream.codec_context.thread_count = self.threads
        self._stream = stream

    def write(self, frames) -> None:
        if self._container is None:
            raise RuntimeError("VideoWriter.write() outside its 'with' block")
        frames = np.asarray(frames.cpu().numpy() if isinstance(frames, torch.Tensor) else frames)
        if frames.ndim == 3:
            frames = frames[None]
        frames = _as_numpy(frames)
        t, h, w, _ = frames.shape
        if self._stream is None:
            self._add_stream(h, w)
            self.size = (h, w)
        elif (h, w) != self.size:
            raise ValueError(f"{self.path}: frame size {w}x{h} differs from the first frame's "
                             f"{self.size[1]}x{self.size[0]}")
        if h % 2 or w % 2:
            frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        for frame in frames:
            for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                self._container.mux(packet)
        self.frames_written += t

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self._stream is None:
                    raise ValueError(f"{self.path}: no frames were written")
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
            self._container = None
            if exc_type is None:
                os.replace(self.tmp, self.path)
        finally:
            if self._container is not None:
                self._container.close()
            self.tmp.unlink(missing_ok=True)


def write_video(path: str | os.PathLike, frames, fps: float = 25.0, *, crf: int = 18,
                gop: int | None = None, preset: str = "veryfast", threads: int = 0) -> Path:
    """Write RGB frames ``uint8 [T,H,W,3]`` as an H.264 mp4 (yuv420p), atomically.

    Odd widths or heights are padded by one pixel (yuv420p needs even sizes). ``gop`` sets
    the keyframe interval; a small one makes random access cheap.
    """
    frames = _as_numpy(frames)
    with VideoWriter(path, fps, crf=crf, gop=gop, preset=preset, threads=threads) as writer:
        writer.write(frames)
    return Path(path)


def write_frame_folder(folder: str | os.PathLike, frames, template: str = "img_{:05d}.jpg",
                       start_index: int = 1, quality: int = 95) -> Path:
    """Write RGB frames as JPEG files ``img_00001.jpg, ...`` into ``folder`` atomically.

    The frames are written into a temporary sibling folder which is renamed at the end.
    """
    frames = _as_numpy(frames)
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        suffix = Path(template.format(start_index)).suffix.lower()
        params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix in (".jpg", ".jpeg") else []
        for i, frame in enumerate(frames):
            ok = cv2.imwrite(str(tmp / template.format(start_index + i)),
                             cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
            if not ok:
                raise OSError(f"could not write frame {i} to {tmp}")
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return folder
