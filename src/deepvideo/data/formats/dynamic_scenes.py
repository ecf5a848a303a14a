"""Dynamic scenes: YUP++ (Feichtenhofer et al. CVPR 2017; thesis ch. 7) and sets written like it.

Two layouts (``layout="auto"`` picks by what is on disk):

* ``"yup"``: ``root/<camera_static|camera_moving>/<class>/<video>`` (``camera_stationary``,
  ``static``, ``moving`` accepted too). Classes are the sorted union of class folders.
* ``"ucf101"``: ``classInd.txt`` + ``trainlist0N.txt`` / ``testlist0N.txt`` (+ ``camera.txt``), see
  :mod:`~deepvideo.data.formats.ucf101`. This is how the synthetic ``dynamic-scenes`` set
  (``deepvideo data synth dynamic-scenes``) is written: ``DIR/videos`` and ``DIR/annotations``
  with ``annotations/camera.txt`` giving ``"<path> static|moving"`` per video.

Every record gets ``meta["camera"]`` = ``"static"`` / ``"moving"``.

Protocols (``protocol="auto"``: ``"fraction"`` for the YUP++ layout, ``"lists"`` for the UCF101 one):

* ``"fraction"``: the YUP++ 10/90 train/test split with equal static/moving per class: for each
  class, ``k = round(train_fraction * n / 2)`` videos of each camera type go to train (capped by
  the smaller camera group; with 30 + 30 videos, 3 + 3), chosen by a permutation seeded by
  ``(seed, class index, camera)`` over the videos sorted by path: deterministic, independent of
  other classes and of listing order. In the UCF101 layout it pools the train and test lists of
  ``split``.
* ``"lists"``: the split's own train/test lists (UCF101 layout only).
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


def protocol_split(records: list[VideoRecord], train_fraction: float, seed: int) -> None:
    """Set ``record.split`` to ``"train"``/``"test"`` by the 10/90 protocol (see module docstring)."""
    if not 0.0 <= train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in [0, 1], got {train_fraction}")
    groups: dict[int, dict[str, list[VideoRecord]]] = {}
    for r in records:
        camera = r.meta.get("camera")
        if camera not in CAMERAS:
            raise ValueError(
                f"{r.source or r.path}: no static/moving camera information; the 10/90 protocol needs it "
                "(a camera folder, or annotations/camera.txt)"
            )
        groups.setdefault(int(r.label), {}).setdefault(camera, []).append(r)
    for label, by_camera in groups.items():
        k = protocol_train_count({c: len(v) for c, v in by_camera.items()}, train_fraction)
        for camera, group in by_camera.items():
            group.sort(key=lambda r: r.path)
            order = np.random.default_rng([seed, label, CAMERAS.index(camera)]).permutation(len(group))
            chosen = {int(i) for i in order[:k]}
            for i, r in enumerate(group):
                r.split = "train" if i in chosen else "test"


def load_dynamic_scenes(
    root: PathLike,
    *,
    subset: str = "train",
    layout: str = "auto",
    protocol: str = "auto",
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
    if layout not in ("yup", "ucf101"):
        raise ValueError(f"layout must be 'auto', 'yup' or 'ucf101', got {layout!r}")
    if protocol == "auto":
        protocol = "fraction" if layout == "yup" else "lists"
    if protocol not in ("fraction", "lists"):
        raise ValueError(f"protocol must be 'auto', 'fraction' or 'lists', got {protocol!r}")
    if layout == "ucf101":
        part = subset if protocol == "lists" else "all"
        index = load_ucf101(root, split=split, subset=part, check_exists=check_exists, strict=strict)
        if protocol == "fraction":
            protocol_split(index.records, train_fraction, seed)
            if subset != "all":
                index.records = [r for r in index.records if r.split == subset]
        index.meta.update(format="dynamic_scenes", layout="ucf101", protocol=protocol, subset=subset)
        return index
    if protocol == "lists":
        raise ValueError(f"{root}: the YUP++ folder layout has no split lists; use protocol='fraction'")
    if not cameras:
        raise FileNotFoundError(f"{root}: no camera_static/ or camera_moving/ folder (YUP++ layout)")
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    found: dict[str, list[tuple[Path, str]]] = {}
    for camera, folder in cameras.items():
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for p in sorted(class_dir.iterdir()):
                if p.suffix.lower() in exts and p.is_file():
                    found.setdefault(class_dir.name, []).append((p, camera))
    classes = sorted(found)
    records = [
        VideoRecord(path=str(p), label=label, source=str(p.relative_to(root)), meta={"camera": camera})
        for label, name in enumerate(classes)
        for p, camera in found[name]
    ]
    protocol_split(records, train_fraction, seed)
    if subset != "all":
        records = [r for r in records if r.split == subset]
    return Issues(strict).finish(
        records,
        classes,
        format="dynamic_scenes",
        layout="yup",
        protocol="fraction",
        subset=subset,
        train_fraction=train_fraction,
        seed=seed,
    )
