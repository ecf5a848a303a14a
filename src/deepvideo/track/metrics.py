"""Tracking metrics on arrays, following the official toolkits' definitions.

All boxes are ``(x, y, w, h)`` float arrays ``[N, 4]`` (0-based pixels); ``gt`` rows are NaN
where a frame is not annotated; ``absent`` is an optional ``[N]`` bool mask of frames where the
target is not visible. A prediction with a non-finite value counts as "no box": IoU 0, centre
error infinite (a miss at every threshold), an empty region for the VOT overlap.

**OPE, OTB mode** (GOT-10k toolkit ``ExperimentOTB``; Wu et al., "Online Object Tracking: A
Benchmark", CVPR 2013 / TPAMI 2015):

- frame 0 is the initial box: the prediction there is replaced by the ground truth;
- success curve: fraction of frames with IoU **strictly greater** than each threshold of
  ``linspace(0, 1, 21)``; ``auc`` = mean of the curve; ``success_rate`` = the curve at 0.5;
- precision curve: fraction of frames with centre error ``<=`` each of 0, 1, ..., 50 pixels;
  ``precision`` = the curve at 20 px;
- normalized precision (TrackingNet, Müller et al. ECCV 2018, and LaSOT, Fan et al. CVPR 2019):
  centre error divided by the ground-truth width and height per axis, curve over
  ``linspace(0, 0.5, 51)``, ``norm_precision`` = the AUC (mean of that curve) as both papers
  rank by; the curve is kept so the value at 0.2 (pytracking's report) can be read off;
- dataset figures: the mean of the per-sequence curves (each sequence weighs the same), as
  ``ExperimentOTB.report``; ``fps`` = mean over sequences of ``mean(1 / t)`` over frames with
  ``t > 0``;
- frames whose ground truth is NaN or marked absent are left out of the curves (LaSOT /
  TrackingNet practice). OTB annotates every frame; the GOT-10k toolkit would count such
  frames as misses.

**GOT-10k mode** (``ExperimentGOT10k``; Huang et al., TPAMI 2019): IoU of frames 1..N-1 where
the target is visible, both boxes first clipped to the image (``x`` to ``[0, W]``, ``w`` to
``[0, W - x]``); all repetitions' IoUs pooled; ``ao`` = mean IoU, ``sr50`` / ``sr75`` =
fraction with IoU > 0.5 / > 0.75; dataset figures pool the IoUs of all frames of all
sequences (frame-weighted), ``fps`` = mean of ``1 / t`` over all positive times.

**VOT supervised (reset-based)** (``vot-toolkit`` ``vot.analysis.supervised``; Kristan et al.,
"The Visual Object Tracking VOT2016 challenge results" and VOT2018): a run is a list of per-frame
codes (:data:`VOT_INIT`, :data:`VOT_FAILURE`, :data:`VOT_SKIPPED`, :data:`VOT_TRACKED`) and boxes.

- overlap (:func:`vot_overlap`): the toolkit's rasterized region overlap: coordinates rounded
  half-to-even, a box covers pixels ``x .. x+w-1``, everything clipped to the image; two empty
  regions (or a union of bounds at most one pixel wide or high) overlap 1;
- accuracy: mean overlap over tracked frames, leaving out the ``burnin = 10`` frames from each
  initialisation on (the initialisation frame included), failures and skipped frames; per
  sequence the mean over repetitions; dataset: weighted by sequence length;
- failures: count of failure frames, per sequence the mean over repetitions; ``robustness``
  is the toolkit's dataset figure ``sum(failures_s * N_s) / sum(N_s)`` and ``reliability``
  its AR-plot value ``exp(-30 * robustness / mean(N_s))``;
- EAO: runs are cut into segments from each initialisation to the frame before the next
  failure (failed) or to the end (succeeded); the expected-overlap curve at length ``n`` is the
  mean over segments of the average overlap of frames 1..n of the segment (failed segments
  zero-padded, succeeded ones counted only while ``n`` is within them); EAO = the mean of the
  curve over an interval of lengths, VOT2018: :data:`VOT2018_EAO_INTERVAL` (100..356, both
  included). Ground truth given as polygons reaches here as their bounding boxes
  (:mod:`deepvideo.track.datasets`), so the overlap is that of rectangles.

Per-attribute tables (:func:`attribute_subsets`): a sequence "has" an attribute when at least
one of its frames is flagged; the attribute's figures are the dataset figures of those
sequences (OTB papers' per-attribute plots).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from deepvideo.track.boxes import as_boxes, center_error, iou

SUCCESS_THRESHOLDS = np.linspace(0, 1, 21)           # OTB mode: IoU > threshold
PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64)  # pixels, error <= threshold
PRECISION_AT = 20                                     # px, the reported precision
NORM_PRECISION_THRESHOLDS = np.linspace(0, 0.5, 51)  # TrackingNet / LaSOT
GOT10K_THRESHOLDS = np.linspace(0, 1, 101)           # GOT-10k success curve
VOT_BURNIN = 10
VOT_SKIP_INITIALIZE = 5
VOT_SENSITIVITY = 30.0
VOT2018_EAO_INTERVAL = (100, 356)

VOT_SKIPPED, VOT_INIT, VOT_FAILURE = 0, 1, 2          # the VOT result file's special codes
VOT_TRACKED = -1                                      # a frame with a box


def valid_frames(gt, absent=None) -> np.ndarray:
    """``[N]`` bool: frames with a finite ground-truth box and the target not marked absent."""
    gt = as_boxes(gt)
    valid = np.isfinite(gt).all(axis=1)
    if absent is not None:
        valid &= ~np.asarray(absent, dtype=bool)
    return valid


def overlaps(pred, gt) -> np.ndarray:
    """IoU per frame; 0 where either box is not finite."""
    pred, gt = as_boxes(pred), as_boxes(gt)
    finite = np.isfinite(pred).all(axis=1) & np.isfinite(gt).all(axis=1)
    out = np.zeros(len(pred))
    out[finite] = iou(pred[finite], gt[finite])
    return out


def center_errors(pred, gt, normalized: bool = False) -> np.ndarray:
    """Centre distance per frame in pixels (``normalized``: each axis divided by the
    ground-truth width / height); infinite where either box is not finite."""
    pred, gt = as_boxes(pred), as_boxes(gt)
    finite = np.isfinite(pred).all(axis=1) & np.isfinite(gt).all(axis=1)
    out = np.full(len(pred), np.inf)
    if normalized:
        delta = (pred[finite, :2] + pred[finite, 2:] / 2 - gt[finite, :2] - gt[finite, 2:] / 2)
        out[finite] = np.linalg.norm(delta / gt[finite, 2:], axis=1)
    else:
        out[finite] = center_error(pred[finite], gt[finite])
    return out


def success_curve(ious, thresholds=SUCCESS_THRESHOLDS) -> np.ndarray:
    """Fraction of ``ious`` strictly greater than each threshold."""
    ious = np.asarray(ious, dtype=np.float64)
    if ious.size == 0:
        raise ValueError("success curve of no frames")
    return (ious[:, None] > np.asarray(thresholds)[None]).mean(axis=0)


def precision_curve(errors, thresholds=PRECISION_THRESHOLDS) -> np.ndarray:
    """Fraction of centre ``errors`` at most each threshold."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.size == 0:
        raise ValueError("precision curve of no frames")
    return (errors[:, None] <= np.asarray(thresholds)[None]).mean(axis=0)


def fps_of(times) -> float:
    """``mean(1 / t)`` over finite ``t > 0``; NaN when there is none."""
    t = np.asarray(times, dtype=np.float64).ravel()
    t = t[np.isfinite(t) & (t > 0)]
    return float(np.mean(1.0 / t)) if t.size else math.nan


def _check_lengths(pred, gt, what: str) -> None:
    if len(pred) != len(gt):
        raise ValueError(f"{what}: {len(pred)} predicted boxes for {len(gt)} frames")


# ----------------------------------------------------------------------------- OPE (OTB mode)

def ope_sequence(pred, gt, absent=None, times=None) -> dict:
    """OTB-mode figures of one sequence (see the module docstring): ``success_curve``,
    ``precision_curve``, ``norm_precision_curve`` (arrays), ``auc``, ``success_rate``,
    ``precision``, ``norm_precision``, ``fps``, ``frames`` (frames scored)."""
    pred, gt = as_boxes(pred).copy(), as_boxes(gt)
    _check_lengths(pred, gt, "ope")
    pred[0] = gt[0]
    valid = valid_frames(gt, absent)
    if not valid.any():
        raise ValueError("ope: no frame has a ground-truth box")
    succ = success_curve(overlaps(pred[valid], gt[valid]))
    prec = precision_curve(center_errors(pred[valid], gt[valid]))
    norm = precision_curve(center_errors(pred[valid], gt[valid], normalized=True),
                           NORM_PRECISION_THRESHOLDS)
    return {"success_curve": succ, "precision_curve": prec, "norm_precision_curve": norm,
            **_ope_scores(succ, prec, norm),
            "fps": fps_of(times) if times is not None else math.nan, "frames": int(valid.sum())}


def _ope_scores(succ, prec, norm) -> dict:
    return {"auc": float(np.mean(succ)), "success_rate": float(succ[len(succ) // 2]),
            "precision": float(prec[PRECISION_AT]), "norm_precision": float(np.mean(norm))}


def ope_summary(per_sequence: Mapping[str, dict]) -> dict:
    """Dataset figures from :func:`ope_sequence` results: curves averaged over sequences,
    scores read off the mean curves, ``fps`` the mean over sequences that have one."""
    if not per_sequence:
        raise ValueError("ope: no sequences to summarize")
    results = list(per_sequence.values())
    curves = {key: np.mean([r[key] for r in results], axis=0)
              for key in ("success_curve", "precision_curve", "norm_precision_curve")}
    speeds = [r["fps"] for r in results if np.isfinite(r["fps"])]
    return {**curves, **_ope_scores(curves["success_curve"], curves["precision_curve"],
                                    curves["norm_precision_curve"]),
            "fps": float(np.mean(speeds)) if speeds else math.nan,
            "sequences": len(results), "frames": int(sum(r["frames"] for r in results))}


# ----------------------------------------------------------------------------- GOT-10k

def clip_to_image(boxes, size) -> np.ndarray:
    """Boxes clipped to a ``size = (width, height)`` image as the GOT-10k toolkit bounds them:
    ``x`` into ``[0, W]``, then ``w`` into ``[0, W - x]`` (same for y, h)."""
    boxes = as_boxes(boxes).copy()
    for axis, limit in enumerate(size):
        boxes[:, axis] = np.clip(boxes[:, axis], 0, limit)
        boxes[:, axis + 2] = np.clip(boxes[:, axis + 2], 0, limit - boxes[:, axis])
    return boxes


def got10k_sequence(preds: Sequence, gt, absent=None, size=None, times=None) -> dict:
    """GOT-10k figures of one sequence from one ``[N, 4]`` prediction per repetition:
    ``ious`` (pooled over repetitions, frames 1.. with a visible target), ``ao``, ``sr50``,
    ``sr75``, ``fps`` (``times``: per repetition, or None). ``size = (width, height)`` bounds
    the boxes; None leaves them unclipped."""
    gt = as_boxes(gt)
    if not len(preds):
        raise ValueError("got10k: no repetitions")
    valid = valid_frames(gt, absent)[1:]
    pooled = []
    for pred in preds:
        pred = as_boxes(pred)
        _check_lengths(pred, gt, "got10k")
        a, b = pred[1:][valid], gt[1:][valid]
        if size is not None:
            a, b = clip_to_image(a, size), clip_to_image(b, size)
        pooled.append(overlaps(a, b))
    ious = np.concatenate(pooled)
    if not ious.size:
        raise ValueError("got10k: no frame after the first has a visible target")
    return {"ious": ious, **_got10k_scores(ious),
            "fps": fps_of(np.concatenate([np.ravel(t) for t in times])) if times else math.nan,
            "frames": int(valid.sum())}


def _got10k_scores(ious) -> dict:
    return {"ao": float(np.mean(ious)), "sr50": float(np.mean(ious > 0.5)),
            "sr75": float(np.mean(ious > 0.75))}


def got10k_summary(per_sequence: Mapping[str, dict], times: Sequence | None = None) -> dict:
    """Dataset figures pooling every frame's IoU (and every positive time, ``times``: all
    time arrays, for ``fps``); ``success_curve`` over :data:`GOT10K_THRESHOLDS`."""
    if not per_sequence:
        raise ValueError("got10k: no sequences to summarize")
    ious = np.concatenate([r["ious"] for r in per_sequence.values()])
    fps = fps_of(np.concatenate([np.ravel(t) for t in times])) if times else math.nan
    return {**_got10k_scores(ious), "success_curve": success_curve(ious, GOT10K_THRESHOLDS),
            "fps": fps, "sequences": len(per_sequence), "frames": int(ious.size)}


# ----------------------------------------------------------------------------- VOT

def _pixel_bounds(boxes) -> tuple[np.ndarray, np.ndarray]:
    """Rounded boxes as inclusive pixel bounds ``[N, 4]`` (left, top, right, bottom) and an
    ``empty`` mask (non-finite boxes; their bounds are 0, as the toolkit's empty region)."""
    boxes = np.round(as_boxes(boxes))
    empty = ~np.isfinite(boxes).all(axis=1)
    boxes = np.where(empty[:, None], 0.0, boxes)
    bounds = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:] - 1], axis=1)
    return np.where(empty[:, None], 0.0, bounds), empty


def vot_overlap(pred, gt, size) -> np.ndarray:
    """The VOT toolkit's region overlap of rectangles, per frame (see the module docstring),
    inside an image of ``size = (width, height)`` (the toolkit's supervised analysis always
    bounds the overlap by the image)."""
    (a, a_empty), (b, b_empty) = _pixel_bounds(pred), _pixel_bounds(gt)
    if len(a) != len(b):
        raise ValueError(f"vot overlap: {len(a)} predicted boxes for {len(b)} frames")
    union = np.concatenate([np.minimum(a[:, :2], b[:, :2]), np.maximum(a[:, 2:], b[:, 2:])], 1)
    raster = np.concatenate([np.maximum(union[:, :2], 0),
                             np.minimum(union[:, 2:], np.asarray(size, dtype=np.float64) - 1)], 1)

    def pixels(lo, hi):  # pixel count of [lo, hi] (inclusive) per axis, inside the raster
        lo, hi = np.maximum(lo, raster[:, :2]), np.minimum(hi, raster[:, 2:])
        return np.prod(np.clip(hi - lo + 1, 0, None), axis=1)

    area_a = np.where(a_empty, 0.0, pixels(a[:, :2], a[:, 2:]))
    area_b = np.where(b_empty, 0.0, pixels(b[:, :2], b[:, 2:]))
    inter = np.where(a_empty | b_empty, 0.0,
                     pixels(np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, 2:], b[:, 2:])))
    total = area_a + area_b - inter
    out = np.divide(inter, total, out=np.zeros_like(inter), where=total > 0)
    out[(raster[:, 0] >= raster[:, 2]) | (raster[:, 1] >= raster[:, 3])] = 0.0
    out[(union[:, 0] >= union[:, 2]) | (union[:, 1] >= union[:, 3])] = 1.0
    return out


def vot_run_overlaps(codes, boxes, gt, size) -> np.ndarray:
    """Overlap per frame of one run; frames with a code other than :data:`VOT_TRACKED` are
    empty regions (as the toolkit treats special regions)."""
    codes, boxes = np.asarray(codes), as_boxes(boxes).copy()
    _check_lengths(boxes, as_boxes(gt), "vot")
    boxes[codes != VOT_TRACKED] = np.nan
    return vot_overlap(boxes, gt, size)


def vot_accuracy(codes, run_overlaps, burnin: int = VOT_BURNIN) -> tuple[float, int]:
    """(mean overlap, frames used) of one run: tracked frames outside the ``burnin`` frames
    from each initialisation; ``(0.0, 0)`` when no frame is left."""
    codes = np.asarray(codes)
    mask = codes == VOT_TRACKED
    for start in np.flatnonzero(codes == VOT_INIT):
        mask[start:start + burnin] = False
    if not mask.any():
        return 0.0, 0
    return float(np.mean(np.asarray(run_overlaps)[mask])), int(mask.sum())


def eao_segments(codes, run_overlaps) -> list[tuple[np.ndarray, bool]]:
    """One run cut into ``(overlaps, failed)`` segments: initialisation to the frame before
    each failure, and the last initialisation to the end when no failure follows it."""
    codes, run_overlaps = np.asarray(codes), np.asarray(run_overlaps, dtype=np.float64)
    fails, inits = np.flatnonzero(codes == VOT_FAILURE), np.flatnonzero(codes == VOT_INIT)
    if not len(fails):
        return [(run_overlaps, False)]
    segments = [(run_overlaps[inits[i]:fails[i]], True) for i in range(len(fails))]
    if len(inits) > len(fails):
        segments.append((run_overlaps[inits[-1]:], False))
    return segments


def eao_curve(segments: Sequence[tuple[np.ndarray, bool]]) -> np.ndarray:
    """Expected average overlap for each sequence length ``0 .. L-1`` (``L`` the longest
    segment); element ``n >= 1`` averages frames 1..n of every segment (see module docstring)."""
    if not segments:
        raise ValueError("eao: no segments")
    length = max(len(o) for o, _ in segments)
    padded = np.zeros((len(segments), length))
    weight = np.zeros((len(segments), length))
    for row, (o, failed) in enumerate(segments):
        padded[row, :len(o)] = o
        weight[row, :length if failed else len(o)] = 1.0
    running = padded.copy()
    running[:, 1:] = np.cumsum(padded[:, 1:], axis=1) / np.arange(1, length)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (running * weight).sum(axis=0) / weight.sum(axis=0)


def eao_score(curve, interval=VOT2018_EAO_INTERVAL) -> float:
    """Mean of the EAO ``curve`` over lengths ``low..high`` (both included)."""
    low, high = interval
    if not 0 <= low <= high:
        raise ValueError(f"eao interval {interval}: need 0 <= low <= high")
    if high >= len(curve):
        raise ValueError(f"eao interval {interval}: the longest run segment has {len(curve)} "
                         "frames; pass a shorter interval for short sequences")
    return float(np.mean(curve[low:high + 1]))


def vot_sequence(runs: Sequence[tuple], gt, size, burnin: int = VOT_BURNIN) -> dict:
    """VOT figures of one sequence from its runs (one ``(codes, boxes)`` per repetition):
    ``accuracy`` and ``failures`` (means over repetitions), ``frames``, ``segments``."""
    if not len(runs):
        raise ValueError("vot: no repetitions")
    accuracy, failures, segments = 0.0, 0.0, []
    for codes, boxes in runs:
        run_overlaps = vot_run_overlaps(codes, boxes, gt, size)
        accuracy += vot_accuracy(codes, run_overlaps, burnin)[0]
        failures += int(np.sum(np.asarray(codes) == VOT_FAILURE))
        segments += eao_segments(codes, run_overlaps)
    return {"accuracy": accuracy / len(runs), "failures": failures / len(runs),
            "frames": len(gt), "segments": segments}


def vot_summary(per_sequence: Mapping[str, dict], eao_interval=VOT2018_EAO_INTERVAL) -> dict:
    """Dataset figures: length-weighted ``accuracy`` and ``robustness``, ``reliability``,
    total ``failures``, the ``eao_curve`` and ``eao`` over ``eao_interval`` (None: no EAO),
    ``fps`` (mean over sequences of their ``"fps"`` where given)."""
    if not per_sequence:
        raise ValueError("vot: no sequences to summarize")
    results = list(per_sequence.values())
    lengths = np.array([r["frames"] for r in results], dtype=np.float64)
    accuracy = float(np.sum([r["accuracy"] for r in results] * lengths) / lengths.sum())
    robustness = float(np.sum([r["failures"] for r in results] * lengths) / lengths.sum())
    curve = eao_curve([s for r in results for s in r["segments"]])
    speeds = [r["fps"] for r in results if np.isfinite(r.get("fps", math.nan))]
    return {"accuracy": accuracy, "robustness": robustness,
            "reliability": math.exp(-VOT_SENSITIVITY * robustness / lengths.mean()),
            "failures": float(sum(r["failures"] for r in results)), "eao_curve": curve,
            "eao": eao_score(curve, eao_interval) if eao_interval else math.nan,
            "eao_interval": list(eao_interval) if eao_interval else None,
            "fps": float(np.mean(speeds)) if speeds else math.nan,
            "sequences": len(results), "frames": int(lengths.sum())}


# ----------------------------------------------------------------------------- attributes

def attribute_subsets(attributes: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, list[str]]:
    """``{attribute: [sequence names]}`` from ``{sequence: {attribute: [N] bool}}``: the
    sequences with at least one flagged frame, for each attribute some sequence has."""
    subsets: dict[str, list[str]] = {}
    for name, flags in attributes.items():
        for attribute, frames in flags.items():
            if np.asarray(frames, dtype=bool).any():
                subsets.setdefault(attribute, []).append(name)
    return dict(sorted(subsets.items()))
