"""Shared fixtures: the real sample data in ../shared/data, tiny synthetic videos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# Tests use tiny tensors: one thread is fastest for them and keeps the suite steady on a shared
# machine. Benchmarks, not tests, measure multi-threaded speed.
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def bench_import():
    """``bench_import("name")``: the module ``benchmarks/name.py``, imported with ``benchmarks/`` on
    ``sys.path`` (benchmark scripts import their siblings, e.g. ``common``) and taken off again."""
    import importlib
    import sys

    def load(name: str):
        sys.path.insert(0, str(BENCHMARKS))
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(str(BENCHMARKS))

    return load


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests using it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_mp4(shared_data) -> Path:
    path = shared_data / "video" / "test.mp4"
    if not path.exists():
        pytest.skip(f"{path} missing")
    return path


@pytest.fixture(scope="session")
def leaving_video(tmp_path_factory, shared_data) -> Path:
    """60 frames of a real frame (Big Buck Bunny) seen through a window panning right by
    8 px/frame: the rock at box (100, 90, 110, 120) in frame 0 leaves the frame on the left by
    frame ~27 (a target trackers cannot follow)."""
    import numpy as np

    from deepvideo.io import VideoReader, write_video

    frame = VideoReader(shared_data / "video" / "bigbuckbunny.mp4").get_frames([60]).numpy()[0]
    frames = np.stack([frame[200:440, 40 + 8 * t: 360 + 8 * t] for t in range(60)])
    return write_video(tmp_path_factory.mktemp("leave") / "leave.mp4", frames, fps=25)


@pytest.fixture(scope="session")
def damaged_videos(tmp_path_factory) -> tuple[Path, Path]:
    """An intact H.264 file and a copy with garbage over some middle packets that still decodes
    (FFmpeg conceals the damage and logs it): see ``tests/damaged_video.py``."""
    from damaged_video import write_damaged_video, write_intact_video

    root = tmp_path_factory.mktemp("damage")
    intact = write_intact_video(root / "intact.mp4")
    return intact, write_damaged_video(root / "damaged.mp4", intact)
