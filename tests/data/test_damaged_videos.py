"""Damaged but decodable videos: `data check` reports them, training keeps them with a warning."""

from __future__ import annotations

import logging

import numpy as np

from damaged_video import DAMAGED, NUM_FRAMES
from deepvideo.data.check import check_video
from deepvideo.data.dataset import ClipDataset
from deepvideo.data.record import DatasetIndex, VideoRecord
from deepvideo.spec import InputSpec


def test_full_check_reports_the_damaged_frames(damaged_videos):
    intact, damaged = damaged_videos
    result = check_video(str(damaged), full=True)
    assert not result.ok and result.num_frames == NUM_FRAMES
    assert result.decoder_errors >= 1 and set(result.damaged_frames) <= set(DAMAGED)
    assert result.reason.startswith("damaged: ") and "decoder error" in result.reason
    assert f"frame{'s' if len(result.damaged_frames) > 1 else ''} {result.damaged_frames[0]}" in result.reason
    assert result.to_dict()["damaged_frames"] == result.damaged_frames
    good = check_video(str(intact), full=True)
    assert good.ok and good.decoder_errors == 0 and good.damaged_frames is None


def test_quick_check_only_sees_the_first_and_last_groups(damaged_videos):
    _, damaged = damaged_videos  # the damage is in the middle: only --full finds it
    assert check_video(str(damaged), full=False).ok


def test_training_keeps_a_damaged_clip_and_warns_once(damaged_videos, caplog):
    intact, damaged = damaged_videos
    index = DatasetIndex([VideoRecord(str(damaged), 0), VideoRecord(str(intact), 1)], ["a", "b"])
    spec = InputSpec(modalities=("rgb",), num_frames=5, crop_size=8)

    def damaged_clip(num_frames, rng):
        return {"rgb": np.array([list(DAMAGED)])}

    def as_is(sample, rng):
        return {"rgb": sample["rgb"].permute(3, 0, 1, 2).float()}

    ds = ClipDataset(index, spec, train=True, sampler=damaged_clip, transform=as_is)
    with caplog.at_level(logging.WARNING, logger="deepvideo.data"):
        first, second = ds[(0, 0)], ds[(0, 1)]
        ds[(1, 0)]
    assert first["index"] == second["index"] == 0 and "bad_items" not in first  # kept, not skipped
    assert first["rgb"].shape == (3, 5, 64, 96)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # once per video; the intact one says nothing
    assert f"damaged video {damaged}:" in warnings[0] and "decoder error" in warnings[0]
    assert ds.bad_items == []
