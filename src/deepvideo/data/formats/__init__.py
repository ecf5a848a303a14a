"""Annotation formats: every loader turns a dataset's annotation files into a ``DatasetIndex``.

``load_dataset(format, **options)`` is the entry point used by configs::

    load_dataset("ucf101", root="data/ucf101", split=1, subset="train")
    load_dataset("video_list", ann_file="train.txt", root="videos", classes="label_map.txt")

Formats (one module each): ``folder``, ``ucf101``, ``hmdb51``, ``kinetics``, ``sthv2``,
``video_list`` and ``rawframe_list`` (MMAction2 lists), ``dynamic_scenes`` (YUP++). Every
record has 0-based labels (a tuple for multi-label lists, ``-1`` for unlabeled test entries)
and ``source`` = ``"file:line"`` of the annotation it came from.

Malformed lines (wrong field count, non-integer label, label out of range, unknown class)
raise :class:`AnnotationError` naming ``file:line`` and the text. With ``strict=False`` they are
skipped with one warning and listed in ``index.skipped`` (the loaders return
:class:`ParsedIndex`, a ``DatasetIndex`` with ``skipped`` and ``meta``). Video files named in
annotations are not checked (too slow for Kinetics) unless ``check_exists=True``, which treats a
missing file as a malformed line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from deepvideo.data.formats._common import (
    AnnotationError,
    ParsedIndex,
    SkippedLine,
    read_label_map,
)
from deepvideo.data.formats.dynamic_scenes import load_dynamic_scenes
from deepvideo.data.formats.folder import load_folder
from deepvideo.data.formats.hmdb51 import load_hmdb51
from deepvideo.data.formats.kinetics import load_kinetics
from deepvideo.data.formats.lists import load_rawframe_list, load_video_list
from deepvideo.data.formats.sthv2 import load_sthv2
from deepvideo.data.formats.ucf101 import load_ucf101

FORMATS: dict[str, Callable[..., ParsedIndex]] = {
    "folder": load_folder,
    "ucf101": load_ucf101,
    "hmdb51": load_hmdb51,
    "kinetics": load_kinetics,
    "sthv2": load_sthv2,
    "video_list": load_video_list,
    "rawframe_list": load_rawframe_list,
    "dynamic_scenes": load_dynamic_scenes,
}


def load_dataset(format: str, **kwargs) -> ParsedIndex:
    """Load annotations with the loader of ``format`` (``-`` and ``_`` are interchangeable)."""
    name = format.replace("-", "_").lower()
    if name not in FORMATS:
        raise ValueError(f"unknown dataset format {format!r}; choose one of {sorted(FORMATS)}")
    loader = FORMATS[name]
    try:
        inspect.signature(loader).bind(**kwargs)
    except TypeError as e:
        options = ", ".join(inspect.signature(loader).parameters)
        raise TypeError(f"format {name!r}: {e}; its options are: {options}") from None
    return loader(**kwargs)


__all__ = [
    "FORMATS",
    "AnnotationError",
    "ParsedIndex",
    "SkippedLine",
    "load_dataset",
    "load_dynamic_scenes",
    "load_folder",
    "load_hmdb51",
    "load_kinetics",
    "load_rawframe_list",
    "load_sthv2",
    "load_ucf101",
    "load_video_list",
    "read_label_map",
]
