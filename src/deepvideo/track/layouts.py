"""Result files of the official tracking toolkits: reading, writing, converting.

A tracker's results live in one folder (``<result_dir>/<tracker>``), in one of these layouts:

- ``"otb"`` (GOT-10k toolkit ``ExperimentOTB``): ``<seq>.txt``, one ``x,y,w,h`` line per frame
  (comma separated; tab- or space-separated files from other tools are read too), and
  ``times/<seq>_time.txt``, one time in seconds per line. One repetition.
- ``"got10k"`` (``ExperimentGOT10k``): ``<seq>/<seq>_001.txt``, ``<seq>_002.txt``... one file
  per repetition, and ``<seq>/<seq>_time.txt`` with one comma-separated column per repetition.
- ``"vot"`` (``vot-toolkit`` supervised experiment): ``baseline/<seq>/<seq>_001.txt``... with
  one line per frame: ``1`` initialisation, ``2`` failure, ``0`` skipped, else ``x,y,w,h``;
  times in ``<seq>_001_time.value`` (one per line, empty where none).

Boxes are written as the toolkits write them: 3 decimals in the OTB and GOT-10k layouts, full
precision in the VOT layout (so overlaps computed from the file are those the run decided
failures on); times with 8 decimals. A frame without a box is ``nan,nan,nan,nan``. Every
file is written atomically, the box file last, so a sequence (repetition) is finished
exactly when its box file exists.

API: :class:`Run` (one repetition), :func:`write_run`, :func:`read_runs`, :func:`has_run`,
:func:`sequence_names`, :func:`detect_layout`, :func:`convert`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from deepvideo.io.atomic import atomic_write_text
from deepvideo.track.metrics import VOT_SKIPPED, VOT_TRACKED
from deepvideo.track.sequence_files import parse_numbers, text_lines

LAYOUTS = ("otb", "got10k", "vot")


class ResultFileError(ValueError):
    """A result file that cannot be read; the message names the file (and line)."""


@dataclass
class Run:
    """One repetition on one sequence: ``boxes [N, 4]`` (NaN rows where no box), ``times
    [N]`` in seconds (NaN where not timed) or None, and for VOT runs the per-frame ``codes``
    (:data:`deepvideo.track.metrics.VOT_TRACKED` where a box, else the VOT special code)."""

    boxes: np.ndarray
    times: np.ndarray | None = None
    codes: np.ndarray | None = None
    scores: np.ndarray | None = None  # the tracker's per-frame scores (not in the toolkits' files)

    def shifted(self, origin: float) -> Run:
        """The run with ``origin`` added to x and y: result files hold boxes in the pixel
        convention of the dataset's own files (1-based for OTB, LaSOT, GOT-10k)."""
        if not origin:
            return self
        boxes = self.boxes.copy()
        boxes[:, :2] += origin
        return replace(self, boxes=boxes)


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown result layout {layout!r}; known: {', '.join(LAYOUTS)}")
    return layout


def box_path(tracker_dir, layout: str, sequence: str, repetition: int = 1) -> Path:
    """The box file of one repetition."""
    tracker_dir = Path(tracker_dir)
    if check_layout(layout) == "otb":
        if repetition != 1:
            raise ValueError(f"the OTB layout holds one repetition, asked for {repetition}; "
                             "use the got10k layout for repetitions")
        return tracker_dir / f"{sequence}.txt"
    folder = tracker_dir / sequence if layout == "got10k" else tracker_dir / "baseline" / sequence
    return folder / f"{sequence}_{repetition:03d}.txt"


def time_path(tracker_dir, layout: str, sequence: str, repetition: int = 1) -> Path:
    """The time file holding ``repetition`` (shared by all repetitions in the got10k layout)."""
    boxes = box_path(tracker_dir, layout, sequence, repetition)
    if layout == "otb":
        return boxes.parent / "times" / f"{sequence}_time.txt"
    if layout == "got10k":
        return boxes.parent / f"{sequence}_time.txt"
    return boxes.with_name(f"{sequence}_{repetition:03d}_time.value")


def has_run(tracker_dir, layout: str, sequence: str, repetition: int = 1) -> bool:
    return box_path(tracker_dir, layout, sequence, repetition).is_file()


def _box_text(boxes: np.ndarray, codes: np.ndarray | None = None) -> str:
    lines = []
    for index, box in enumerate(np.asarray(boxes, dtype=np.float64)):
        if codes is None:
            lines.append(",".join(f"{v:.3f}" for v in box))
        elif codes[index] != VOT_TRACKED:
            lines.append(str(int(codes[index])))
        else:  # full precision, as vot-toolkit writes: the file's overlaps are the run's
            lines.append(",".join(repr(float(v)) for v in box))
    return "\n".join(lines) + "\n"


def _time_column(times: np.ndarray | None, n: int) -> np.ndarray:
    if times is None:
        return np.full(n, np.nan)
    times = np.asarray(times, dtype=np.float64)
    if times.shape != (n,):
        raise ValueError(f"times: expected {n} values, got shape {times.shape}")
    return times


def write_run(tracker_dir, layout: str, sequence: str, repetition: int, run: Run) -> Path:
    """Write one repetition (times first, the box file last); returns the box file."""
    boxes = np.asarray(run.boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{sequence}: boxes must be [N, 4], got {boxes.shape}")
    if (layout == "vot") != (run.codes is not None):
        raise ValueError(f"{sequence}: VOT runs need codes and only VOT runs have them")
    path = box_path(tracker_dir, layout, sequence, repetition)
    times = _time_column(run.times, len(boxes))
    tpath = time_path(tracker_dir, layout, sequence, repetition)
    if layout == "got10k":
        old = _read_numbers(tpath) if tpath.is_file() else np.empty((len(boxes), 0))
        if old.shape[0] != len(boxes):
            raise ResultFileError(f"{tpath}: {old.shape[0]} lines of times, the new run has "
                                  f"{len(boxes)} frames")
        table = np.full((len(boxes), max(old.shape[1], repetition)), np.nan)
        table[:, :old.shape[1]] = old
        table[:, repetition - 1] = times  # a rerun repetition replaces its own column
        atomic_write_text(tpath, "\n".join(",".join(f"{t:.8f}" for t in row) for row in table)
                          + "\n")
    else:
        atomic_write_text(tpath, "\n".join("" if layout == "vot" and np.isnan(t) else f"{t:.8f}"
                                           for t in times) + "\n")
    atomic_write_text(path, _box_text(boxes, run.codes))
    return path


def _read_numbers(path: Path) -> np.ndarray:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            rows.append([float(v) if v.strip() else np.nan for v in line.split(",")])
        except ValueError:
            raise ResultFileError(f"{path}, line {number}: not numbers: {line!r}") from None
    return np.asarray(rows, dtype=np.float64)


def _read_boxes(path: Path) -> np.ndarray:
    """Every line's ``x,y,w,h`` as they are (NaN and empty boxes kept: they are results)."""
    rows = []
    for number, text in text_lines(path):
        rows.append(parse_numbers(path, number, text))
        if len(rows[-1]) != 4:
            raise ResultFileError(f"{path}, line {number}: {len(rows[-1])} values, expected x,y,w,h")
    if not rows:
        raise ResultFileError(f"{path}: no boxes (empty file)")
    return np.asarray(rows, dtype=np.float64)


def _read_vot(path: Path) -> tuple[np.ndarray, np.ndarray]:
    boxes, codes = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            values = [float(v) for v in re.split(r"[,\s]+", line.strip())]
        except ValueError:
            raise ResultFileError(f"{path}, line {number}: not numbers: {line!r}") from None
        if len(values) == 1 and values[0] in (0, 1, 2):
            boxes.append([np.nan] * 4)
            codes.append(int(values[0]))
        elif len(values) == 4:  # a NaN box is an unknown region, as the toolkit reads it
            boxes.append(values if np.isfinite(values).all() else [np.nan] * 4)
            codes.append(VOT_TRACKED if np.isfinite(values).all() else VOT_SKIPPED)
        else:
            raise ResultFileError(f"{path}, line {number}: expected a code 0/1/2 or x,y,w,h "
                                  f"(polygons and masks are not supported), got {line!r}")
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(codes)


def _repetitions(tracker_dir, layout: str, sequence: str) -> list[int]:
    if layout == "otb":
        return [1] if has_run(tracker_dir, layout, sequence) else []
    folder = box_path(tracker_dir, layout, sequence).parent
    pattern = re.compile(rf"{re.escape(sequence)}_(\d+)\.txt")
    found = sorted(int(m.group(1)) for p in folder.glob(f"{sequence}_*.txt")
                   if (m := pattern.fullmatch(p.name)))
    if found != list(range(1, len(found) + 1)):
        raise ResultFileError(f"{folder}: repetitions {found} are not 1..n")
    return found


def read_runs(tracker_dir, layout: str, sequence: str) -> list[Run]:
    """Every repetition stored for ``sequence`` (a FileNotFoundError when there is none)."""
    check_layout(layout)
    repetitions = _repetitions(tracker_dir, layout, sequence)
    if not repetitions:
        raise FileNotFoundError(f"{box_path(tracker_dir, layout, sequence)}: no results for "
                                f"sequence {sequence!r}")
    runs = []
    for repetition in repetitions:
        path = box_path(tracker_dir, layout, sequence, repetition)
        boxes, codes = _read_vot(path) if layout == "vot" else (_read_boxes(path), None)
        tpath = time_path(tracker_dir, layout, sequence, repetition)
        times = None
        if tpath.is_file():
            table = _read_numbers(tpath)
            if table.shape[0] != len(boxes) or (layout == "got10k" and table.shape[1] < repetition):
                raise ResultFileError(f"{tpath}: {table.shape} times do not match {len(boxes)} "
                                      f"frames x {repetition} repetitions of {path.name}")
            times = table[:, repetition - 1] if layout == "got10k" else table[:, 0]
        runs.append(Run(boxes, times, codes))
    return runs


def sequence_names(tracker_dir, layout: str) -> list[str]:
    """Names of the sequences with results in ``tracker_dir``."""
    tracker_dir = Path(tracker_dir)
    if check_layout(layout) == "otb":
        return sorted(p.stem for p in tracker_dir.glob("*.txt"))
    root = tracker_dir if layout == "got10k" else tracker_dir / "baseline"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and has_run(tracker_dir, layout,
                                                                             p.name)) \
        if root.is_dir() else []


def detect_layout(tracker_dir) -> str:
    """The layout of a tracker's result folder, or a ValueError saying why none fits."""
    tracker_dir = Path(tracker_dir)
    found = [layout for layout in LAYOUTS if sequence_names(tracker_dir, layout)] \
        if tracker_dir.is_dir() else []
    if len(found) != 1:
        raise ValueError(f"{tracker_dir}: cannot tell the result layout (matches: "
                         f"{', '.join(found) or 'none'}); name it explicitly")
    return found[0]


def convert(src_dir, src_layout: str, dst_dir, dst_layout: str,
            repetition: int | None = None) -> list[str]:
    """Copy every sequence's results from one layout to another; returns the sequence names.

    OTB <-> GOT-10k (to OTB: the single repetition, or ``repetition``). VOT reset-based runs
    are not one-pass runs, so VOT converts only to VOT.
    """
    check_layout(src_layout), check_layout(dst_layout)
    if (src_layout == "vot") != (dst_layout == "vot"):
        raise ValueError(f"cannot convert {src_layout} results to {dst_layout}: VOT reset-based "
                         "runs and one-pass runs are different experiments")
    names = sequence_names(src_dir, src_layout)
    if not names:
        raise FileNotFoundError(f"{src_dir}: no {src_layout} results")
    for name in names:
        runs = read_runs(src_dir, src_layout, name)
        if dst_layout == "otb":
            if repetition is None and len(runs) > 1:
                raise ValueError(f"{src_dir}/{name}: {len(runs)} repetitions, the OTB layout "
                                 "holds one; pass repetition=k")
            runs = [runs[(repetition or 1) - 1]]
        for index, run in enumerate(runs, start=1):
            write_run(dst_dir, dst_layout, name, index, run)
    return names
