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


# Where a generic ``annotations=`` option goes for each format (used by configs and the CLI).
ANNOTATION_OPTION = {
    "ucf101": "annotation_dir",
    "hmdb51": "annotation_dir",
    "kinetics": "csv_path",
    "sthv2": "annotation_file",
    "video_list": "ann_file",
    "rawframe_list": "ann_file",
}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _coerce(name: str, value, annotation: str):
    """Convert a string option (command line ``key=value``) to the parameter's declared type."""
    if not isinstance(value, str):
        return value
    try:
        if annotation.startswith("bool"):
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        if annotation.startswith("int"):
            return int(value)
        if annotation.startswith("float"):
            return float(value)
    except ValueError:
        raise ValueError(f"option {name}={value!r} must be of type {annotation}") from None
    if annotation == "Sequence[str]":
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class FormatOptionError(TypeError):
    """Options a dataset format does not take (a misspelled or missing option)."""


def load_dataset(format: str, **kwargs) -> ParsedIndex:
    """Load annotations with the loader of ``format`` (``-`` and ``_`` are interchangeable).

    ``annotations=`` (or ``ann_file=``) is accepted for every format with an annotation file or
    folder (see ``ANNOTATION_OPTION``); string values (from the command line) are converted to the
    option's type (``split="1"`` -> 1, ``multi_label="true"`` -> True, ``extensions="mp4,avi"``).
    """
    name = format.replace("-", "_").lower()
    if name not in FORMATS:
        raise ValueError(f"unknown dataset format {format!r}; choose one of {sorted(FORMATS)}")
    loader = FORMATS[name]
    params = inspect.signature(loader).parameters
    target = ANNOTATION_OPTION.get(name)
    for alias in ("annotations", "ann_file", "annotation_file"):
        if alias in kwargs and alias not in params and target is not None and target not in kwargs:
            kwargs[target] = kwargs.pop(alias)
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise FormatOptionError(
            f"format {name!r} got unknown option(s) {unknown}; its options are: {', '.join(params)}"
        )
    kwargs = {k: _coerce(k, v, str(params[k].annotation)) for k, v in kwargs.items()}
    try:
        inspect.signature(loader).bind(**kwargs)
    except TypeError as e:
        raise FormatOptionError(f"format {name!r}: {e}; its options are: {', '.join(params)}") from None
    return loader(**kwargs)


__all__ = [
    "ANNOTATION_OPTION",
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
