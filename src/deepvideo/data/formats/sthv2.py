"""Something-Something v2 JSON annotations (Goyal et al. 2017).

``labels_file`` maps template names to indices (``{"Approaching something with your camera":
"0", ...}``; a plain label-map text file works too). ``annotation_file`` (train / validation /
test JSON) is a list of ``{"id", "label", "template", "placeholders"}``; the class is the
``template`` with its ``[something]`` brackets removed. Test entries have only ``"id"`` and get
``label = -1``. Video path: ``root/<id><ext>`` (``template`` configurable, default
``"{id}{ext}"``, ext ``.webm``). Records' ``source`` is ``"file:[i]"`` (entry i, 0-based), and
errors name the file, the entry and its text.
"""

from __future__ import annotations

import json
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


def template_to_class(template: str) -> str:
    """``"Putting [something] into [something]"`` -> ``"Putting something into something"``."""
    return template.replace("[", "").replace("]", "")


def _subset_from_name(name: str) -> str | None:
    name = name.lower()
    for key, value in (("train", "train"), ("validation", "val"), ("val", "val"), ("test", "test")):
        if key in name:
            return value
    return None


def load_sthv2(
    annotation_file: PathLike,
    labels_file: Sequence[str] | PathLike,
    root: PathLike | None = None,
    *,
    ext: str = ".webm",
    template: str = "{id}{ext}",
    subset: str | None = None,
    check_exists: bool = False,
    strict: bool = True,
) -> ParsedIndex:
    """Records of one Something-Something v2 annotation JSON."""
    path = require_file(annotation_file, "Something-Something v2 annotation JSON")
    root = path.parent if root is None else Path(root)
    names = resolve_classes(labels_file)
    lookup = {name: i for i, name in enumerate(names)}
    subset = subset if subset is not None else _subset_from_name(path.name)
    try:
        entries = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise AnnotationError(path, e.lineno, None, f"invalid JSON ({e.msg})") from None
    if not isinstance(entries, list):
        raise AnnotationError(path, None, None, "expected a JSON list of {id, label, template, placeholders}")
    issues = Issues(strict)
    records: list[VideoRecord] = []
    for i, entry in enumerate(entries):
        where = f"{path}:[{i}]"
        text = json.dumps(entry)[:200]
        if not isinstance(entry, dict) or "id" not in entry:
            issues.report(f"{path}:[{i}]", None, text, "entry lacks 'id'")
            continue
        if "template" in entry:
            name = template_to_class(str(entry["template"]))
            if name not in lookup:
                issues.report(
                    f"{path}:[{i}]", None, text, f"unknown template {name!r} (not in the labels file)"
                )
                continue
            label = lookup[name]
        else:
            label = -1
        record = VideoRecord(
            path=join(root, template.format(id=entry["id"], ext=ext)), label=label, split=subset, source=where
        )
        if "placeholders" in entry:
            record.meta["placeholders"] = list(entry["placeholders"])
        if check_exists and not os.path.exists(record.path):
            issues.report(f"{path}:[{i}]", None, text, f"video not found at {record.path}")
            continue
        records.append(record)
    return issues.finish(records, names, format="sthv2", root=str(root))
