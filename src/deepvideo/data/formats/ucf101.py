"""UCF101 official splits (Soomro et al. 2012): ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``.

``classInd.txt`` lines are ``"1 ApplyEyeMakeup"`` (1-based; labels become 0-based). Train lists
have ``"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"``; test lists have only the path, and the
class is the video's parent folder name. When both are present they must agree (a mismatch
means a wrong ``classInd.txt``). There are 3 splits.

Annotation files are looked up in ``annotation_dir``, else ``root/ucfTrainTestlist``,
``root/annotations``, else ``root``; videos live under ``video_root``, else ``root/UCF-101`` or
``root/videos`` when one exists, else ``root``. ``subset="all"`` is the train and test lists of
the split together.

The same layout serves datasets written "like UCF101", such as the synthetic ``dynamic-scenes``
set (``deepvideo data synth``), whose ``annotations/camera.txt`` lists ``"<path> static|moving"``
per video: when that file exists beside ``classInd.txt`` (or ``camera_file`` is given),
``meta["camera"]`` is set from it; otherwise a camera-marker folder in the path
(``camera_static``/``static``, ``camera_moving``/``moving``) sets it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from deepvideo.data.formats._common import (
    AnnotationError,
    Issues,
    ParsedIndex,
    PathLike,
    camera_from_path,
    iter_lines,
    join,
    parse_int,
    read_label_map,
    require_file,
    resolve_classes,
)
from deepvideo.data.record import VideoRecord

SUBSETS = ("train", "test", "all")


def _find_annotation_dir(root: Path, annotation_dir: PathLike | None) -> Path:
    if annotation_dir is not None:
        return Path(annotation_dir)
    for candidate in (root / "ucfTrainTestlist", root / "annotations", root):
        if (candidate / "classInd.txt").is_file():
            return candidate
    return root


def load_ucf101(
    root: PathLike,
    *,
    split: int = 1,
    subset: str = "train",
    annotation_dir: PathLike | None = None,
    video_root: PathLike | None = None,
    classes: Sequence[str] | PathLike | None = None,
    camera_file: PathLike | None = None,
    check_exists: bool = False,
    strict: bool = True,
) -> ParsedIndex:
    """Records of one subset (``"train"``, ``"test"`` or ``"all"``) of split ``split`` (1..3)."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    root = Path(root)
    ann_dir = _find_annotation_dir(root, annotation_dir)
    names = resolve_classes(classes)
    if names is None:
        names = read_label_map(require_file(ann_dir / "classInd.txt", "UCF101 class index classInd.txt"))
    if video_root is None:
        found = [d for d in (root / "UCF-101", root / "videos") if d.is_dir()]
        video_root = found[0] if found else root
    if camera_file is None and (ann_dir / "camera.txt").is_file():
        camera_file = ann_dir / "camera.txt"
    cameras = read_camera_file(camera_file) if camera_file is not None else None
    parts = ("train", "test") if subset == "all" else (subset,)
    indexes = []
    for part in parts:
        list_path = require_file(
            ann_dir / f"{part}list{split:02d}.txt", f"UCF101 {part} list of split {split}"
        )
        indexes.append(
            parse_ucf101_list(
                list_path,
                names,
                video_root,
                subset=part,
                cameras=cameras,
                check_exists=check_exists,
                strict=strict,
                split_number=split,
            )
        )
    index = indexes[0]
    for other in indexes[1:]:
        index.records.extend(other.records)
        index.skipped.extend(other.skipped)
    index.meta["subset"] = subset
    return index


def read_camera_file(path: PathLike) -> dict[str, str]:
    """``{relative video path: "static" | "moving"}`` from a ``"<path> static|moving"`` file."""
    path = require_file(path, "camera subset file")
    cameras: dict[str, str] = {}
    for number, text in iter_lines(path, comments=True):
        fields = text.split()
        if len(fields) != 2 or fields[1] not in ("static", "moving"):
            raise AnnotationError(path, number, text, "expected '<video path> static|moving'")
        cameras[fields[0].replace("\\", "/")] = fields[1]
    return cameras


def parse_ucf101_list(
    list_path: PathLike,
    classes: Sequence[str],
    video_root: PathLike,
    *,
    subset: str | None = None,
    cameras: dict[str, str] | None = None,
    check_exists: bool = False,
    strict: bool = True,
    split_number: int | None = None,
) -> ParsedIndex:
    """Parse one UCF101-style list (``path [1-based label]``) against ``classes``.

    ``cameras`` maps listed paths to ``"static"``/``"moving"`` (``meta["camera"]``).
    """
    lookup = {name: i for i, name in enumerate(classes)}
    folded = {name.lower(): i for i, name in enumerate(classes)}
    issues = Issues(strict)
    records: list[VideoRecord] = []
    for number, text in iter_lines(list_path, comments=True):
        fields = text.split()
        if len(fields) not in (1, 2):
            issues.report(
                list_path, number, text, f"expected 'Class/video.avi [label]', got {len(fields)} fields"
            )
            continue
        rel = fields[0].replace("\\", "/")
        parent = PurePosixPath(rel).parent.name
        folder_label = lookup.get(parent, folded.get(parent.lower()))
        if len(fields) == 2:
            value = parse_int(fields[1])
            if value is None:
                issues.report(list_path, number, text, f"label {fields[1]!r} is not an integer")
                continue
            if not 1 <= value <= len(classes):
                issues.report(
                    list_path,
                    number,
                    text,
                    f"label {value} out of range (classInd is 1-based, 1..{len(classes)})",
                )
                continue
            label = value - 1
            if folder_label is not None and folder_label != label:
                issues.report(
                    list_path,
                    number,
                    text,
                    f"label {value} ({classes[label]}) disagrees with the "
                    f"class folder {parent!r}; is classInd.txt the right one?",
                )
                continue
        elif folder_label is None:
            issues.report(list_path, number, text, f"unknown class folder {parent!r} (not in classInd.txt)")
            continue
        else:
            label = folder_label
        record = VideoRecord(
            path=join(video_root, rel), label=label, split=subset, source=f"{list_path}:{number}"
        )
        camera = cameras.get(rel) if cameras is not None else None
        camera = camera if camera is not None else camera_from_path(rel)
        if camera is not None:
            record.meta["camera"] = camera
        if check_exists and not os.path.exists(record.path):
            issues.report(list_path, number, text, f"video not found at {record.path}")
            continue
        records.append(record)
    return issues.finish(
        records, classes, format="ucf101", split=split_number, subset=subset, video_root=str(video_root)
    )
