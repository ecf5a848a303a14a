"""Decoding and writing video (PyAV / FFmpeg), frame folders, probing."""

from deepvideo.io.paths import UnsafePathError, relative_to_root, safe_output_path
from deepvideo.io.writer import write_frame_folder, write_video

__all__ = ["UnsafePathError", "relative_to_root", "safe_output_path", "write_frame_folder",
           "write_video"]
