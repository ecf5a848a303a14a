"""Every tracker keeps running when its target leaves the frame: one box per frame, finite,
never an exception (issue "Tracking I": a box it cannot follow gives a low score, not a crash)."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.track import list_trackers
from deepvideo.track.datasets import video_sequence
from deepvideo.track.evaluate import track_ope

ROCK = (100.0, 90.0, 110.0, 120.0)


@pytest.mark.parametrize("name", [i.name for i in list_trackers(available_only=True)])
def test_tracker_survives_a_target_leaving_the_frame(leaving_video, name):
    from deepvideo.track import create_tracker

    run = track_ope(create_tracker(name), video_sequence(leaving_video, ROCK))
    assert run.boxes.shape == (60, 4) and np.isfinite(run.boxes).all(), name
    assert (run.boxes[:, 2:] > 0).all(), name
