"""Decoding and writing video (PyAV / FFmpeg), frame folders, probing.

Read: :class:`VideoReader` (files), :class:`FrameFolderReader` (``img_00001.jpg`` folders),
:func:`open_video` (picks one), :func:`probe` (metadata only). Every failure to open or
decode is a :class:`VideoError` naming the file (PyAV, OpenCV and file-system errors are
re-raised as one here). Write: :func:`write_video`, :class:`VideoWriter`,
:func:`write_frame_folder` (atomic: temporary name, then rename).
"""

from deepvideo.io.errors import VideoError, error_reason
from deepvideo.io.frames import FrameFolderReader
from deepvideo.io.meta import VideoMeta
from deepvideo.io.paths import UnsafePathError, relative_to_root, safe_output_path
from deepvideo.io.probe import open_video, probe
from deepvideo.io.reader import VideoReader, open_container
from deepvideo.io.writer import VideoWriter, write_frame_folder, write_video

__all__ = ["FrameFolderReader", "UnsafePathError", "VideoError", "VideoMeta", "VideoReader", "VideoWriter",
           "error_reason", "open_container", "open_video", "probe", "relative_to_root", "safe_output_path",
           "write_frame_folder", "write_video"]
