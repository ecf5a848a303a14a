"""The one error type of :mod:`deepvideo.io`: a video that cannot be opened or decoded.

Decoder and file-system failures (PyAV's ``av.error.*``, ``OSError`` from opening a file,
OpenCV's ``cv2.error``) are re-raised as :class:`VideoError` where :mod:`deepvideo.io` calls
those libraries, so a caller tells a bad video (``VideoError``) from a bug (anything else).
"""

from __future__ import annotations

import os


class VideoError(OSError):
    """A video (file or frame folder) cannot be read; the message names the file and why.

    ``path`` and ``reason`` are kept as attributes so reports (``deepvideo data check``,
    the dataset's skipped-video log) can show them separately. Subclass of ``OSError`` so
    code that already guards file access catches it.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    def __reduce__(self):
        # Exceptions pickle through ``args``; keep both fields so DataLoader workers can re-raise it.
        return (type(self), (self.path, self.reason))


def error_reason(exc: BaseException) -> str:
    """A library error's message for a ``VideoError`` reason: FFmpeg's or the OS's text
    (``strerror``) without the errno prefix and repeated file name, else ``str(exc)``."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip()
