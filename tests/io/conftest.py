"""Session fixture: tiny synthetic videos covering the decoder paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from io_helpers import make_frames, write_av

from deepvideo.io import write_video


@pytest.fixture(scope="session")
def synthetic_videos(tmp_path_factory) -> dict[str, Path]:
    """Small videos covering the decoder paths: GOPs 1..250 with B-frames, AVI, mkv, gray, odd size."""
    root = tmp_path_factory.mktemp("videos")
    frames = make_frames()
    videos = {f"gop{g}": write_video(root / f"gop{g}.mp4", frames, fps=30, gop=g) for g in (1, 5, 12)}
    videos["gop_default"] = write_video(root / "gop_default.mp4", frames, fps=30)
    # MPEG-4 part 2 in AVI: decoded by counting. Without B-frames every keyframe is a seek point;
    # with B-frames (open GOPs) decoding restarts from the first frame.
    videos["avi"] = write_av(root / "plain.avi", frames, "mpeg4", "yuv420p", {"g": "10", "bf": "0"})
    videos["avi_bframes"] = write_av(root / "bframes.avi", frames, "mpeg4", "yuv420p", {"g": "10", "bf": "2"})
    # Matroska stores no frame count: counted from packets.
    videos["mkv"] = write_av(root / "clip.mkv", frames, "libx264", "yuv420p", {"g": "9", "bf": "2"})
    videos["gray_odd"] = write_av(root / "gray.mkv", frames[:, :47, :63], "ffv1", "gray", {"g": "6"})
    videos["odd"] = write_video(root / "odd.mp4", frames[:30, :47, :63], fps=25, gop=7)
    return videos
