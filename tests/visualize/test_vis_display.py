"""Pictures and files: flow codings, grids, side by side, GIF/PNG/mp4 round trips, reports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from deepvideo.flow.colour import flow_to_mag
from deepvideo.visualize.display import (
    enlarge,
    flow_frames,
    grid,
    overlay,
    side_by_side,
    write_clip,
    write_report,
)


def test_flow_frames_scale_over_the_whole_sequence():
    flow = torch.zeros(2, 2, 4, 4)
    flow[1, 0] = 2.0  # only the second field moves
    mag = flow_frames(flow, "mag")
    np.testing.assert_array_equal(mag, flow_to_mag(flow))
    assert mag[0, ..., 2].max() == 0 and mag[1, ..., 2].min() == 255  # min-max over the clip
    assert flow_frames(flow, "uv").shape == (2, 4, 8, 3)
    with pytest.raises(ValueError, match="unknown flow coding"):
        flow_frames(flow, "hsv")


def test_grid_side_by_side_enlarge():
    a = np.zeros((3, 4, 5, 3), np.uint8)
    b = np.full((3, 4, 2, 3), 9, np.uint8)
    both = side_by_side(a, b, gap=1)
    assert both.shape == (3, 4, 8, 3) and (both[:, :, 5] == 255).all() and (both[:, :, 6:] == 9).all()
    g = grid([a, b[:2]], gap=2)
    assert g.shape == (2 * 4 + 2, 3 * 5 + 4, 3)
    assert (g[6:, 7:9] == 9).all() and (g[6:, 14:] == 255).all()  # row 2 has 2 frames: padded white
    assert enlarge(a, 3).shape == (3, 12, 15, 3)
    with pytest.raises(ValueError, match="equal frames and height"):
        side_by_side(a, b[:2])


def test_overlay_blends_towards_hot_colours():
    frames = np.zeros((1, 2, 2, 3), np.uint8)
    heat = np.array([[[0.0, 1.0], [0.5, 0.0]]])
    out = overlay(frames, heat, strength=1.0)
    # the jet colour map: 0 dark blue, 0.5 green, 1 dark red
    assert tuple(out[0, 0, 1]) == (127, 0, 0) and tuple(out[0, 0, 0]) == (0, 0, 127)
    assert tuple(out[0, 1, 0]) == (127, 255, 127)
    assert tuple(overlay(frames + 100, heat, strength=0.0)[0, 0, 0]) == (100, 100, 100)


def test_write_clip_and_report(tmp_path):
    frames = np.zeros((4, 8, 10, 3), np.uint8)
    frames[:, :, :5] = 200
    frames[:, 0, 9] = np.arange(4)[:, None] * 60  # every frame differs (a GIF merges equal ones)
    paths = write_clip(tmp_path / "unit", frames, ["gif", "png", "mp4"], fps=4)
    assert [p.name for p in paths] == ["unit.gif", "unit.png", "unit.mp4"]
    gif = Image.open(paths[0])
    assert gif.n_frames == 4 and gif.size == (10, 8)
    png = np.asarray(Image.open(paths[1]).convert("RGB"))
    assert png.shape == (8, 4 * 10 + 3 * 2, 3) and png[0, 0, 0] == 200
    from deepvideo.io import VideoReader

    with VideoReader(paths[2]) as reader:
        assert len(reader) == 4
    with pytest.raises(ValueError, match="unknown output format"):
        write_clip(tmp_path / "x", frames, ["avi"])
    report = write_report(tmp_path, "T", ["line"], ["unit.png"]).read_text()
    assert report.startswith("# T\n") and "![unit](unit.png)" in report
