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


def write_video(path: str | os.PathLike, frames, fps: float = 25.0, *, crf: int = 18,
                gop: int | None = None, preset: str = "veryfast", threads: int = 0) -> Path:
    """Write RGB frames ``uint8 [T,H,W,3]`` as an H.264 mp4 (yuv420p).

    Odd widths or heights are padded by one pixel (yuv420p needs even sizes). ``gop`` sets
    the keyframe interval; a small one makes random access cheap.
    """
    frames = _as_numpy(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.mp4")
    try:
        with av.open(str(tmp), mode="w") as container:
            rate = round(fps) if abs(fps - round(fps)) < 1e-6 else fps
            from fractions import Fraction

            stream = container.add_stream("libx264", rate=Fraction(rate).limit_denominator(1001))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            options = {"crf": str(crf), "preset": preset}
            if gop is not None:
                options.update({"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"})
            stream.options = options
            stream.codec_context.thread_count = threads
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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
        for i, frame in enumerate(frames):
            ok = cv2.imwrite(str(tmp / template.format(start_index + i)),
                             cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                             [cv2.IMWRITE_JPEG_QUALITY, quality])
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
