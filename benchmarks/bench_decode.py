"""Sparse clip sampling: ``VideoReader.get_frames`` versus decoding every frame with plain PyAV.

Three access patterns: multi-view testing (10 clips of 8 frames at stride 2, evenly spaced:
80 indices covering about half of a 300-frame video), one training clip (8 frames at stride
2, centred) and TSN testing (the centre frame of 8 segments). The peer decodes every frame
with plain PyAV (default decoder settings), converts each to RGB and indexes the array;
deepvideo opens a fresh ``VideoReader`` (packet scan included) and calls ``get_frames`` once.
The frames must be identical (asserted). Videos: the shared samples (``../shared/data/video``)
and synthetic 640x360, 300-frame H.264 mp4s written by ``deepvideo.io.write_video`` with
x264's default keyframe interval (250) and with a 16-frame one.

Run: ``python benchmarks/bench_decode.py [--repeats 3]``; best of ``repeats`` per video.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, write_result  # noqa: E402
from deepvideo.io import VideoReader, write_video  # noqa: E402


def clip_indices(num_frames: int, clips: int = 10, frames: int = 8, stride: int = 2) -> np.ndarray:
    """``clips`` clips of ``frames`` frames at ``stride``, evenly spaced (multi-view testing);
    a single clip is centred."""
    span = (frames - 1) * stride + 1
    last = max(0, num_frames - span)
    starts = np.linspace(0, last, clips) if clips > 1 else np.array([last / 2])
    starts = starts.round().astype(np.int64)
    return np.minimum((starts[:, None] + np.arange(frames) * stride).reshape(-1), num_frames - 1)


def segment_indices(num_frames: int, segments: int = 8) -> np.ndarray:
    """The centre frame of each of ``segments`` equal segments (TSN testing)."""
    return ((np.arange(segments) + 0.5) * num_frames / segments).astype(np.int64)


PATTERNS = {
    "10 clips x 8 frames, stride 2": lambda n: clip_indices(n),
    "1 clip x 8 frames, stride 2": lambda n: clip_indices(n, clips=1),
    "8 segments x 1 frame (TSN)": lambda n: segment_indices(n),
}
SPARSE = ("1 clip x 8 frames, stride 2", "8 segments x 1 frame (TSN)")


def synthetic_frames(num_frames: int = 300, height: int = 360, width: int = 640, seed: int = 0) -> np.ndarray:
    """Moving gradients and a moving square with mild noise: compresses like real footage."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        r = 128 + 100 * np.sin((x + 3 * t) / 40.0)
        g = 128 + 100 * np.cos((y - 2 * t) / 30.0)
        b = 128 + 80 * np.sin((x + y + 5 * t) / 60.0)
        frame = np.stack([r, g, b], -1) + rng.normal(0, 4, (height, width, 1))
        cx, cy = int(50 + 1.5 * t) % (width - 60), int(40 + t) % (height - 60)
        frame[cy:cy + 60, cx:cx + 60] = (240, 30, 30)
        out[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def peer_decode(path: Path) -> np.ndarray:
    """The peer: plain PyAV, every frame decoded and converted to RGB (then indexed)."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def ours(path: Path, indices: np.ndarray, threads: int) -> np.ndarray:
    with VideoReader(path, threads=threads) as reader:
        return reader.get_frames(indices).numpy()


def timed(fn, *args) -> tuple[float, float, np.ndarray]:
    """Wall-clock and CPU seconds (all threads of this process) of ``fn(*args)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def _geomean(values) -> float:
    return float(np.exp(np.mean(np.log(list(values)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="VideoReader decoder threads (1 = the DataLoader-worker setting)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        videos = sorted((SHARED_DATA / "video").glob("*.mp4")) if (SHARED_DATA / "video").is_dir() else []
        frames = synthetic_frames()
        for gop, name in ((None, "synthetic_gop250.mp4"), (16, "synthetic_gop16.mp4")):
            videos.append(write_video(Path(tmp) / name, frames, fps=30, gop=gop))
        rows = []
        wall_ratios: dict[str, list[float]] = {name: [] for name in PATTERNS}
        cpu_ratios: dict[str, list[float]] = {name: [] for name in PATTERNS}
        for path in videos:
            with VideoReader(path) as reader:
                n = reader.num_frames
                keys = reader._packet_index().pts_keys
                size = f"{reader.width}x{reader.height}"
            peer = [math.inf, math.inf]
            best = {name: [math.inf, math.inf] for name in PATTERNS}
            for _ in range(args.repeats):
                wall, cpu, everything = timed(peer_decode, path)
                peer = [min(peer[0], wall), min(peer[1], cpu)]
                for name, pattern in PATTERNS.items():
                    indices = pattern(n)
                    wall, cpu, got = timed(ours, path, indices, args.threads)
                    assert np.array_equal(everything[indices], got), f"{path}: {name}: frames differ"
                    best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
            for name in PATTERNS:
                wall_ratio, cpu_ratio = peer[0] / best[name][0], peer[1] / best[name][1]
                wall_ratios[name].append(wall_ratio)
                cpu_ratios[name].append(cpu_ratio)
                rows.append([path.name, size, n, round(n / len(keys), 1), name, round(1 / peer[0], 2),
                             round(1 / best[name][0], 2), round(wall_ratio, 2), round(cpu_ratio, 2), "yes"])
                print(f"{path.name:22s} {size:>9s} {n:4d} frames, GOP {n / len(keys):6.1f}, {name:30s}: "
                      f"peer {1 / peer[0]:6.2f} videos/s, deepvideo {1 / best[name][0]:6.2f} videos/s, "
                      f"x{wall_ratio:.2f} wall, x{cpu_ratio:.2f} CPU", flush=True)
    summary = {}
    for name in PATTERNS:
        summary[f"{name}: geomean speed-up (wall, CPU)"] = (
            f"{_geomean(wall_ratios[name]):.2f}x, {_geomean(cpu_ratios[name]):.2f}x")
    sparse_wall = _geomean(r for name in SPARSE for r in wall_ratios[name])
    sparse_cpu = _geomean(r for name in SPARSE for r in cpu_ratios[name])
    summary.update({"sparse patterns: geomean speed-up (wall, CPU)": f"{sparse_wall:.2f}x, {sparse_cpu:.2f}x",
                    "goal": ">= 3x for sparse sampling", "met (wall)": bool(sparse_wall >= 3),
                    "load average (1 min) before, after": f"{load_before:.1f}, {os.getloadavg()[0]:.1f}"})
    write_result(
        "decode",
        title="Sparse frame decoding: VideoReader.get_frames vs decoding every frame",
        command="python benchmarks/bench_decode.py",
        description=__doc__.split("\n\n")[1].replace("\n", " ")
        + f" deepvideo runs with `threads={args.threads}`."
          " Rates are videos/s (one call per video and pattern: one multi-view test set, one training"
          " clip, or one TSN sample), best of the repeats; the peer's time does not depend on the pattern."
          " The CPU speed-up compares process CPU time (all threads), which is less sensitive than"
          " wall time to other jobs on a shared machine (see the load average in the summary)."
          " `identical`: frame equality with sequential decoding, asserted.",
        columns=["video", "size", "frames", "mean GOP", "pattern", "peer videos/s (plain PyAV, all frames)",
                 "deepvideo videos/s (get_frames)", "speed-up (wall)", "speed-up (CPU)", "identical"],
        rows=rows,
        summary=summary,
    )
    for key, value in summary.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
