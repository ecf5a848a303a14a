"""Kinetics CSV annotations (Kay et al. 2017; Kinetics-400/600/700).

Header ``label,youtube_id,time_start,time_end,split`` (extra columns such as ``is_cc`` are
ignored; the test CSV may lack ``label``). Naming convention of the downloaded clips (the one
of the ActivityNet crawler and MMAction2's download script), configurable with ``template``::

    <root>/<label>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4

Rows without a label use ``unlabeled_template`` (default: the same file name directly under
``root``) and get ``label = -1`` ("unknown"). ``space_replacement="_"`` writes spaces of the
label as underscores in the path (some mirrors name folders ``air_drumming``). Template
fields: ``label``, ``youtube_id``, ``time_start``, ``time_end``, ``split``.

Classes: ``classes`` (list or label-map path; use it for val/test so labels match training),
else the sorted distinct labels of the CSV. Files are not checked unless ``check_exists``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from deepvideo.data.formats._common import (
    AnnotationError,
    Issues,
    ParsedIndex,
    PathLike,
    join,
    require_file,
    resolve_classes,
)
from deepvideo.data.record import VideoRecord

TEMPLATE = "{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
UNLABELED_TEMPLATE = "{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
REQUIRED = ("youtube_id", "time_start", "time_end")
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "validate": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def _seconds(token: str) -> int | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return int(value) if value.is_integer() and value >= 0 else None


def read_rows(path: Path, issues: Issues) -> list[tuple[int, str, dict]]:
    """``(line number, line, {column: value})`` of every non-empty data line of a Kinetics CSV;
    a line with the wrong number of fields is reported to ``issues`` and left out."""
    rows: list[tuple[int, str, dict]] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise FileNotFoundError(f"{path}: Kinetics CSV is empty (expected a header line)")
        header = [h.strip() for h in header]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise AnnotationError(path, 1, ",".join(header), f"header lacks column(s) {missing}")
        for fields in reader:
            number = reader.line_num
            if not any(x.strip() for x in fields):
                continue
            text = ",".join(fields)
            if len(fields) != len(header):
                issues.report(
                    path,
                    number,
                    text,
                    f"expected {len(header)} fields ({','.join(header)}), got {len(fields)}",
                )
                continue
            rows.append((number, text, dict(zip(header, (x.strip() for x in fields), strict=True))))
    return rows


def load_kinetics(
    csv_path: PathLike,
    root: PathLike | None = None,
    *,
    classes: Sequence[str] | PathLike | None = None,
    subset: str | None = None,
    template: str = TEMPLATE,
    unlabeled_template: str = UNLABELED_TEMPLATE,
    space_replacement: str | None = None,
    check_exists: bool = False,
    strict: bool = True,
) -> ParsedIndex:
    """Records of a Kinetics CSV; ``subset`` keeps only rows whose ``split`` column matches."""
    path = require_file(csv_path, "Kinetics CSV")
    root = path.parent if root is None else Path(root)
    names = resolve_classes(classes)
    issues = Issues(strict)
    rows = read_rows(path, issues)
    if names is None:
        names = sorted({row["label"] for _, _, row in rows if row.get("label")})
    lookup = {name: i for i, name in enumerate(names)}
    want = None if subset is None else SPLIT_NAMES.get(subset, subset)
    records: list[VideoRecord] = []
    for number, text, row in rows:
        split = SPLIT_NAMES.get(row.get("split", ""), row.get("split") or None)
        if want is not None and split != want:
            continue
        start, end = _seconds(row["time_start"]), _seconds(row["time_end"])
        if start is None or end is None or end < start:
            issues.report(path, number, text, "time_start/time_end must be whole seconds with start <= end")
            continue
        label_name = row.get("label", "")
        if label_name:
            if label_name not in lookup:
                issues.report(path, number, text, f"unknown class {label_name!r} (not in the class list)")
                continue
            label = lookup[label_name]
            folder = label_name if space_replacement is None else label_name.replace(" ", space_replacement)
            fmt = template
        else:
            label, folder, fmt = -1, "", unlabeled_template
        try:
            rel = fmt.format(
                label=folder, youtube_id=row["youtube_id"], time_start=start, time_end=end, split=split or ""
            )
        except (KeyError, ValueError, IndexError) as e:
            raise ValueError(f"bad Kinetics path template {fmt!r}: {e}") from None
        record = VideoRecord(
            path=join(root, rel),
            label=label,
            split=split,
            source=f"{path}:{number}",
            meta={"youtube_id": row["youtube_id"], "time_start": start, "time_end": end},
        )
        if check_exists and not os.path.exists(record.path):
            issues.report(path, number, text, f"video not found at {record.path}")
            continue
        records.append(record)
    return issues.finish(records, names, format="kinetics", root=str(root))
