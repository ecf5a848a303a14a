"""Tracking protocols: runners that write toolkit result files, and their evaluation.

Runners (each returns the names of the sequences it ran; finished ones are skipped)::

    run_ope(tracker, sequences, result_dir, *, name=None, layout="otb", repetitions=1,
            shard=None, progress=True)
    run_got10k(tracker, sequences, result_dir, *, name=None, repetitions=3, shard=None,
               progress=True)                         # run_ope in the got10k layout
    run_vot(tracker, sequences, result_dir, *, name=None, repetitions=1,
            skip_initialize=5, shard=None, progress=True)

``tracker`` is a registered tracker name or a no-argument factory returning a new
:class:`~deepvideo.track.base.Tracker`; results go to ``result_dir/<name>`` (``name``
defaults to the tracker name or the factory's ``__name__``) in a layout of
:mod:`deepvideo.track.layouts`. Trackers read frames through ``Sequence.frame(i)``.

- One-pass evaluation (OPE): initialise on frame 0 with its ground-truth box, then track every
  other frame; frame 0's box is the initial box. Times are those of ``initialize`` (frame 0)
  and ``track`` calls only (not of reading frames), as the toolkits time them.
- VOT supervised (reset-based) protocol (vot-toolkit ``SupervisedExperiment``, VOT2016-2019):
  initialise on frame 0; a frame whose overlap (:func:`deepvideo.track.metrics.vot_overlap`)
  with the ground truth is ``<= 0`` is a failure; the tracker is initialised again (same
  object, ``initialize`` called again) ``skip_initialize = 5`` frames after it, the frames in
  between are skipped. A frame without ground truth counts as overlap 0 for a predicted box,
  as in the toolkit; an initialisation needs a ground-truth box, so it moves on to the next
  annotated frame (the toolkit would initialise with an empty region).
- A tracker that raises is a bug: the exception propagates and the sequence is not written.
  A non-finite box is recorded as ``nan,nan,nan,nan`` (OPE: a miss in every metric; VOT: a
  failure where the target has ground truth, else a skipped ``0`` frame).
- Pixel convention: result files hold boxes in the convention of the dataset's own files
  (:func:`file_boxes`: 1-based for OTB, LaSOT, GOT-10k; trackers themselves see 0-based boxes),
  and figures are computed in it, as the official toolkits compute them from the files.
- Resumable: a repetition whose box file exists is skipped; files are written atomically.
- Sharded: ``shard=(i, n)`` runs every n-th sequence (by name) from i; ``shard=None`` takes
  torchrun's ``RANK``/``WORLD_SIZE`` when set, else runs all.

Evaluation from result files (each returns ``{"protocol", "tracker", "sequences": {name:
figures}, "overall": figures, "attributes": {attribute: figures}}``, figures of
:mod:`deepvideo.track.metrics`)::

    evaluate_ope(tracker_dir, sequences, layout=None)
    evaluate_got10k(tracker_dir, sequences, layout=None)
    evaluate_vot(tracker_dir, sequences, eao_interval=(100, 356), burnin=10)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from deepvideo.flow.extract import shard_from_env
from deepvideo.progress import stage_line
from deepvideo.track import metrics
from deepvideo.track.base import Tracker, TrackResult
from deepvideo.track.datasets import Sequence
from deepvideo.track.layouts import Run, detect_layout, has_run, read_runs, write_run
from deepvideo.track.registry import create_tracker

TrackerSource = str | Callable[[], Tracker]


def tracker_factory(tracker: TrackerSource, name: str | None = None
                    ) -> tuple[Callable[[], Tracker], str]:
    """(factory, name) for a registered tracker name or a factory."""
    if isinstance(tracker, str):
        return (lambda: create_tracker(tracker)), name or tracker
    if not callable(tracker):
        raise TypeError(f"tracker: expected a name or a factory, got {tracker!r}")
    return tracker, name or getattr(tracker, "__name__", type(tracker).__name__)


def shard_sequences(sequences: Iterable[Sequence], shard: tuple[int, int] | None = None
                    ) -> list[Sequence]:
    """This shard's sequences: every n-th of the list sorted by name, from i."""
    i, n = shard or shard_from_env()
    if not 0 <= i < n:
        raise ValueError(f"shard {i}/{n}: need 0 <= i < n")
    return sorted(sequences, key=lambda s: s.name)[i::n]


def initial_box(seq: Sequence, index: int = 0) -> tuple[float, float, float, float]:
    box = np.asarray(seq.boxes[index], dtype=np.float64)
    if not np.isfinite(box).all() or (box[2:] <= 0).any():
        raise ValueError(f"{seq.name}: frame {index} has no usable ground-truth box to "
                         f"initialise on ({box.tolist()})")
    return tuple(float(v) for v in box)  # type: ignore[return-value]


def tracked_box(result, seq: Sequence, index: int) -> np.ndarray:
    """The box of a TrackResult as ``[4]`` floats, NaN if not finite."""
    box = np.asarray(result.box, dtype=np.float64).reshape(-1)
    if box.shape != (4,):
        raise ValueError(f"{seq.name}, frame {index}: the tracker returned {result.box!r}, "
                         "not a 4-value box")
    return box if np.isfinite(box).all() else np.full(4, np.nan)


def file_boxes(seq: Sequence) -> np.ndarray:
    """The ground truth in the pixel convention of the dataset's own files (``origin`` added
    back: 1-based for OTB, LaSOT, GOT-10k). Result files are written in it, and every figure
    is computed in it, as the official toolkits compute them on the files."""
    boxes = np.array(seq.boxes, dtype=np.float64)
    boxes[:, :2] += seq.origin
    return boxes


def frame_size(seq: Sequence) -> tuple[int, int]:
    """``(width, height)`` of the sequence's frames (from frame 0)."""
    height, width = seq.frame(0).shape[:2]
    return width, height


def track_ope(tracker: Tracker, seq: Sequence, on_frame: Callable[[int], None] | None = None,
              on_result: Callable[[int, TrackResult], None] | None = None) -> Run:
    """One pass over ``seq``: boxes (frame 0 the initial box), times and the tracker's scores
    (frames read in order, so a video is decoded once); ``on_frame(index)`` after each frame,
    ``on_result(index, result)`` with each tracked frame's whole result (masks, extras)."""
    n = len(seq)
    boxes, times, scores = np.full((n, 4), np.nan), np.full(n, np.nan), np.full(n, np.nan)
    boxes[0] = init = initial_box(seq)
    for index, frame in enumerate(seq.frames()):
        start = time.perf_counter()
        if index == 0:
            tracker.initialize(frame, init)
        else:
            result = tracker.track(frame)
            boxes[index] = tracked_box(result, seq, index)
            scores[index] = float(result.score)
            if on_result is not None:
                on_result(index, result)
        times[index] = time.perf_counter() - start
        if on_frame is not None:
            on_frame(index)
    return Run(boxes, times, scores=scores)


def track_vot(tracker: Tracker, seq: Sequence, skip_initialize: int = metrics.VOT_SKIP_INITIALIZE
              ) -> Run:
    """One reset-based run over ``seq`` (see the module docstring)."""
    n, size, gt = len(seq), frame_size(seq), file_boxes(seq)
    boxes, times = np.full((n, 4), np.nan), np.full(n, np.nan)
    codes = np.full(n, metrics.VOT_SKIPPED)
    index = 0
    while index < n:
        while index < n and not np.isfinite(gt[index]).all():
            index += 1
        if index >= n:
            break
        start = time.perf_counter()
        tracker.initialize(seq.frame(index), initial_box(seq, index))
        times[index], codes[index] = time.perf_counter() - start, metrics.VOT_INIT
        index += 1
        while index < n:
            frame = seq.frame(index)
            start = time.perf_counter()
            result = tracker.track(frame)
            times[index] = time.perf_counter() - start
            box = tracked_box(result, seq, index)
            if metrics.vot_overlap(box[None] + [seq.origin, seq.origin, 0, 0], gt[index][None],
                                   size)[0] <= 0:
                codes[index] = metrics.VOT_FAILURE
                index += skip_initialize
                break
            codes[index] = metrics.VOT_TRACKED if np.isfinite(box).all() else metrics.VOT_SKIPPED
            boxes[index] = box
            index += 1
    return Run(boxes, times, codes)


def _run(tracker: TrackerSource, sequences, result_dir, name, layout, repetitions, shard,
         progress, one_run: Callable[[Tracker, Sequence], Run]) -> list[str]:
    if repetitions < 1:
        raise ValueError(f"repetitions must be >= 1, got {repetitions}")
    factory, name = tracker_factory(tracker, name)
    tracker_dir = Path(result_dir) / name
    mine = shard_sequences(sequences, shard)
    done = []
    for number, seq in enumerate(mine, start=1):
        todo = [r for r in range(1, repetitions + 1) if not has_run(tracker_dir, layout, seq.name, r)]
        for repetition in todo:
            run = one_run(factory(), seq)
            write_run(tracker_dir, layout, seq.name, repetition, run.shifted(seq.origin))
            if progress:
                fps = metrics.fps_of(run.times)
                stage_line(f"{name} [{number}/{len(mine)}] {seq.name} #{repetition}: "
                           f"{len(seq)} frames, {fps:.1f} fps")
        if not todo and progress:
            stage_line(f"{name} [{number}/{len(mine)}] {seq.name}: done before, skipped")
        if todo:
            done.append(seq.name)
    return done


def run_ope(tracker: TrackerSource, sequences: Iterable[Sequence], result_dir, *,
            name: str | None = None, layout: str = "otb", repetitions: int = 1,
            shard: tuple[int, int] | None = None, progress: bool = True) -> list[str]:
    """One-pass evaluation runs; see the module docstring."""
    if layout == "vot":
        raise ValueError("run_ope writes one-pass layouts (otb, got10k); use run_vot for VOT")
    return _run(tracker, sequences, result_dir, name, layout, repetitions, shard, progress,
                track_ope)


def run_got10k(tracker: TrackerSource, sequences: Iterable[Sequence], result_dir, *,
               name: str | None = None, repetitions: int = 3,
               shard: tuple[int, int] | None = None, progress: bool = True) -> list[str]:
    """GOT-10k runs: OPE in the got10k layout, 3 repetitions by default (as the toolkit)."""
    return run_ope(tracker, sequences, result_dir, name=name, layout="got10k",
                   repetitions=repetitions, shard=shard, progress=progress)


def run_vot(tracker: TrackerSource, sequences: Iterable[Sequence], result_dir, *,
            name: str | None = None, repetitions: int = 1,
            skip_initialize: int = metrics.VOT_SKIP_INITIALIZE,
            shard: tuple[int, int] | None = None, progress: bool = True) -> list[str]:
    """VOT reset-based runs in the vot layout; see the module docstring."""
    if skip_initialize < 1:
        raise ValueError(f"skip_initialize must be >= 1, got {skip_initialize}")
    return _run(tracker, sequences, result_dir, name, "vot", repetitions, shard, progress,
                lambda t, s: track_vot(t, s, skip_initialize))


# ----------------------------------------------------------------------------- evaluation

def _evaluation(protocol: str, tracker_dir, sequences, per_sequence: dict, summarize) -> dict:
    subsets = metrics.attribute_subsets({s.name: s.attributes for s in sequences})
    return {"protocol": protocol, "tracker": Path(tracker_dir).name, "sequences": per_sequence,
            "overall": summarize(per_sequence),
            "attributes": {a: summarize({n: per_sequence[n] for n in names})
                           for a, names in subsets.items()}}


def _runs(tracker_dir, layout, seq: Sequence) -> list[Run]:
    runs = read_runs(tracker_dir, layout, seq.name)
    for run in runs:
        if len(run.boxes) != len(seq):
            raise ValueError(f"{tracker_dir}: {seq.name} has {len(run.boxes)} result lines for "
                             f"{len(seq)} frames")
    return runs


def evaluate_ope(tracker_dir, sequences: Iterable[Sequence], layout: str | None = None) -> dict:
    """OTB-mode figures of the results in ``tracker_dir`` (several repetitions: per-sequence
    curves averaged over them)."""
    sequences = list(sequences)
    layout = layout or detect_layout(tracker_dir)
    per_sequence = {}
    for seq in sequences:
        runs = _runs(tracker_dir, layout, seq)
        times = [r.times for r in runs if r.times is not None]
        results = [metrics.ope_sequence(r.boxes, file_boxes(seq), seq.absent) for r in runs]
        figures = {key: np.mean([r[key] for r in results], axis=0)
                   for key in ("success_curve", "precision_curve", "norm_precision_curve")}
        figures.update({key: float(np.mean([r[key] for r in results]))
                        for key in ("auc", "success_rate", "precision", "norm_precision")})
        figures["fps"] = metrics.fps_of(np.concatenate(times)) if times else float("nan")
        figures["frames"] = results[0]["frames"]
        per_sequence[seq.name] = figures
    return _evaluation("ope", tracker_dir, sequences, per_sequence, metrics.ope_summary)


def evaluate_got10k(tracker_dir, sequences: Iterable[Sequence], layout: str | None = None
                    ) -> dict:
    """GOT-10k figures (AO, SR0.5, SR0.75, fps) of the results in ``tracker_dir``."""
    sequences = list(sequences)
    layout = layout or detect_layout(tracker_dir)
    per_sequence, all_times = {}, {}
    for seq in sequences:
        runs = _runs(tracker_dir, layout, seq)
        all_times[seq.name] = [r.times for r in runs if r.times is not None]
        per_sequence[seq.name] = metrics.got10k_sequence(
            [r.boxes for r in runs], file_boxes(seq), seq.absent, frame_size(seq), all_times[seq.name])

    def summarize(subset: dict) -> dict:
        return metrics.got10k_summary(subset, [t for n in subset for t in all_times[n]])

    return _evaluation("got10k", tracker_dir, sequences, per_sequence, summarize)


def evaluate_vot(tracker_dir, sequences: Iterable[Sequence],
                 eao_interval=metrics.VOT2018_EAO_INTERVAL, burnin: int = metrics.VOT_BURNIN
                 ) -> dict:
    """VOT accuracy, robustness and EAO of the results in ``tracker_dir`` (vot layout); the
    per-attribute figures have no EAO (an attribute's sequences may be too short for the
    interval)."""
    sequences = list(sequences)
    per_sequence = {}
    for seq in sequences:
        runs = _runs(tracker_dir, "vot", seq)
        per_sequence[seq.name] = metrics.vot_sequence([(r.codes, r.boxes) for r in runs],
                                                      file_boxes(seq), frame_size(seq), burnin)
        fps = [r.times for r in runs if r.times is not None]
        per_sequence[seq.name]["fps"] = metrics.fps_of(np.concatenate(fps)) if fps else np.nan
    overall = metrics.vot_summary(per_sequence, eao_interval)
    evaluation = _evaluation("vot", tracker_dir, sequences, per_sequence,
                             lambda subset: metrics.vot_summary(subset, None))
    return {**evaluation, "overall": overall}
