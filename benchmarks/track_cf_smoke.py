"""Smoke run of the classical trackers on the two real sequences in shared/data/tracking.

For each tracker and sequence (one-pass evaluation from the first ground-truth box): mean IoU,
success AUC (GOT-10k toolkit's OTB definition: IoU > t over ``linspace(0, 1, 21)``, averaged)
and frames per second of ``track()`` (frames decoded beforehand, not timed). Prints a markdown
table; writes nothing.

    OMP_NUM_THREADS=2 python benchmarks/track_cf_smoke.py [--data DIR] [--threads 2]
        [--trackers mosse kcf ...]

``--threads`` sets OpenCV's thread count; numpy's BLAS follows ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tracking"
SEQUENCES = ("Crossing", "bag")
TRACKERS = ("mosse", "kcf", "dcf", "dsst", "csrdcf", "particle", "opencv_mosse", "opencv_kcf",
            "opencv_csrt", "opencv_mil")


def success_auc(overlaps: np.ndarray) -> float:
    thresholds = np.linspace(0, 1, 21)
    return float(np.mean([(overlaps > t).mean() for t in thresholds]))


def evaluate(name: str, frames: list[np.ndarray], boxes: np.ndarray) -> tuple[float, float, float]:
    from deepvideo.track import create_tracker
    from deepvideo.track.boxes import iou

    tracker = create_tracker(name)
    tracker.initialize(frames[0], tuple(boxes[0]))
    predicted = [boxes[0]]
    start = time.perf_counter()
    for frame in frames[1:]:
        predicted.append(np.asarray(tracker.track(frame).box))
    seconds = time.perf_counter() - start
    valid = np.isfinite(boxes).all(axis=1)
    overlaps = iou(np.array(predicted)[valid], boxes[valid])
    return float(overlaps.mean()), success_auc(overlaps), (len(frames) - 1) / seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DATA,
                        help="folder holding the Crossing and bag sequences")
    parser.add_argument("--trackers", nargs="+", default=list(TRACKERS))
    args = parser.parse_args(argv)
    import cv2

    from deepvideo.track.datasets import load_sequence
    cv2.setNumThreads(args.threads)
    sequences = {}
    for name in SEQUENCES:
        sequence = load_sequence(args.data / name)
        sequences[name] = (list(sequence.frames()), sequence.boxes)
    header = "| tracker | " + " | ".join(f"{s} IoU | {s} AUC | {s} fps" for s in SEQUENCES) + " |"
    print(header)
    print("|" + "---|" * (1 + 3 * len(SEQUENCES)))
    for tracker in args.trackers:
        cells = []
        for name in SEQUENCES:
            mean_iou, auc, fps = evaluate(tracker, *sequences[name])
            cells += [f"{mean_iou:.3f}", f"{auc:.3f}", f"{fps:.0f}"]
        print(f"| {tracker} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
