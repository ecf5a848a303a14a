"""Improved dense trajectories: our vectorised extractor against a per-point transcription.

One run over the real videos in ``../shared/data/video/`` (each resized to a short side of
240 px, the UCF101 resolution, first ``--frames`` frames): trajectories per second and
descriptors per second (4 histogram descriptors — HOG, HOF, MBHx, MBHy — per tracked point and
frame) of ``deepvideo.features.extract_trajectories`` and of the peer, ``idt_peer.py``: a plain
NumPy/OpenCV transcription of the reference DenseTrackStab loop that visits one point at a
time. Both use the same flow (Farnebäck), pyramid and homography calls, at one thread; the run
checks that both keep the same trajectories. Also reported, counted as the authors' release
counts (``deepvideo.features.trajstats``): kept trajectories per frame — per frame of the clip
and per frame that can end a trajectory (frames L..N-1: the rate of a long video, i.e. the
release's features per video over its frames) —, active points per frame (points tracked from
one frame to the next, kept or not), the share of the W = 5 sampling grid over the scale pyramid
they fill, the mean length of the kept trajectories (px of the original frame, the release's
``length`` field), and the shares of the finished trajectories removed as static, erratic and
camera motion. ``--skip-peer`` measures ours only and writes ``idt_stats.json``; every run also
writes ``idt_reference.json``, these statistics against the published (or release-implied)
figures of ``idt_reference.py`` with a verdict each.

    python benchmarks/bench_idt.py [--frames 40] [--skip-peer]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, Timer, write_result  # noqa: E402
from deepvideo.features import TrajectoryParams, extract_trajectories  # noqa: E402
from deepvideo.features.trajstats import grid_cells, run_counts, summarize  # noqa: E402
from idt_peer import peer_extract  # noqa: E402
from idt_reference import COLUMNS as REFERENCE_COLUMNS  # noqa: E402
from idt_reference import reference_table  # noqa: E402

VIDEOS = ("test.avi", "test.mp4", "demo.mp4", "bikes.mp4", "bigbuckbunny.mp4")


def read(name: str, frames: int) -> np.ndarray:
    from deepvideo.io import VideoReader

    with VideoReader(SHARED_DATA / "video" / name, short_side=240) as reader:
        out = [f.numpy() for _, f in zip(range(frames), reader, strict=False)]
    return np.stack(out)


def run_video(name: str, frames: int, skip_peer: bool) -> dict:
    clip = read(name, frames)
    params = TrajectoryParams()
    with Timer() as t_ours:
        tr = extract_trajectories(clip, params)
    counts = run_counts(tr)
    h, w = clip.shape[1:3]
    row = {"video": f"{name} ({w}x{h}, {len(clip)} fr)", "size": (w, h), "ours_s": t_ours.seconds,
           "counts": counts, "cells": grid_cells(h, w, params),
           "stats": summarize([counts], params.track_length)}
    if not skip_peer:
        with Timer() as t_peer:
            peer = peer_extract(clip, params)
        row["peer_s"] = t_peer.seconds
        row["same_trajectories"] = peer["counts"]["kept"] == counts["kept"] and \
            peer["counts"]["described"] == counts["described"]
    return row


def table_row(r: dict) -> list:
    """One table row: speeds of both, speed-up, statistics, agreement."""
    c, st, peer = r["counts"], r["stats"], r.get("peer_s")
    speeds = [round(c["kept"] / r["ours_s"], 1), round(4 * c["described"] / r["ours_s"])]
    speeds += [round(c["kept"] / peer, 1), round(4 * c["described"] / peer), round(peer / r["ours_s"], 1)] \
        if peer else ["-", "-", "-"]
    same = "yes" if r.get("same_trajectories") else ("-" if peer is None else "NO")
    return [r["video"], *speeds, round(st["kept_per_frame"], 1), round(st["kept_per_ending_frame"], 1),
            round(st["active_per_frame"]), f"{st['active_per_frame'] / r['cells']:.2f}",
            round(st["mean_length_px"], 1), *(f"{100 * st[k]:.0f}%" for k in
                                              ("static_share", "erratic_share", "camera_share")), same]


def descriptor_stats(rows: list[dict], track_length: int) -> dict:
    """Statistics pooled over all videos; ``active_per_grid_cell``: active points over the
    sampling cells of each video's pyramid, frame pair by frame pair."""
    stats = summarize([r["counts"] for r in rows], track_length)
    cell_pairs = sum(r["cells"] * max(r["counts"]["frames"] - 1, 0) for r in rows)
    stats["active_per_grid_cell"] = sum(r["counts"]["described"] for r in rows) / max(cell_pairs, 1)
    return stats


def resolution(rows: list[dict]) -> str:
    """"W1-W2 x H" (or "WxH") of the clips as measured."""
    widths, heights = sorted({r["size"][0] for r in rows}), sorted({r["size"][1] for r in rows})
    w = f"{widths[0]}-{widths[-1]}" if len(widths) > 1 else f"{widths[0]}"
    h = f"{heights[0]}-{heights[-1]}" if len(heights) > 1 else f"{heights[0]}"
    return f"{w} x {h}"


COLUMNS = ["video", "traj/s (ours)", "descriptors/s (ours)", "traj/s (peer)", "descriptors/s (peer)",
           "speed-up", "traj/frame", "traj/ending frame", "active points/frame", "of grid cells",
           "mean length (px)", "static removed", "erratic removed", "camera removed", "same trajectories"]


def write_reference(stats: dict, rows: list[dict], frames: int, command: str) -> dict:
    """``idt_reference.json``: the statistics against the figures of ``idt_reference.py``."""
    table, verdicts = reference_table(stats, f"{resolution(rows)}, {frames} fr")
    write_result(
        "idt_reference", title="Improved dense trajectories: statistics against published figures",
        command=command,
        description="The statistics of the same run pooled over its videos "
        "(``deepvideo.features.trajstats``, "
        "counted as the authors' release counts) against every figure found for them, with the "
        "source and the resolution each was measured at (``benchmarks/idt_reference.py``). No "
        "paper figure was found for kept trajectories per frame, mean length or the static and "
        "camera-motion shares; those rows carry no verdict.",
        columns=REFERENCE_COLUMNS, rows=table)
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    records = []
    for name in VIDEOS:
        r = run_video(name, args.frames, args.skip_peer)
        print(r["video"], r["counts"], flush=True)
        records.append(r)
    ours_s = sum(r["ours_s"] for r in records)
    kept, described = (sum(r["counts"][k] for r in records) for k in ("kept", "described"))
    stats = descriptor_stats(records, TrajectoryParams().track_length)
    command = f"python benchmarks/bench_idt.py --frames {args.frames}{' --skip-peer' * args.skip_peer}"
    summary = {"ours_traj_per_s": round(kept / ours_s, 1),
               "ours_descriptors_per_s": round(4 * described / ours_s),
               **{k: round(v, 3) if v < 10 else round(v, 1) for k, v in stats.items()},
               **write_reference(stats, records, args.frames, command)}
    if not args.skip_peer:
        peer_s = sum(r["peer_s"] for r in records)
        summary.update({"peer_traj_per_s": round(kept / peer_s, 1), "ratio": round(peer_s / ours_s, 2),
                        "goal": ">= 5x", "met": peer_s / ours_s >= 5})
    write_result(
        "idt_stats" if args.skip_peer else "idt",
        title="Improved dense trajectories: descriptor statistics" if args.skip_peer
        else "Improved dense trajectories (deepvideo features idt)",
        command=command, description=__doc__.split("\n\n")[1] + "\n\nThe project's paper digest puts "
        "the reference C++ binary at about 1.2 frames/s on 640x480 video on one core (DT, without "
        "the homography). Removal shares are of the finished trajectories: static (x and y standard "
        "deviations < sqrt 3 px), erratic, camera motion (largest camera-compensated step <= 1 px).",
        columns=COLUMNS, rows=[table_row(r) for r in records], summary=summary)


if __name__ == "__main__":
    main()
