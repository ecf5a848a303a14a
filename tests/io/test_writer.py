"""VideoWriter / write_video: streaming, atomic output, keyframe interval."""

from __future__ import annotations

import numpy as np
import pytest
from io_helpers import make_frames

from deepvideo.io import VideoReader, VideoWriter, probe


def test_streaming_writer_with_gop(tmp_path):
    frames = make_frames(20)
    path = tmp_path / "out" / "v.mp4"
    with VideoWriter(path, fps=10, gop=4) as writer:
        writer.write(frames[:7])
        for frame in frames[7:]:
            writer.write(frame)
    assert writer.frames_written == 20 and probe(path).num_frames == 20
    reader = VideoReader(path)
    reader.get_frames([0])
    assert reader._index.pts_keys == [0, 4, 8, 12, 16]
    assert not list(path.parent.glob(".*tmp*"))


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(path, fps=10) as writer:
        writer.write(make_frames(3))
        raise RuntimeError("boom")
    assert not path.exists() and not list(tmp_path.iterdir())


def test_size_change_is_refused(tmp_path):
    with pytest.raises(ValueError, match="differs from the first"), VideoWriter(tmp_path / "v.mp4") as w:
        w.write(np.zeros((2, 48, 64, 3), np.uint8))
        w.write(np.zeros((1, 48, 60, 3), np.uint8))
    assert not (tmp_path / "v.mp4").exists()
