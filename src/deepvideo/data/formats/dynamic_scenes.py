"""Dynamic scenes: YUP++ (Feichtenhofer et al. CVPR 2017; thesis ch. 7) and sets written like it.

Two layouts (``layout="auto"`` picks by what is on disk):

* ``"yup"``: ``root/<camera_static|camera_moving>/<class>/<video>`` (``camera_stationary``,
  ``static``, ``moving`` accepted too). ``meta["camera"]`` is ``"static"`` / ``"moving"``.
  The protocol split is 10/90 train/test with equal static/moving per class: for each class,
  ``k = round(train_fraction * n / 2)`` videos of each camera type go to train (capped by the
  smaller camera group; with 30 + 30 videos, 3 + 3), chosen by a permutation seeded by
  ``(seed, class index, camera)``, so the split is deterministic, independent of other classes
  and of listing order.
* ``"ucf101"``: ``classInd.txt`` + ``trainlist0N.txt`` / ``testlist0N.txt`` (see
  :mod:`~deepvideo.data.formats.ucf101`). This is how the synthetic ``dynamic-scenes`` set is
  written; the camera comes from a marker folder in each listed path (as above).

Assumption (the synthetic set's exact subset marker was not specified to us): the camera type is
recognized from a folder component of the path named like the YUP++ camera folders; records
without such a folder simply have no ``meta["camera"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepvideo.data.formats._common import CAMERA_MARKERS, Issues, ParsedIndex, PathLike
from deepvideo.data.formats.folder import VIDEO_EXTENSIONS
from deepvideo.data.formats.ucf101 import load_ucf101
from deepvideo.data.record import VideoRecord

CAMERAS = ("static", "moving")
SUBSETS = ("train", "test", "all")


def _camera_dirs(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if root.is_dir():
        for p in sorted(root.iterdir()):
            camera = CAMERA_MARKERS.get(p.name.lower())
            if p.is_dir() and camera is not None:
                if camera in found:
                    raise ValueError(
                        f"{root}: two folders for the {camera} camera: {found[camera].name}, {p.name}"
                    )
                found[camera] = p
    return found


def protocol_train_count(counts: dict[str, int], train_fraction: float) -> int:
    """Videos per camera type that go to train: equal for both types, ``train_fraction`` overall."""
    total = sum(counts.values())
    k = int(round(train_fraction * total / max(1, len(counts))))
    return min([k, *counts.values()])


def load_dynamic_scenes(
    root: PathLike,
    *,
    subset: str = "train",
    layout: str = "auto",
    train_fraction: float = 0.1,
    seed: int = 0,
    split: int = 1,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    check_exists: bool = False,
    strict: bool = True,
) -> ParsedIndex:
    """Records of a dynamic-scenes dataset; ``subset`` is ``"train"``, ``"test"`` or ``"all"``."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    root = Path(root)
    cameras = _camera_dirs(root)
    if layout == "auto":
        layout = "yup" if cameras else "ucf101"
    if layout == "ucf101":
        if subset == "all":
            train = load_ucf101(root, split=split, subset="train", check_exists=check_exists, strict=strict)
            test = load_ucf101(root, split=split, subset="test", check_exists=check_exists, strict=strict)
            train.records.extend(test.records)
            train.skipped.extend(test.skipped)
            train.meta["subset"] = "all"
            return train
        return load_ucf101(root, split=split, subset=subset, check_exists=check_exists, strict=strict)
    if layout != "yup":
        raise ValueError(f"layout must be 'auto', 'yup' or 'ucf101', got {layout!r}")
    if not cameras:
        raise FileNotFoundError(f"{root}: no camera_static/ or camera_moving/ folder (YUP++ layout)")
    if not 0.0 <= train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in [0, 1], got {train_fraction}")
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    videos: dict[str, dict[str, list[Path]]] = {}
    for camera, folder in cameras.items():
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in exts and p.is_file())
            videos.setdefault(class_dir.name, {})[camera] = files
    classes = sorted(videos)
    issues = Issues(strict)
    records: list[VideoRecord] = []
    for label, name in enumerate(classes):
        groups = videos[name]
        k = protocol_train_count({c: len(v) for c, v in groups.items()}, train_fraction)
        for camera in CAMERAS:
            files = groups.get(camera, [])
            order = np.random.default_rng([seed, label, CAMERAS.index(camera)]).permutation(len(files))
            train_set = {int(i) for i in order[:k]}
            for i, p in enumerate(files):
                part = "train" if i in train_set else "test"
                if subset != "all" and part != subset:
                    continue
                records.append(
                    VideoRecord(
                        path=str(p),
                        label=label,
                        split=part,
                        source=str(p.relative_to(root)),
                        meta={"camera": camera},
                    )
                )
    return issues.finish(
        records,
        classes,
        format="dynamic_scenes",
        layout="yup",
        subset=subset,
        train_fraction=train_fraction,
        seed=seed,
    )
