"""io.decodelog: FFmpeg's decoder error reports of damaged-but-decodable video, by frame."""

from __future__ import annotations

import av
import numpy as np

from damaged_video import DAMAGED, NUM_FRAMES
from deepvideo.io import VideoReader
from deepvideo.io.decodelog import DecodeDamage, frame_ranges


def test_damaged_video_decodes_and_its_errors_are_counted_by_frame(damaged_videos):
    intact, damaged = damaged_videos
    reader = VideoReader(damaged, threads=1, report_damage=True)
    frames = np.stack([f.numpy() for f in reader])  # no exception: FFmpeg conceals
    assert len(frames) == NUM_FRAMES
    assert reader.damage.count >= 1
    assert set(reader.damage.frames) <= set(DAMAGED)
    assert all("h264" in r for reports in reader.damage.errors.values() for r in reports)
    clean = np.stack([f.numpy() for f in VideoReader(intact, threads=1)])
    # the damage is confined to its group of pictures: frames before and after are exact
    assert np.array_equal(frames[:DAMAGED.start], clean[:DAMAGED.start])
    assert np.array_equal(frames[DAMAGED.stop:], clean[DAMAGED.stop:])
    assert not np.array_equal(frames[DAMAGED.start:DAMAGED.stop], clean[DAMAGED.start:DAMAGED.stop])


def test_random_access_reports_the_same_frames_and_intact_video_none(damaged_videos):
    intact, damaged = damaged_videos
    whole = VideoReader(damaged, threads=1, report_damage=True)
    list(whole)
    reader = VideoReader(damaged, threads=1, report_damage=True)
    reader.get_frames([DAMAGED.start, DAMAGED.stop - 1])
    assert reader.damage.errors == whole.damage.errors
    reader.get_frames([DAMAGED.stop - 1])  # decoded again: counted once
    assert reader.damage.count == whole.damage.count
    outside = VideoReader(damaged, threads=1, report_damage=True)
    outside.get_frames([0, NUM_FRAMES - 1])
    assert not outside.damage
    good = VideoReader(intact, threads=1, report_damage=True)
    list(good)
    good.get_frames(list(range(NUM_FRAMES)))
    assert not good.damage


def test_off_by_default_and_pyav_logging_left_as_found(damaged_videos):
    _, damaged = damaged_videos
    reader = VideoReader(damaged, threads=1)
    list(reader)
    assert not reader.damage
    level, repeated = av.logging.get_level(), av.logging.get_skip_repeated()
    list(VideoReader(damaged, threads=1, report_damage=True))
    assert (av.logging.get_level(), av.logging.get_skip_repeated()) == (level, repeated)


def test_describe_and_frame_ranges():
    assert frame_ranges([14, 10, 12, 13]) == "10, 12–14"
    assert frame_ranges(list(range(0, 30, 2))) == "0, 2, 4, 6, 8, 10, ..."
    damage = DecodeDamage()
    damage.add(12, ["h264: error while decoding MB 4 1, bytestream 93"])
    damage.add(13, ["h264: a", "h264: b"])
    damage.add(12, ["h264: again"])  # a frame decoded twice keeps its first reports
    assert damage.count == 3 and damage.frames == [12, 13]
    assert damage.describe() == ("3 decoder errors in frames 12–13 "
                                 "(first: 'h264: error while decoding MB 4 1, bytestream 93')")
