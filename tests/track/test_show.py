"""Annotated tracking videos: boxes in their colours, the frame number, the score strip."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.io import VideoReader
from deepvideo.track.show import (
    MARGIN,
    SCORE_COLOR,
    STRIP_WIDTH,
    TRACKER_COLOR,
    TRUTH_COLOR,
    annotate_frame,
    annotate_frames,
    score_strip,
    write_tracking_video,
)

BOX = (10, 8, 20, 16)      # x, y, w, h: covers columns 10..29, rows 8..23
GT = (36, 24, 16, 12)


def gray_frames(count: int = 6, height: int = 48, width: int = 64):
    for _ in range(count):
        yield np.full((height, width, 3), 128, np.uint8)


def near(pixel, color, tolerance: int = 60) -> bool:
    return bool(np.abs(pixel.astype(int) - np.array(color)).max() <= tolerance)


def test_written_video_has_boxes_at_their_edges_and_the_strip(tmp_path):
    boxes = np.tile(BOX, (6, 1))
    path = write_tracking_video(tmp_path / "out.mp4", gray_frames(), boxes, scores=np.linspace(0, 1, 6),
                                gt=np.tile(GT, (6, 1)), fps=10)
    reader = VideoReader(path)
    assert reader.num_frames == 6 and (reader.height, reader.width) == (48, 64 + STRIP_WIDTH)
    frame = reader.get_frame(4).numpy()
    for row, col in ((8, 20), (23, 20), (16, 10), (16, 29)):  # middle of each edge of BOX
        assert near(frame[row, col], TRACKER_COLOR), (row, col, frame[row, col])
    assert near(frame[24, 44], TRUTH_COLOR) and near(frame[30, 51], TRUTH_COLOR)
    assert near(frame[16, 20], (128, 128, 128), 12)  # inside the box: untouched
    assert not near(frame[16, 20], TRACKER_COLOR)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_strip_plots_scores_only_up_to_the_current_frame():
    scores = np.array([0.0, 1.0, 2.0, 3.0])
    xs = MARGIN + np.arange(4) * (STRIP_WIDTH - 2 * MARGIN) / 3

    def plotted_columns(index):
        strip = score_strip(scores, index, height=80)
        mask = (np.abs(strip.astype(int) - SCORE_COLOR).max(axis=2) < 40)
        return np.flatnonzero(mask[24:].any(axis=0))  # below the text line

    early, late = plotted_columns(1), plotted_columns(3)
    assert early.min() <= xs[0] + 1 and early.max() <= xs[1] + 1
    assert late.max() >= xs[3] - 1


def test_nan_box_draws_nothing_and_the_frame_number_changes_the_image():
    frame = np.full((40, 60, 3), 100, np.uint8)
    plain = annotate_frame(frame, 2, box=None)
    assert plain.shape == (40, 60 + STRIP_WIDTH, 3)
    np.testing.assert_array_equal(annotate_frame(frame, 2, box=(np.nan,) * 4), plain)
    other = annotate_frame(frame, 9, box=None)
    assert (other[:20, :30] != plain[:20, :30]).any()  # "#9" is not "#2"
    np.testing.assert_array_equal(frame, 100)  # the input frame is not drawn on


def test_lengths_must_match_and_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="5 scores for 6 boxes"):
        list(annotate_frames(gray_frames(), np.tile(BOX, (6, 1)), scores=np.zeros(5)))
    with pytest.raises(ValueError, match="more frames than boxes"):
        list(annotate_frames(gray_frames(6), np.tile(BOX, (5, 1))))
    with pytest.raises(ValueError, match="6 frames for 7 boxes"):
        write_tracking_video(tmp_path / "out.mp4", gray_frames(6), np.tile(BOX, (7, 1)))
    assert list(tmp_path.iterdir()) == []


def test_masks_are_packed_and_shaded():
    """A tracker's mask round-trips through PackedMask and is shaded (alpha blend towards the
    tracker colour) only inside; an empty mask packs to None; a wrong size is an error."""
    from deepvideo.track.show import MASK_ALPHA, PackedMask

    mask = np.zeros((48, 64), bool)
    mask[30:40, 5:9] = True
    mask[35, 20] = True
    packed = PackedMask.of(mask)
    np.testing.assert_array_equal(packed.unpack(), mask)
    assert packed.crop_shape == (10, 16) and packed.bits.nbytes == 10 * 16 // 8
    assert PackedMask.of(np.zeros((4, 4), bool)) is None
    frames = list(gray_frames(2))
    image = next(annotate_frames(frames[:1], [BOX], masks=[packed]))
    expected = (1 - MASK_ALPHA) * 128 + MASK_ALPHA * np.array(TRACKER_COLOR)
    np.testing.assert_allclose(image[32, 6], expected, atol=1)
    assert (image[45, 60] == 128).all()
    with pytest.raises(ValueError, match=r"mask of shape \(4, 4\) for a frame of \(48, 64\)"):
        annotate_frame(frames[0], 0, BOX, mask=np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="1 masks for 2 boxes"):
        list(annotate_frames(frames, [BOX, BOX], masks=[packed]))
