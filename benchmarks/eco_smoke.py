"""Smoke benchmark: ECO-HC against OpenCV's CSRT on the two real sequences in
/work/shared/data/tracking (Crossing, OTB format; bag, VOT format).

Prints, per tracker and sequence, the success AUC (OTB definition: success rate over IoU
thresholds ``linspace(0, 1, 21)``, IoU strictly greater, AUC = mean) and the tracking speed
(frames after the first, per second of ``track`` calls), and the mean AUC of the two.

    PYTHONPATH=src python benchmarks/eco_smoke.py [--threads 2] [--data DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from deepvideo.track.boxes import iou
from deepvideo.track.datasets import load_sequence
from deepvideo.track.registry import create_tracker

SEQUENCES = ("Crossing", "bag")


def success_auc(predicted: np.ndarray, truth: np.ndarray) -> float:
    """OTB success AUC: mean over thresholds linspace(0, 1, 21) of the fraction of frames with
    IoU strictly above the threshold."""
    known = np.isfinite(truth).all(1)
    overlaps = iou(predicted[known], truth[known])
    thresholds = np.linspace(0, 1, 21)
    return float(np.mean([(overlaps > t).mean() for t in thresholds]))


class CSRT:
    """OpenCV's CSRT behind the project's tracker interface (frames converted to BGR)."""

    def initialize(self, frame, box):
        self.tracker = cv2.TrackerCSRT_create()
        self.tracker.init(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), tuple(int(round(v)) for v in box))
        self.box = tuple(box)

    def track(self, frame):
        ok, box = self.tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if ok:
            self.box = tuple(float(v) for v in box)
        return self.box


def run(tracker, frames: list[np.ndarray], first_box) -> tuple[np.ndarray, float]:
    """Boxes for every frame (the first is the given box) and the tracking fps."""
    tracker.initialize(frames[0], tuple(first_box))
    boxes = [tuple(first_box)]
    start = time.perf_counter()
    for frame in frames[1:]:
        result = tracker.track(frame)
        boxes.append(getattr(result, "box", result))
    elapsed = time.perf_counter() - start
    return np.array(boxes, dtype=np.float64), (len(frames) - 1) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/tracking"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trackers", nargs="+", default=["eco_hc", "csrt"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    aucs: dict[str, list[float]] = {name: [] for name in args.trackers}
    for name in SEQUENCES:
        sequence = load_sequence(args.data / name)
        frames = list(sequence.frames())
        for tracker_name in args.trackers:
            tracker = CSRT() if tracker_name == "csrt" else create_tracker(tracker_name)
            boxes, fps = run(tracker, frames, sequence.boxes[0])
            auc = success_auc(boxes, sequence.boxes)
            aucs[tracker_name].append(auc)
            print(f"{name:10s} {tracker_name:8s} AUC {auc:.3f}  {fps:6.1f} fps", flush=True)
    for tracker_name, values in aucs.items():
        print(f"mean       {tracker_name:8s} AUC {np.mean(values):.3f}")


if __name__ == "__main__":
    main()
