"""A video that decodes without an exception although some pictures are garbage (tests' helper).

H.264, 30 frames of 64x96, a keyframe every 5 frames, no B-frames. The coded data of frames
``DAMAGED`` (10..14, one whole group of pictures) is overwritten with random bytes from a
third of each packet onwards: the slice headers survive, so FFmpeg logs "error while decoding
MB ..." for some of these pictures and conceals the damage instead of failing. The next
keyframe (frame 15) ends the damage.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

NUM_FRAMES = 30
DAMAGED = range(10, 15)


def _frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:96]
    frames = np.empty((NUM_FRAMES, 64, 96, 3), np.uint8)
    for t in range(NUM_FRAMES):
        frames[t, ..., 0] = (x * 3 + t * 4) % 256
        frames[t, ..., 1] = (y * 4 + t * 2) % 256
        frames[t, ..., 2] = ((x + y) * 2 + t * 6) % 256
        frames[t] = np.clip(frames[t] + rng.integers(0, 6, frames[t].shape), 0, 255)
    return frames


def write_intact_video(path: Path) -> Path:
    """The undamaged original."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        # one encoder thread: the same bytes on every call, however busy the machine
        stream.options = {"g": "5", "keyint_min": "5", "sc_threshold": "0", "bf": "0", "threads": "1"}
        for frame in _frames():
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_damaged_video(path: Path, intact: Path | None = None) -> Path:
    """A copy of ``intact`` (default: :func:`write_intact_video`), then garbage over the coded
    data of frames ``DAMAGED``."""
    if intact is None:
        write_intact_video(path)
    else:
        path.write_bytes(intact.read_bytes())
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    for pos, size in packets[DAMAGED.start:DAMAGED.stop]:
        start, end = pos + size // 3, pos + size - 1
        data[start:end] = rng.integers(0, 256, end - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path
