"""Sparse clip sampling: ``VideoReader.get_frames`` versus decoding every frame with plain PyAV.

The access pattern of multi-view testing: 10 clips of 8 frames at stride 2, evenly spaced
over the video (80 frame indices). The peer decodes every frame with plain PyAV (default
decoder settings), converts each to RGB and indexes the list; deepvideo opens a fresh
``VideoReader`` (packet scan included) and calls ``get_frames`` once with the 80 indices.
The frames must be identical (asserted). Videos: the shared samples (``../shared/data/video``)
and synthetic 640x360, 300-frame H.264 mp4s written by ``deepvideo.io.write_video`` with
x264's default keyframe interval (250) and with a 16-frame one.

Run: ``python benchmarks/bench_decode.py [--repeats 3]``; best of ``repeats`` per video.
"""

from __future__ import annotations

import argparse
import math
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
    """``clips`` clips of ``frames`` frames at ``stride``, evenly spaced (multi-view testing)."""
    span = (frames - 1) * stride + 1
    starts = np.linspace(0, max(0, num_frames - span), clips).round().astype(np.int64)
    return np.minimum((starts[:, None] + np.arange(frames) * stride).reshape(-1), num_frames - 1)


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


def peer_decode(path: Path, indices: np.ndarray) -> np.ndarray:
    """The peer: plain PyAV, every frame decoded and converted, then indexed."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames)[indices]


def ours(path: Path, indices: np.ndarray) -> np.ndarray:
    with VideoReader(path) as reader:
        return reader.get_frames(indices).numpy()


def timed(fn, *args) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        videos = sorted((SHARED_DATA / "video").glob("*.mp4")) if (SHARED_DATA / "video").is_dir() else []
        frames = synthetic_frames()
        for gop, name in ((None, "synthetic_gop250.mp4"), (16, "synthetic_gop16.mp4")):
            videos.append(write_video(Path(tmp) / name, frames, fps=30, gop=gop))
        rows, ratios = [], []
        for path in videos:
            with VideoReader(path) as reader:
                n = reader.num_frames
                keys = reader._packet_index().pts_keys
                size = f"{reader.width}x{reader.height}"
            indices = clip_indices(n)
            best_peer = best_ours = math.inf
            for _ in range(args.repeats):
                t_peer, ref = timed(peer_decode, path, indices)
                t_ours, got = timed(ours, path, indices)
                assert np.array_equal(ref, got), f"{path}: frames differ from sequential decoding"
                best_peer, best_ours = min(best_peer, t_peer), min(best_ours, t_ours)
            clips = len(indices) // 8
            ratio = best_peer / best_ours
            ratios.append(ratio)
            rows.append([path.name, size, n, round(n / len(keys), 1), round(clips / best_peer, 2),
                         round(clips / best_ours, 2), round(ratio, 2), "yes"])
            print(f"{path.name:24s} {size:>9s} {n:4d} frames, mean GOP {n / len(keys):6.1f}: "
                  f"peer {clips / best_peer:7.2f} clips/s, deepvideo {clips / best_ours:7.2f} clips/s, "
                  f"x{ratio:.2f}", flush=True)
    geo = float(np.exp(np.mean(np.log(ratios))))
    write_result(
        "decode",
        title="Sparse clip decoding (10 clips x 8 frames, stride 2)",
        command="python benchmarks/bench_decode.py",
        description=__doc__.split("\n\n")[1].replace("\n", " ")
        + " Clips/s are per video (10 clips per call), best of the repeats. `identical` is the"
          " asserted frame equality with sequential decoding.",
        columns=["video", "size", "frames", "mean GOP", "peer clips/s (plain PyAV, all frames)",
                 "deepvideo clips/s (get_frames)", "speed-up", "identical"],
        rows=rows,
        summary={"geomean speed-up": round(geo, 2), "min speed-up": round(min(ratios), 2),
                 "max speed-up": round(max(ratios), 2), "goal": ">= 3x", "met": bool(geo >= 3)},
    )
    print(f"geometric mean speed-up x{geo:.2f} (goal >= 3x)")


if __name__ == "__main__":
    main()
