"""Folder-per-class layout: ``root/<class>/<video>`` (video files and/or frame folders).

Classes are the sorted names of the sub-folders of ``root`` (hidden ones ignored), unless
``classes`` gives the list (then a folder not in it is an error). A file counts as a video
when its extension (case-insensitive) is in ``extensions``. With ``frame_folders=True`` a
sub-folder of a class folder counts as a video when it holds frames named like
``frame_template`` (default ``img_00001.jpg``); its ``num_frames`` is the number of such files
and its ``start_index`` the smallest frame number. Records get ``source`` = the path relative
to ``root``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from deepvideo.data.formats._common import AnnotationError, Issues, ParsedIndex, PathLike, resolve_classes
from deepvideo.data.record import VideoRecord

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ogv")


def frame_pattern(template: str) -> re.Pattern:
    """Regex matching the file names of ``template`` (one ``{...}`` integer field), capturing the number."""
    m = re.fullmatch(r"(.*?)\{[^}]*\}(.*)", template)
    if m is None:
        raise ValueError(f"frame_template {template!r} needs one '{{}}' field for the frame number")
    return re.compile(re.escape(m.group(1)) + r"(\d+)" + re.escape(m.group(2)) + r"\Z")


def count_frames(folder: PathLike, pattern: re.Pattern) -> tuple[int, int]:
    """``(num_frames, first_frame_number)`` of the frame files in ``folder`` (``(0, 0)`` when none)."""
    numbers = [int(m.group(1)) for name in os.listdir(folder) if (m := pattern.match(name))]
    return (len(numbers), min(numbers)) if numbers else (0, 0)


def load_folder(
    root: PathLike,
    *,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    frame_folders: bool = False,
    frame_template: str = "img_{:05d}.jpg",
    classes: Sequence[str] | PathLike | None = None,
    split: str | None = None,
    strict: bool = True,
) -> ParsedIndex:
    """Records of every video (and frame folder) under ``root/<class>/``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    pattern = frame_pattern(frame_template) if frame_folders else None
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = resolve_classes(classes)
    if names is None:
        names = folders
    lookup = {name: i for i, name in enumerate(names)}
    issues = Issues(strict)
    records: list[VideoRecord] = []
    for folder in folders:
        if folder not in lookup:
            issues.report(root / folder, None, folder, "class folder is not in the given class list")
            continue
        label = lookup[folder]
        for entry in sorted(os.scandir(root / folder), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            rel = f"{folder}/{entry.name}"
            if entry.is_file() and os.path.splitext(entry.name)[1].lower() in exts:
                records.append(VideoRecord(path=entry.path, label=label, split=split, source=rel))
            elif pattern is not None and entry.is_dir():
                count, first = count_frames(entry.path, pattern)
                if count:
                    records.append(
                        VideoRecord(
                            path=entry.path,
                            label=label,
                            num_frames=count,
                            start_index=first,
                            split=split,
                            source=rel,
                        )
                    )
    if not names:
        raise AnnotationError(root, None, None, "no class folders found (expected root/<class>/<video>)")
    return issues.finish(records, names, format="folder", root=str(root))
