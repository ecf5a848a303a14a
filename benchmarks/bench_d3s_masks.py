"""The D3S tracker's masks on sequences with ground-truth masks (e.g. a held-out split made by
``deepvideo track synth``): one pass from the first box, per frame the IoU of the tracker's
full-frame mask (``extras["mask"]``; no mask counts as empty) with the true mask, over the frames
where the target is visible; the mean over frames, per sequence and overall, with the frames
per second of the tracker's calls.

    DEEPVIDEO_D3S_WEIGHTS=runs/d3s_cpu/checkpoints/best \\
        python benchmarks/bench_d3s_masks.py data/synth_track_test [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import write_result
from deepvideo.track.datasets import load_dataset
from deepvideo.track.registry import create_tracker


def mask_iou(pred: np.ndarray | None, true: np.ndarray) -> float:
    if pred is None:
        return 0.0
    union = np.logical_or(pred, true).sum()
    return float(np.logical_and(pred, true).sum() / union) if union else 1.0


def run_sequence(sequence) -> tuple[list[float], float, int]:
    """Per-frame mask IoUs (visible frames after the first), tracking seconds, frames tracked."""
    tracker = create_tracker("d3s")
    tracker.initialize(sequence.frame(0), sequence.init_box)
    ious, seconds = [], 0.0
    for k in range(1, len(sequence)):
        frame, true = sequence.frame(k), sequence.mask(k)
        start = time.perf_counter()
        result = tracker.track(frame)
        seconds += time.perf_counter() - start
        if true.any():
            ious.append(mask_iou(result.extras.get("mask"), true))
    return ious, seconds, len(sequence) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a folder of tracking sequences with masks")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows, everything, total_s, total_n = [], [], 0.0, 0
    for sequence in load_dataset(args.dataset):
        ious, seconds, frames = run_sequence(sequence)
        rows.append([sequence.name, len(ious), float(np.mean(ious)) if ious else float("nan"),
                     frames / max(seconds, 1e-9)])
        everything += ious
        total_s, total_n = total_s + seconds, total_n + frames
        print(f"{sequence.name}: mask IoU {rows[-1][2]:.3f} over {len(ious)} frames, {rows[-1][3]:.1f} fps")
    summary = {"mean_mask_iou": float(np.mean(everything)), "fps": total_n / max(total_s, 1e-9)}
    print(f"all: mask IoU {summary['mean_mask_iou']:.3f}, {summary['fps']:.1f} fps")
    write_result("d3s_masks", title="D3S masks against ground-truth masks",
                 command=f"python benchmarks/bench_d3s_masks.py {args.dataset} --threads {args.threads}",
                 description=__doc__.split("\n\n")[0].replace("\n", " "),
                 columns=["sequence", "frames", "mask IoU", "fps"], rows=rows, summary=summary)


if __name__ == "__main__":
    main()
