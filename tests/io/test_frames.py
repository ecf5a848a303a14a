"""FrameFolderReader: the rawframes layout, template matching, gaps, resize."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from io_helpers import make_frames

from deepvideo.io import FrameFolderReader, VideoError, open_video, probe, write_frame_folder
from deepvideo.io.frames import list_frame_numbers, template_pattern


def test_rawframes_sample(shared_data):
    folder = shared_data / "video" / "rawframes"
    if not folder.is_dir():
        pytest.skip(f"{folder} missing")
    reader = FrameFolderReader(folder)
    # img_00001..10.jpg; the x_/y_ flow images must not be counted.
    assert (len(reader), reader.width, reader.height) == (10, 320, 240)
    frames = reader.get_frames([9, 0, 0])
    ref = cv2.cvtColor(cv2.imread(str(folder / "img_00010.jpg")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(frames[0].numpy(), ref)
    assert torch.equal(frames[1], frames[2]) and frames.dtype == torch.uint8
    flow_x = FrameFolderReader(folder, template="x_{:05d}.jpg")
    assert len(flow_x) == 5 and flow_x.get_frames([4]).shape == (1, 240, 320, 3)  # gray -> RGB
    assert probe(folder).frame_count == "files"


@pytest.fixture()
def folder(tmp_path):
    frames = make_frames(6, 40, 30)
    return write_frame_folder(tmp_path / "v", frames, quality=100), frames


def test_round_trip_and_any_order(folder):
    path, frames = folder
    reader = open_video(path, fps=3)
    assert isinstance(reader, FrameFolderReader)
    assert (reader.num_frames, reader.fps, reader.duration) == (6, 3, 2.0)
    got = reader.get_frames([5, 1, 5]).numpy().astype(int)
    assert np.abs(got - frames[[5, 1, 5]]).mean() < 3  # JPEG at quality 100


def test_threads_give_the_same_frames(folder):
    path, _ = folder
    idx = [0, 3, 2, 5, 1]
    pooled = FrameFolderReader(path, threads=3).get_frames(idx)
    assert torch.equal(pooled, FrameFolderReader(path).get_frames(idx))


def test_resize_keeps_aspect(folder):
    path, _ = folder
    out = FrameFolderReader(path, short_side=15).get_frames([0, 1])
    assert out.shape == (2, 20, 15, 3)


def test_custom_template_and_start_index(tmp_path):
    write_frame_folder(tmp_path / "v", make_frames(4), template="{:04d}.png", start_index=0)
    reader = FrameFolderReader(tmp_path / "v", template="{:04d}.png", start_index=0)
    assert len(reader) == 4
    with pytest.raises(VideoError, match="numbering starts at 0, expected start_index=1"):
        FrameFolderReader(tmp_path / "v", template="{:04d}.png", start_index=1)


def test_gap_names_the_missing_file(folder):
    path, _ = folder
    (path / "img_00003.jpg").unlink()
    with pytest.raises(VideoError, match=r"img_00003.jpg is missing"):
        FrameFolderReader(path)


def test_no_matching_files_and_out_of_range(folder, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no frame files matching"):
        FrameFolderReader(tmp_path / "empty")
    path, _ = folder
    with pytest.raises(VideoError, match=r"valid indices are 0..5 \(6 frames\)"):
        FrameFolderReader(path).get_frames([6])


def test_unreadable_image_names_the_file(folder):
    path, _ = folder
    (path / "img_00002.jpg").write_bytes(b"garbage")
    reader = FrameFolderReader(path)
    with pytest.raises(VideoError, match=r"img_00002.jpg: frame 1: not a readable image"):
        reader.get_frames([1])


def test_template_matching_is_exact(tmp_path):
    for name in ("img_00001.jpg", "img_1.jpg", "img_00002.jpg.bak", "x_00001.jpg", "img_00002.jpg"):
        (tmp_path / name).touch()
    assert list_frame_numbers(tmp_path, "img_{:05d}.jpg") == [1, 2]
    assert template_pattern("f{}.png").match("f12.png")
    with pytest.raises(ValueError):
        template_pattern("no_field.jpg")
