"""VideoRecord: one annotated video (or frame folder), the unit every format produces."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class VideoRecord:
    """One annotated video.

    ``path`` is a video file or a frame folder. ``label`` is a class index, or a tuple of
    indices for multi-label lists. ``source`` says where the record came from
    (``"trainlist01.txt:12"``) so later errors can name the annotation line.
    """

    path: str
    label: int | tuple[int, ...]
    num_frames: int | None = None
    fps: float | None = None
    start_index: int = 0  # first frame number of a frame folder (rawframe lists with offset)
    split: str | None = None  # "train", "val" or "test"
    source: str | None = None
    meta: dict = field(default_factory=dict)  # format extras, e.g. {"camera": "moving"}


@dataclass
class DatasetIndex:
    """The records of one subset of a dataset, with the class names their labels index."""

    records: list[VideoRecord]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, i: int) -> VideoRecord:
        return self.records[i]
