"""The AVA annotation formats (Gu et al., "AVA: A Video Dataset of Spatio-temporally Localized
Atomic Visual Actions", CVPR 2018; the files of the AVA v2.x release).

* ``ava_{train,val}_v2.x.csv``: one row per (person box, action) of a keyframe:
  ``video_id, timestamp, x1, y1, x2, y2, action_id, person_id``. The timestamp is the keyframe's
  time in whole seconds (keyframes at 1 fps, written with four digits, e.g. ``0902``); the box
  is normalised to ``[0, 1]`` (written with three decimals). Detections use the same layout
  with a score in place of the person id (``video_id, timestamp, x1, y1, x2, y2, action_id,
  score``), the form the official evaluation reads.
* ``ava_{train,val}_excluded_timestamps_v2.x.csv``: ``video_id, timestamp`` rows of keyframes
  left out of training and evaluation.
* ``ava_action_list_v2.x.pbtxt``: ``label { name: "..." label_id: N label_type: ... }`` or
  ``item { name: "..." id: N }`` blocks (the 60-class list of the evaluation uses the second);
  a text list ``N: name`` per line is read too.
* Person proposals (a person detector's boxes per keyframe): CSV ``video_id, timestamp, x1, y1,
  x2, y2[, score]``, JSON ``{"video_id,timestamp": [[x1, y1, x2, y2, score], ...]}`` or an npz
  with one ``[n, 5]`` array per ``"video_id,timestamp"`` key (no pickle).

Every malformed line is an :class:`AvaFormatError` naming the file and the line.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepvideo.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text

TIMESTAMP_DIGITS = 4
BOX_DECIMALS = 3


class AvaFormatError(ValueError):
    """A malformed AVA file; the message names the file and the line."""


@dataclass(frozen=True)
class AvaBox:
    """One row: a person box of a keyframe with one action (``action`` None in a box-only row).
    ``person`` is the person id of ground truth; ``score`` that of a detection."""

    video: str
    timestamp: int
    box: tuple[float, float, float, float]
    action: int | None = None
    person: int | None = None
    score: float | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.video, self.timestamp)


def _fail(path, line: int, what: str) -> AvaFormatError:
    return AvaFormatError(f"{path}:{line}: {what}")


def _rows(path: str | Path):
    """(line number, fields) of a CSV file, blank lines skipped; a missing file says so."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise AvaFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if fields and any(f.strip() for f in fields):
            yield number, [f.strip() for f in fields]


def _int(path, line: int, value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _fail(path, line, f"{what} must be an integer, got {value!r}") from None


def _box(path, line: int, values: list[str], normalised: bool = True) -> tuple[float, float, float, float]:
    try:
        box = tuple(float(v) for v in values)
    except ValueError:
        raise _fail(path, line, f"box coordinates must be numbers, got {values}") from None
    x1, y1, x2, y2 = box
    if not all(np.isfinite(box)) or x2 < x1 or y2 < y1:
        raise _fail(path, line, f"box must be finite with x1 <= x2 and y1 <= y2, got {values}")
    if normalised and (min(box) < 0 or max(box) > 1):
        raise _fail(path, line, f"box must be normalised to [0, 1], got {values}")
    return box  # type: ignore[return-value]


def read_ava_csv(path: str | Path, detections: bool = False) -> list[AvaBox]:
    """Rows of an AVA ground-truth CSV (7 or 8 columns), or of a detection CSV (8 columns,
    the last a score) when ``detections``."""
    out = []
    for line, f in _rows(path):
        if len(f) not in ((8,) if detections else (6, 7, 8)):
            want = "8 (video, timestamp, x1, y1, x2, y2, action, score)" if detections else \
                "6 to 8 (video, timestamp, x1, y1, x2, y2[, action[, person]])"
            raise _fail(path, line, f"expected {want} columns, got {len(f)}")
        if not f[0]:
            raise _fail(path, line, "empty video id")
        action = _int(path, line, f[6], "action id") if len(f) > 6 and f[6] else None
        person = score = None
        if detections:
            try:
                score = float(f[7])
            except ValueError:
                raise _fail(path, line, f"score must be a number, got {f[7]!r}") from None
        elif len(f) > 7 and f[7]:
            person = _int(path, line, f[7], "person id")
        out.append(AvaBox(f[0], _int(path, line, f[1], "timestamp"), _box(path, line, f[2:6]),
                          action, person, score))
    return out


def _video_field(video: str) -> str:
    if not video or any(c in video for c in ',\n"'):
        raise ValueError(f"video id {video!r} cannot be written to an AVA CSV (empty, or a comma, "
                         "quote or newline in it)")
    return video


def format_row(row: AvaBox) -> str:
    """One CSV line in the release's layout (four-digit timestamp, three-decimal box)."""
    fields = [_video_field(row.video), f"{row.timestamp:0{TIMESTAMP_DIGITS}d}"]
    fields += [f"{v:.{BOX_DECIMALS}f}" for v in row.box]
    if row.score is not None:
        fields += ["" if row.action is None else str(row.action), f"{row.score:.6g}"]
    elif row.action is not None or row.person is not None:
        fields += ["" if row.action is None else str(row.action)]
        if row.person is not None:
            fields.append(str(row.person))
    return ",".join(fields)


def write_ava_csv(path: str | Path, rows) -> Path:
    """Write rows (ground truth, or detections when they carry scores) atomically."""
    return atomic_write_text(path, "".join(format_row(r) + "\n" for r in rows))


def read_excluded(path: str | Path) -> set[tuple[str, int]]:
    """The ``(video, timestamp)`` keyframes an excluded-timestamps CSV lists."""
    out = set()
    for line, f in _rows(path):
        if len(f) != 2 or not f[0]:
            raise _fail(path, line, f"expected 2 columns (video, timestamp), got {f}")
        out.add((f[0], _int(path, line, f[1], "timestamp")))
    return out


def write_excluded(path: str | Path, keys) -> Path:
    return atomic_write_text(path, "".join(f"{_video_field(v)},{t:0{TIMESTAMP_DIGITS}d}\n"
                                           for v, t in keys))


_PB_FIELD = re.compile(r'^\s*(\w+)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*$')


def read_action_list(path: str | Path) -> dict[int, str]:
    """``{action id: name}`` in file order from a pbtxt (``label``/``item`` blocks) or a text
    list (``id: name`` per line)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise AvaFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if any(re.match(r"^\s*(label|item)\s*\{", ln) for ln in lines):
        return _read_pbtxt(path, lines)
    out: dict[int, str] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        ident, sep, name = text.partition(":")
        if not sep or not name.strip():
            raise _fail(path, number, f"expected 'id: name', got {text!r}")
        out[_int(path, number, ident.strip(), "action id")] = name.strip()
    return out


def _read_pbtxt(path: Path, lines: list[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    block: dict[str, str] | None = None
    start = 0
    for number, text in enumerate(lines, start=1):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if re.match(r"^(label|item)\s*\{$", stripped):
            if block is not None:
                raise _fail(path, number, "a block opens inside another (missing '}')")
            block, start = {}, number
        elif stripped == "}":
            if block is None:
                raise _fail(path, number, "'}' without an open block")
            ident = block.get("label_id", block.get("id"))
            if ident is None or "name" not in block:
                raise _fail(path, start, "a block needs a name and an id (or label_id)")
            out[_int(path, start, ident, "action id")] = block["name"]
            block = None
        else:
            m = _PB_FIELD.match(text)
            if block is None or m is None:
                raise _fail(path, number, "expected 'key: value' inside a label/item block, "
                                          f"got {stripped!r}")
            block[m.group(1)] = m.group(2) if m.group(2) is not None else m.group(3)
    if block is not None:
        raise _fail(path, start, "block not closed")
    return out


def write_action_list(path: str | Path, actions: dict[int, str], style: str = "item") -> Path:
    """Write ``{id: name}`` as pbtxt ``item`` blocks (``style="item"``), ``label`` blocks with
    ``label_id`` (``"label"``), or a text list (``"txt"``)."""
    if style == "txt":
        return atomic_write_text(path, "".join(f"{i}: {n}\n" for i, n in actions.items()))
    if style not in ("item", "label"):
        raise ValueError(f"style must be 'item', 'label' or 'txt', got {style!r}")
    key = "id" if style == "item" else "label_id"
    return atomic_write_text(path, "".join(f'{style} {{\n  name: "{n}"\n  {key}: {i}\n}}\n'
                                           for i, n in actions.items()))


def group_by_keyframe(rows) -> dict[tuple[str, int], list[AvaBox]]:
    out: dict[tuple[str, int], list[AvaBox]] = defaultdict(list)
    for row in rows:
        out[row.key].append(row)
    return dict(out)


def keyframe_people(rows) -> dict[tuple[str, int], list[tuple[tuple[float, ...], set[int], int | None]]]:
    """Per keyframe, its people: ``(box, {action ids}, person id)``; rows of one box (same
    person id and coordinates) are merged into one multi-label entry."""
    out: dict = {}
    for key, group in group_by_keyframe(rows).items():
        people: dict = {}
        for row in group:
            entry = people.setdefault((row.person, row.box), (row.box, set(), row.person))
            if row.action is not None:
                entry[1].add(row.action)
        out[key] = list(people.values())
    return out


# --------------------------------------------------------------------------- proposals

def _proposal_key(path, key: str) -> tuple[str, int]:
    video, sep, stamp = key.rpartition(",")
    if not sep or not video:
        raise AvaFormatError(f"{path}: key {key!r} must be 'video_id,timestamp'")
    try:
        return video, int(stamp)
    except ValueError:
        raise AvaFormatError(f"{path}: key {key!r}: the timestamp must be an integer") from None


def _proposal_array(path, key: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        arr = arr.reshape(0, 5)
    if arr.ndim != 2 or arr.shape[1] not in (4, 5) or not np.isfinite(arr).all():
        raise AvaFormatError(f"{path}: {key!r}: expected finite [n, 5] rows x1, y1, x2, y2, score, "
                             f"got shape {arr.shape}")
    if arr.shape[1] == 4:
        arr = np.concatenate([arr, np.ones((len(arr), 1))], axis=1)
    return arr


def read_proposals(path: str | Path) -> dict[tuple[str, int], np.ndarray]:
    """Person proposals ``{(video, timestamp): [n, 5] (x1, y1, x2, y2, score)}`` (normalised
    boxes) from a ``.csv``, ``.json`` or ``.npz`` file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows: dict[tuple[str, int], list] = defaultdict(list)
        for line, f in _rows(path):
            if len(f) not in (6, 7):
                raise _fail(path, line, f"expected 6 or 7 columns (video, timestamp, x1, y1, x2, y2"
                                        f"[, score]), got {len(f)}")
            try:
                score = float(f[6]) if len(f) == 7 else 1.0
            except ValueError:
                raise _fail(path, line, f"score must be a number, got {f[6]!r}") from None
            rows[(f[0], _int(path, line, f[1], "timestamp"))].append([*_box(path, line, f[2:6]), score])
        return {k: np.asarray(v, dtype=np.float64) for k, v in rows.items()}
    if suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise AvaFormatError(f"{path}: not a readable JSON file ({exc})") from None
        if not isinstance(data, dict):
            raise AvaFormatError(f"{path}: expected an object "
                                 "{'video,timestamp': [[x1, y1, x2, y2, score]]}")
        return {_proposal_key(path, k): _proposal_array(path, k, v) for k, v in data.items()}
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return {_proposal_key(path, k): _proposal_array(path, k, data[k]) for k in data.files}
        except (OSError, ValueError) as exc:
            raise AvaFormatError(f"{path}: not a readable npz file ({exc})") from None
    raise AvaFormatError(f"{path}: proposals must be .csv, .json or .npz, got {suffix or 'no suffix'!r}")


def write_proposals(path: str | Path, proposals: dict[tuple[str, int], np.ndarray]) -> Path:
    """Write proposals in the format the suffix names (``.csv``, ``.json`` or ``.npz``)."""
    path = Path(path)
    items = sorted(proposals.items())
    if path.suffix.lower() == ".csv":
        lines = [f"{_video_field(v)},{t:0{TIMESTAMP_DIGITS}d},"
                 + ",".join(f"{x:.{BOX_DECIMALS}f}" for x in row[:4]) + f",{row[4]:.6g}\n"
                 for (v, t), arr in items for row in np.asarray(arr).reshape(-1, 5)]
        return atomic_write_text(path, "".join(lines))
    if path.suffix.lower() == ".json":
        return atomic_write_json(path, {f"{v},{t:0{TIMESTAMP_DIGITS}d}": np.asarray(a).tolist()
                                        for (v, t), a in items})
    if path.suffix.lower() == ".npz":
        buffer = io.BytesIO()
        np.savez(buffer, **{f"{v},{t:0{TIMESTAMP_DIGITS}d}": np.asarray(a, dtype=np.float64)
                            for (v, t), a in items})
        return atomic_write_bytes(path, buffer.getvalue())
    raise ValueError(f"{path}: proposals are written as .csv, .json or .npz")
