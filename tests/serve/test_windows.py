"""Sliding windows: durations, window positions and contents, the memory bound, short videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepvideo.serve.windows import WindowBuffer, parse_duration, sliding_windows
from deepvideo.spec import InputSpec


@pytest.mark.parametrize("text, fps, frames", [("2s", 25, 50), ("500ms", 30, 15), ("48f", None, 48),
                                               ("1.5", 10, 15), (" 3 s ", 10, 30)])
def test_parse_duration(text, fps, frames):
    assert parse_duration(text, fps) == frames


@pytest.mark.parametrize("text, fps, message", [("2 minutes", 25, "must look like 2s"),
                                                ("1.5f", 25, "whole number"),
                                                ("2s", None, "no frame rate"),
                                                ("10ms", 25, "less than one frame")])
def test_parse_duration_errors(text, fps, message):
    with pytest.raises(ValueError, match=message):
        parse_duration(text, fps, "--window")


def _numbered(n):
    """Frames whose pixels hold their own index (mod 256), 1x1."""
    return [torch.full((1, 1, 3), i % 256, dtype=torch.uint8) for i in range(n)]


def test_windows_positions_and_sampled_frames():
    spec = InputSpec(num_frames=4, frame_stride=2)  # a clip spans 7 frames: centred in a 10-frame window
    wins = list(sliding_windows(_numbered(35), spec, length=10, stride=5))
    assert [(w.start, w.end) for w in wins] == [(0, 10), (5, 15), (10, 20), (15, 25), (20, 30), (25, 35)]
    assert len(wins) == (35 - 10) // 5 + 1
    # test sampling: the centre clip, first frame (L - span + 1) // 2 = (10 - 7 + 1) // 2 = 2
    for w in wins:
        assert w.clip[:, 0, 0, 0].tolist() == [w.start + 2, w.start + 4, w.start + 6, w.start + 8]


def test_buffer_holds_at_most_one_window():
    spec = InputSpec(num_frames=4)
    buf = WindowBuffer(spec, length=20, stride=7)
    most = 0
    for frame in _numbered(300):
        buf.push(frame)
        most = max(most, buf.held())
    assert most <= 20
    assert buf.held() <= 2 * 4  # after the first window: only sampled frames of open windows


def test_short_video_is_one_window_of_all_frames():
    wins = list(sliding_windows(_numbered(6), InputSpec(num_frames=3), length=50, stride=10))
    assert [(w.start, w.end) for w in wins] == [(0, 6)]
    assert wins[0].clip[:, 0, 0, 0].tolist() == [2, 3, 4]  # (6 - 3 + 1) // 2 = 2
    assert list(sliding_windows([], InputSpec(), length=5, stride=1)) == []


def test_bad_window_arguments():
    with pytest.raises(ValueError, match="must be >= 1 frame"):
        WindowBuffer(InputSpec(), 0, 1)
    np.testing.assert_array_equal(WindowBuffer(InputSpec(num_frames=2), 4, 1).offsets, [1, 2])
