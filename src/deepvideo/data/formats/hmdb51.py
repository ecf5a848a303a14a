"""HMDB51 official splits (Kuehne et al. 2011): ``<class>_test_split<N>.txt`` per class.

Each line is ``"<video>.avi <flag>"`` with flag 1 = train, 2 = test, 0 = unused in split N
(3 splits, 70 train / 30 test videos per class). Classes are the sorted class names taken
from the split file names; the video path is ``video_root/<class>/<video>``.

Split files are looked up in ``annotation_dir``, else ``root/testTrainMulti_7030_splits``,
``root/splits``, ``root/annotations``, else ``root``; videos live under ``video_root`` (default
``root``).
"""

from __future__ import annotations

import os
from pathlib import Path

from deepvideo.data.formats._common import Issues, ParsedIndex, PathLike, iter_lines, join, parse_int
from deepvideo.data.record import VideoRecord

FLAGS = {"unused": 0, "train": 1, "test": 2}


def _split_files(ann_dir: Path, split: int) -> dict[str, Path]:
    suffix = f"_test_split{split}.txt"
    return {p.name[: -len(suffix)]: p for p in sorted(ann_dir.glob(f"*{suffix}")) if p.is_file()}


def load_hmdb51(
    root: PathLike,
    *,
    split: int = 1,
    subset: str = "train",
    annotation_dir: PathLike | None = None,
    video_root: PathLike | None = None,
    check_exists: bool = False,
    strict: bool = True,
) -> ParsedIndex:
    """Records of one subset (``"train"``, ``"test"`` or ``"unused"``) of split ``split`` (1..3)."""
    if subset not in FLAGS:
        raise ValueError(f"subset must be one of {tuple(FLAGS)}, got {subset!r}")
    root = Path(root)
    if annotation_dir is not None:
        ann_dir = Path(annotation_dir)
    else:
        candidates = (root / "testTrainMulti_7030_splits", root / "splits", root / "annotations", root)
        ann_dir = next((c for c in candidates if _split_files(c, split)), root)
    files = _split_files(ann_dir, split)
    if not files:
        raise FileNotFoundError(f"{ann_dir}: no HMDB51 split files '*_test_split{split}.txt' found")
    video_root = root if video_root is None else video_root
    classes = sorted(files)
    wanted = FLAGS[subset]
    issues = Issues(strict)
    records: list[VideoRecord] = []
    for label, name in enumerate(classes):
        path = files[name]
        for number, text in iter_lines(path):
            fields = text.split()
            if len(fields) != 2:
                issues.report(path, number, text, f"expected 'video.avi flag', got {len(fields)} field(s)")
                continue
            flag = parse_int(fields[1])
            if flag not in (0, 1, 2):
                issues.report(
                    path, number, text, f"flag {fields[1]!r} must be 0 (unused), 1 (train) or 2 (test)"
                )
                continue
            if flag != wanted:
                continue
            record = VideoRecord(
                path=join(video_root, f"{name}/{fields[0]}"),
                label=label,
                split=subset,
                source=f"{path}:{number}",
            )
            if check_exists and not os.path.exists(record.path):
                issues.report(path, number, text, f"video not found at {record.path}")
                continue
            records.append(record)
    return issues.finish(
        records, classes, format="hmdb51", split=split, subset=subset, video_root=str(video_root)
    )
