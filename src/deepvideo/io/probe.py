"""Any video source, file or frame folder: :func:`open_video` picks the reader, :func:`probe`
reads the metadata without decoding.

Above both readers (:mod:`deepvideo.io.reader`, :mod:`deepvideo.io.frames`), which do not
import this module.
"""

from __future__ import annotations

import os
from pathlib import Path

from deepvideo.io.frames import FrameFolderReader
from deepvideo.io.meta import VideoMeta
from deepvideo.io.reader import VideoReader


def open_video(path: str | os.PathLike, short_side: int | None = None, threads: int = 0,
               interpolation: str = "bilinear", template: str = "img_{:05d}.jpg", start_index: int = 1,
               fps: float | None = None, report_damage: bool = False) -> VideoReader | FrameFolderReader:
    """A :class:`VideoReader` for a file, a :class:`FrameFolderReader` for a folder.

    ``template``, ``start_index`` and ``fps`` only apply to frame folders (a video file knows
    its own frame rate); ``report_damage`` only to files (:class:`VideoReader`: decoder error
    reports collected in ``.damage``).
    """
    if Path(path).is_dir():
        return FrameFolderReader(path, template=template, start_index=start_index, short_side=short_side,
                                 fps=fps, threads=threads, interpolation=interpolation)
    return VideoReader(path, short_side=short_side, threads=threads, interpolation=interpolation,
                       report_damage=report_damage)


def probe(path: str | os.PathLike, **kwargs) -> VideoMeta:
    """Metadata of a video file or frame folder (a directory); raises ``VideoError``.

    ``kwargs`` go to :func:`open_video` (``template``, ``start_index``, ``fps`` for folders).
    """
    with open_video(path, **kwargs) as reader:
        return reader.meta
