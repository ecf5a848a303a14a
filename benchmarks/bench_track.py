"""Single-object trackers on the real sequences of ``../shared/data/tracking`` (Crossing, OTB
format; bag, VOT format), one-pass evaluation from the first ground-truth box, in one run:
success AUC and precision at 20 px (GOT-10k toolkit OTB mode, :mod:`deepvideo.track.metrics`)
and frames per second of the tracker's own calls (frames decoded beforehand, not timed), each
tracker beside OpenCV's CSRT, KCF and MOSSE. Goal (issue "Tracking I"): ECO-HC's AUC above
OpenCV CSRT's and >= 40 fps, with 2 threads.

    python benchmarks/bench_track.py [--threads 2] [--trackers eco_hc mosse ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from common import SHARED_DATA, write_result
from deepvideo.track import evaluate, metrics
from deepvideo.track.datasets import Sequence, load_sequence
from deepvideo.track.registry import get_tracker_info, list_trackers

SEQUENCES = ("Crossing", "bag")
PEERS = ("opencv_csrt", "opencv_kcf", "opencv_mosse")
GOAL_FPS = 40.0


class InMemory(Sequence):
    """A sequence whose frames are decoded once, before any tracker is timed."""

    def frame(self, index: int) -> np.ndarray:
        return self.__dict__["_frames"][index]

    def frames(self, start: int = 0):
        yield from self.__dict__["_frames"][start:]


def in_memory(seq: Sequence) -> InMemory:
    from dataclasses import fields

    copy = InMemory(**{f.name: getattr(seq, f.name) for f in fields(seq) if f.init})
    copy.__dict__["_frames"] = list(seq.frames())
    return copy


def score(name: str, sequences: list[Sequence]) -> dict:
    """OTB-mode figures of tracker ``name`` on ``sequences``, one run each."""
    per_sequence = {}
    for seq in sequences:
        run = evaluate.track_ope(get_tracker_info(name).factory(), seq)
        per_sequence[seq.name] = metrics.ope_sequence(run.boxes, evaluate.file_boxes(seq),
                                                      seq.absent, run.times)
    return {"sequences": per_sequence, "overall": metrics.ope_summary(per_sequence)}


def trackers_to_run(requested: list[str] | None) -> list[str]:
    if requested:
        return requested
    return [info.name for info in list_trackers(available_only=True)
            if info.name not in ("opencv_mil",)]  # MIL: not repeatable between runs (documented)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "tracking")
    parser.add_argument("--trackers", nargs="+")
    args = parser.parse_args(argv)
    import cv2

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    sequences = [in_memory(load_sequence(args.data / name)) for name in SEQUENCES]
    names = trackers_to_run(args.trackers)
    names = [n for n in names if n not in PEERS] + [p for p in PEERS if p in names]
    results = {}
    for name in names:
        results[name] = score(name, sequences)
        o = results[name]["overall"]
        print(f"{name:14s} AUC {o['auc']:.3f}  P@20 {o['precision']:.3f}  {o['fps']:.1f} fps",
              flush=True)
    rows, csrt = [], results.get("opencv_csrt", {}).get("overall")
    for name in names:
        per, o = results[name]["sequences"], results[name]["overall"]
        rows.append([name, *(round(per[s]["auc"], 3) for s in SEQUENCES), round(o["auc"], 3),
                     round(o["precision"], 3), round(o["fps"], 1),
                     round(o["fps"] / csrt["fps"], 2) if csrt else None,
                     get_tracker_info(name).paper])
    summary = {}
    if "eco_hc" in results and csrt:
        eco = results["eco_hc"]["overall"]
        summary = {"eco_hc_auc": round(eco["auc"], 3), "opencv_csrt_auc": round(csrt["auc"], 3),
                   "eco_hc_fps": round(eco["fps"], 1), "goal": f"AUC > CSRT and >= {GOAL_FPS:g} fps",
                   "met": bool(eco["auc"] > csrt["auc"] and eco["fps"] >= GOAL_FPS)}
    write_result(
        "track", title="Single-object trackers on real sequences (OPE)",
        command="python benchmarks/bench_track.py",
        description=__doc__.split("\n\n")[0].replace("\n", " ")
        + " AUC per sequence, their mean (the OTB-mode dataset figure), P@20 over both; fps "
        "is the mean over the two sequences, and its ratio to OpenCV CSRT's in the same run.",
        columns=["tracker", *(f"AUC {s}" for s in SEQUENCES), "AUC", "P@20", "fps",
                 "fps / CSRT", "paper"],
        rows=rows, summary=summary)


if __name__ == "__main__":
    main()
