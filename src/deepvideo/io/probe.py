"""Video metadata without decoding: :class:`VideoMeta` and :func:`probe`."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class VideoMeta:
    """What a reader knows about a video before decoding any frame.

    ``frame_count`` says where ``num_frames`` comes from: ``"container"`` (the container's own
    frame table, e.g. the mp4 sample table or the AVI index), ``"packets"`` (counted by a
    demux-only pass over the packets when the container stores no count, e.g. mkv/webm),
    or ``"files"`` (frame folders: the image files matching the template).
    """

    path: str
    fps: float | None
    num_frames: int
    duration: float | None
    width: int
    height: int
    codec: str
    pix_fmt: str | None = None
    container: str | None = None
    bit_rate: int | None = None
    frame_count: str = "container"

    def to_dict(self) -> dict:
        return asdict(self)


def probe(path: str | os.PathLike, **kwargs) -> VideoMeta:
    """Metadata of a video file or frame folder (a directory); raises ``VideoError``."""
    from deepvideo.io.reader import open_video

    with open_video(path, **kwargs) as reader:
        return reader.meta
