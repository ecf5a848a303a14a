"""Smoke benchmark: ECO-HC against OpenCV's CSRT (``opencv_csrt``) on the two real sequences in
/work/shared/data/tracking (Crossing, OTB format; bag, VOT format).

Prints, per tracker and sequence, the success AUC (OTB definition: success rate over IoU
thresholds ``linspace(0, 1, 21)``, IoU strictly greater, AUC = mean), the tracking speed
(frames after the first per second of ``track`` calls) and the speed over the whole sequence
(``initialize`` included), each the median of ``--repeats`` runs (the trackers run in turn, so
both see the same machine load); then the mean AUC over the sequences and each tracker's
speed relative to CSRT.

    PYTHONPATH=src python benchmarks/eco_smoke.py [--threads 2] [--torch-threads N] [--repeats 3]
        [--trackers eco_hc eco_hc:use_scale_filter=False opencv_csrt]

``--threads`` is OpenCV's thread count and, unless ``--torch-threads`` says otherwise, torch's.
On a machine shared with other work, torch's intra-op threads wait on each other (ECO's
tensors are small), so one torch thread can be much faster than two.
"""

from __future__ import annotations

import argparse
import ast
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from deepvideo.track.boxes import iou
from deepvideo.track.datasets import load_sequence
from deepvideo.track.registry import create_tracker
from track_cf_smoke import success_auc

SEQUENCES = ("Crossing", "bag")


def sequence_auc(predicted: np.ndarray, truth: np.ndarray) -> float:
    """OTB success AUC over the annotated frames."""
    known = np.isfinite(truth).all(1)
    return success_auc(iou(predicted[known], truth[known]))


def run(tracker, frames: list[np.ndarray], first_box) -> tuple[np.ndarray, float, float]:
    """Boxes for every frame (the first is the given box), the fps of ``track`` and the fps
    over all frames with ``initialize``."""
    begin = time.perf_counter()
    tracker.initialize(frames[0], tuple(first_box))
    boxes = [tuple(first_box)]
    start = time.perf_counter()
    for frame in frames[1:]:
        boxes.append(tracker.track(frame).box)
    end = time.perf_counter()
    return (np.array(boxes, dtype=np.float64), (len(frames) - 1) / (end - start),
            len(frames) / (end - begin))


def make(spec: str):
    """A registered tracker from ``name`` or ``name:key=value,...`` (values as literals)."""
    name, _, options = spec.partition(":")
    overrides = {}
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        overrides[key] = ast.literal_eval(value)
    return create_tracker(name, **overrides)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/tracking"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trackers", nargs="+", default=["eco_hc", "opencv_csrt"])
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads or args.threads)
    cv2.setNumThreads(args.threads)
    aucs: dict[str, list[float]] = {name: [] for name in args.trackers}
    speeds: dict[str, list[float]] = {name: [] for name in args.trackers}
    for name in SEQUENCES:
        sequence = load_sequence(args.data / name)
        frames = list(sequence.frames())
        runs: dict[str, list] = {tracker_name: [] for tracker_name in args.trackers}
        for _ in range(args.repeats):
            for tracker_name in args.trackers:
                runs[tracker_name].append(run(make(tracker_name), frames, sequence.boxes[0]))
        for tracker_name, results in runs.items():
            auc = sequence_auc(results[0][0], sequence.boxes)
            fps = float(np.median([r[1] for r in results]))
            overall = float(np.median([r[2] for r in results]))
            aucs[tracker_name].append(auc)
            speeds[tracker_name].append(fps)
            print(f"{name:10s} {tracker_name:12s} AUC {auc:.3f}  {fps:6.1f} fps "
                  f"({overall:6.1f} fps with initialize)", flush=True)
    for tracker_name in args.trackers:
        relative = ""
        if "opencv_csrt" in speeds and tracker_name != "opencv_csrt":
            ratios = np.array(speeds[tracker_name]) / np.array(speeds["opencv_csrt"])
            relative = "  speed / CSRT: " + ", ".join(f"{r:.2f}" for r in ratios)
        print(f"mean       {tracker_name:12s} AUC {np.mean(aucs[tracker_name]):.3f}{relative}")


if __name__ == "__main__":
    main()
