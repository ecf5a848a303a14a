"""MMAction2-style annotation lists: video lists and rawframe (frame-folder) lists.

Video list, one video per line: ``path label`` (``path label [label ...]`` with
``multi_label=True``). Rawframe list: ``dir total_frames label`` or, with ``with_offset=True``,
``dir offset total_frames label``. Labels are 0-based. Paths are joined to ``root`` (default:
the folder of the list file).

Rawframe frame numbering follows MMAction2: frame files are numbered from ``start_index``
(1 for ``img_00001.jpg``) and an offset shifts the first frame, so the record's
``start_index = start_index + offset`` is the file number of the video's first frame and
``meta["offset"]`` keeps the offset itself.

Classes: ``classes`` (a list or a label-map path) or ``num_classes`` enable the range check;
without either, classes are ``"0" .. str(max label)`` and only negative labels are rejected.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from deepvideo.data.formats._common import (
    Issues,
    ParsedIndex,
    PathLike,
    check_label,
    iter_lines,
    join,
    parse_int,
    require_file,
    resolve_classes,
)
from deepvideo.data.record import VideoRecord


def _class_list(classes, num_classes: int | None) -> list[str] | None:
    names = resolve_classes(classes)
    if names is not None and num_classes is not None and num_classes != len(names):
        raise ValueError(f"num_classes={num_classes} disagrees with {len(names)} class names")
    if names is None and num_classes is not None:
        names = [str(i) for i in range(num_classes)]
    return names


def _parse_labels(tokens: list[str], num_classes: int | None) -> tuple[tuple[int, ...] | None, str | None]:
    labels = []
    for token in tokens:
        value = parse_int(token)
        if value is None:
            return None, f"label {token!r} is not an integer"
        reason = check_label(value, num_classes)
        if reason:
            return None, reason
        labels.append(value)
    return tuple(labels), None


def _finish(issues: Issues, records: list[VideoRecord], names: list[str] | None, **meta) -> ParsedIndex:
    if names is None:
        top = -1
        for r in records:
            labels = r.label if isinstance(r.label, tuple) else (r.label,)
            top = max(top, *labels)
        names = [str(i) for i in range(top + 1)]
    return issues.finish(records, names, **meta)


def load_video_list(
    ann_file: PathLike,
    root: PathLike | None = None,
    *,
    classes: Sequence[str] | PathLike | None = None,
    num_classes: int | None = None,
    multi_label: bool = False,
    split: str | None = None,
    check_exists: bool = False,
    strict: bool = True,
) -> ParsedIndex:
    """Records from a video list (``path label`` or ``path label label ...`` with multi_label)."""
    path = require_file(ann_file, "video list")
    root = path.parent if root is None else root
    names = _class_list(classes, num_classes)
    n = None if names is None else len(names)
    issues = Issues(strict)
    records: list[VideoRecord] = []
    for number, text in iter_lines(path, comments=True):
        fields = text.split()
        if len(fields) < 2 or (not multi_label and len(fields) != 2):
            expected = "'path label [label ...]'" if multi_label else "'path label'"
            issues.report(path, number, text, f"expected {expected}, got {len(fields)} field(s)")
            continue
        labels, reason = _parse_labels(fields[1:], n)
        if reason:
            issues.report(path, number, text, reason)
            continue
        record = VideoRecord(
            path=join(root, fields[0]),
            label=labels if multi_label else labels[0],
            split=split,
            source=f"{path}:{number}",
        )
        if check_exists and not os.path.exists(record.path):
            issues.report(path, number, text, f"video not found at {record.path}")
            continue
        records.append(record)
    return _finish(issues, records, names, format="video_list", root=str(root), multi_label=multi_label)


def load_rawframe_list(
    ann_file: PathLike,
    root: PathLike | None = None,
    *,
    with_offset: bool = False,
    multi_label: bool = False,
    start_index: int = 1,
    classes: Sequence[str] | PathLike | None = None,
    num_classes: int | None = None,
    split: str | None = None,
    check_exists: bool = False,
    strict: bool = True,
) -> ParsedIndex:
    """Records (frame folders with ``num_frames`` and ``start_index``) from a rawframe list."""
    path = require_file(ann_file, "rawframe list")
    root = path.parent if root is None else root
    names = _class_list(classes, num_classes)
    n = None if names is None else len(names)
    head = 3 if with_offset else 2  # dir [offset] total_frames
    layout = "dir offset total_frames label" if with_offset else "dir total_frames label"
    issues = Issues(strict)
    records: list[VideoRecord] = []
    for number, text in iter_lines(path, comments=True):
        fields = text.split()
        if len(fields) < head + 1 or (not multi_label and len(fields) != head + 1):
            issues.report(
                path,
                number,
                text,
                f"expected '{layout}'{' [label ...]' if multi_label else ''}, got {len(fields)} field(s)",
            )
            continue
        counts = [parse_int(f) for f in fields[1:head]]
        if any(c is None or c < 0 for c in counts) or counts[-1] == 0:
            issues.report(path, number, text, "offset / total_frames must be integers (total_frames >= 1)")
            continue
        labels, reason = _parse_labels(fields[head:], n)
        if reason:
            issues.report(path, number, text, reason)
            continue
        offset = counts[0] if with_offset else 0
        record = VideoRecord(
            path=join(root, fields[0]),
            label=labels if multi_label else labels[0],
            num_frames=counts[-1],
            start_index=start_index + offset,
            split=split,
            source=f"{path}:{number}",
            meta={"offset": offset} if with_offset else {},
        )
        if check_exists and not os.path.isdir(record.path):
            issues.report(path, number, text, f"frame folder not found at {record.path}")
            continue
        records.append(record)
    return _finish(
        issues,
        records,
        names,
        format="rawframe_list",
        root=str(root),
        multi_label=multi_label,
        with_offset=with_offset,
    )
