"""Shared machinery of the annotation formats: errors, line reading, label maps, strict mode.

Every loader reads its annotation file(s) line by line and reports a malformed line through
:class:`Issues`: with ``strict=True`` (the default) the first problem raises
:class:`AnnotationError` naming ``file:line`` and the offending text; with ``strict=False``
the line is skipped, recorded in :attr:`ParsedIndex.skipped`, and one summary warning is
issued per loader call.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deepvideo.data.record import DatasetIndex, VideoRecord

PathLike = str | os.PathLike


class AnnotationError(ValueError):
    """A malformed annotation; the message names ``file:line``, the reason and the offending text."""

    def __init__(self, path: PathLike, line: int | None, text: str | None, reason: str):
        self.path = str(path)
        self.line = line
        self.text = text
        self.reason = reason
        where = self.path if line is None else f"{self.path}:{line}"
        message = f"{where}: {reason}"
        if text is not None:
            message += f": {text!r}"
        super().__init__(message)

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.path, self.line, self.text, self.reason))


@dataclass(frozen=True)
class SkippedLine:
    """One malformed line skipped under ``strict=False``."""

    source: str  # "file:line"
    text: str
    reason: str


@dataclass
class ParsedIndex(DatasetIndex):
    """A :class:`DatasetIndex` plus what the loader skipped and format facts (root, split, ...)."""

    skipped: list[SkippedLine] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


class Issues:
    """Collects malformed lines: raises in strict mode, records and warns otherwise."""

    def __init__(self, strict: bool = True):
        self.strict = strict
        self.skipped: list[SkippedLine] = []

    def report(self, path: PathLike, line: int | None, text: str | None, reason: str) -> None:
        error = AnnotationError(path, line, text, reason)
        if self.strict:
            raise error
        where = str(path) if line is None else f"{path}:{line}"
        self.skipped.append(SkippedLine(where, text or "", reason))

    def finish(self, records: list[VideoRecord], classes: Sequence[str], **meta) -> ParsedIndex:
        if self.skipped:
            first = self.skipped[0]
            warnings.warn(
                f"skipped {len(self.skipped)} malformed annotation line(s) (strict=False); first: "
                f"{first.source}: {first.reason}: {first.text!r}; see index.skipped for all",
                stacklevel=3,
            )
        return ParsedIndex(records=records, classes=list(classes), skipped=list(self.skipped), meta=meta)


def require_file(path: PathLike, what: str) -> Path:
    """Return ``path`` as a Path, or raise FileNotFoundError saying which annotation is missing."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: {what} not found; check the dataset root / annotation path")
    return p


def iter_lines(path: PathLike, comments: bool = False) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, stripped_text)`` for non-blank lines (1-based numbers).

    With ``comments=True`` lines starting with ``#`` are skipped too.
    """
    with open(path, encoding="utf-8-sig") as f:
        for number, raw in enumerate(f, start=1):
            text = raw.strip()
            if text and not (comments and text.startswith("#")):
                yield number, text


def parse_int(token: str) -> int | None:
    """``int(token)`` or None when the token is not an integer."""
    try:
        return int(token)
    except ValueError:
        return None


_INDEXED_LINE = re.compile(r"^(-?\d+)\s+(\S.*)$")


def read_label_map(path: PathLike) -> list[str]:
    """Class names in label order from a label-map file.

    Accepted layouts: one class name per line (line order = label; MMAction2 ``*_label_map.txt``);
    ``"<index> <name>"`` on every line (UCF101 ``classInd.txt``; 0- or 1-based, must be contiguous,
    sorted by index); a ``.json`` object ``{"name": "index"}`` (Something-Something v2 labels) or
    a JSON list of names. Blank lines are ignored; duplicate names or indices raise
    :class:`AnnotationError` naming the line.
    """
    p = require_file(path, "label map")
    if p.suffix.lower() == ".json":
        return _read_json_label_map(p)
    lines = list(iter_lines(p))
    if not lines:
        raise AnnotationError(p, None, None, "label map is empty")
    matches = [_INDEXED_LINE.match(text) for _, text in lines]
    if all(matches):
        by_index: dict[int, tuple[str, int]] = {}
        for (number, text), m in zip(lines, matches, strict=True):
            index = int(m.group(1))
            if index in by_index:
                raise AnnotationError(p, number, text, f"duplicate class index {index}")
            by_index[index] = (m.group(2).strip(), number)
        ordered = sorted(by_index)
        base = ordered[0]
        if base not in (0, 1) or ordered != list(range(base, base + len(ordered))):
            got = f"{ordered[:3]}...{ordered[-1]}"
            raise AnnotationError(p, None, None, f"class indices must be contiguous from 0 or 1, got {got}")
        names = [by_index[i][0] for i in ordered]
        numbered = [by_index[i][1] for i in ordered]
    else:
        names = [text for _, text in lines]
        numbered = [n for n, _ in lines]
    seen: dict[str, int] = {}
    for name, number in zip(names, numbered, strict=True):
        if name in seen:
            raise AnnotationError(p, number, name, f"duplicate class name (first on line {seen[name]})")
        seen[name] = number
    return names


def _read_json_label_map(p: Path) -> list[str]:
    try:
        data = json.loads(p.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise AnnotationError(p, e.lineno, None, f"invalid JSON ({e.msg})") from None
    if isinstance(data, list):
        names = [str(x) for x in data]
    elif isinstance(data, dict):
        by_index: dict[int, str] = {}
        for name, value in data.items():
            index = parse_int(str(value))
            if index is None:
                raise AnnotationError(p, None, f"{name}: {value}", "class index is not an integer")
            if index in by_index:
                raise AnnotationError(p, None, f"{name}: {value}", f"duplicate class index {index}")
            by_index[index] = name
        if sorted(by_index) != list(range(len(by_index))):
            raise AnnotationError(p, None, None, "class indices must be contiguous from 0")
        names = [by_index[i] for i in range(len(by_index))]
    else:
        raise AnnotationError(p, None, None, "expected a JSON object {name: index} or a list of names")
    if len(set(names)) != len(names):
        raise AnnotationError(p, None, None, "duplicate class names")
    return names


def resolve_classes(classes: Sequence[str] | PathLike | None) -> list[str] | None:
    """Class names from a list, a label-map path, or None (the loader then derives them)."""
    if classes is None:
        return None
    if isinstance(classes, (str, os.PathLike)):
        return read_label_map(classes)
    return [str(c) for c in classes]


def check_label(label: int, num_classes: int | None) -> str | None:
    """Reason string when ``label`` is out of ``[0, num_classes)``, else None."""
    if label < 0 or (num_classes is not None and label >= num_classes):
        bound = "" if num_classes is None else f" (expected 0..{num_classes - 1})"
        return f"label {label} out of range{bound}"
    return None


CAMERA_MARKERS = {
    "camera_static": "static",
    "camera_stationary": "static",
    "static": "static",
    "camera_moving": "moving",
    "moving": "moving",
}


def camera_from_path(rel_path: str) -> str | None:
    """``"static"`` / ``"moving"`` when a folder of ``rel_path`` is a YUP++ camera marker, else None."""
    for part in Path(rel_path).parts[:-1]:
        camera = CAMERA_MARKERS.get(part.lower())
        if camera is not None:
            return camera
    return None


def join(root: PathLike | None, rel: str) -> str:
    """``root/rel`` as a string (``rel`` unchanged when root is None or rel is absolute)."""
    if root is None or os.path.isabs(rel):
        return rel
    return os.path.join(os.fspath(root), rel)
