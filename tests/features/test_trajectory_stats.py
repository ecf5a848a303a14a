"""Trajectory statistics as the release counts them, against hand-computed cases."""

import cv2
import numpy as np
import pytest

from deepvideo.features import TrajectoryParams, extract_trajectories
from deepvideo.features.trajectories import Trajectories, pyramid_sizes
from deepvideo.features.trajstats import grid_cells, run_counts, summarize


def _texture(size, seed=0):
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 1.5)
    return ((t - t.min()) / (t.max() - t.min()) * 255).astype(np.uint8)


def test_summarize_pools_runs_and_counts_only_frames_that_end_trajectories():
    keys = ("frames", "kept", "described", "static", "erratic", "camera", "length_sum")
    a = dict(zip(keys, (40, 50, 390, 20, 5, 25, 500.0), strict=True))
    b = dict(zip(keys, (10, 0, 90, 3, 0, 2, 0.0), strict=True))
    s = summarize([a, b], track_length=15)
    assert s["kept_per_frame"] == pytest.approx(50 / 50)
    assert s["kept_per_ending_frame"] == pytest.approx(50 / 25)  # frames 15..39 of a; b is shorter than L
    assert s["active_per_frame"] == pytest.approx(480 / 48)  # 39 + 9 frame pairs
    assert s["mean_length_px"] == pytest.approx(10.0)
    shares = (s["static_share"], s["erratic_share"], s["camera_share"])
    assert shares == pytest.approx((23 / 105, 5 / 105, 27 / 105))  # of 50 + 23 + 5 + 27 finished


def test_summarize_rejects_no_runs_and_run_counts_names_missing_stats():
    with pytest.raises(ValueError, match="no runs"):
        summarize([])
    bare = Trajectories(np.zeros((0, 10), np.float32), {}, {"kept": 0})
    with pytest.raises(ValueError, match="lack"):
        run_counts(bare)


def test_grid_cells_over_the_scale_pyramid():
    # 320x240: 6 scales (short side >= 32 px) of 320x240, 226x170, 160x120, 113x85, 80x60, 57x42
    assert pyramid_sizes(240, 320, TrajectoryParams()) == [(240, 320), (170, 226), (120, 160), (85, 113),
                                                           (60, 80), (42, 57)]
    assert grid_cells(240, 320) == 64 * 48 + 45 * 34 + 32 * 24 + 22 * 17 + 16 * 12 + 11 * 8 == 6024
    assert grid_cells(64, 64, TrajectoryParams(max_scales=1)) == 12 * 12


def test_still_video_is_all_static_and_a_translation_has_its_path_length():
    params = TrajectoryParams(max_scales=1, camera=False)
    still = run_counts(extract_trajectories([_texture(48)] * 17, params))
    s = summarize([still], params.track_length)
    assert still["static"] > 0 and s["static_share"] == 1.0 and s["kept_per_ending_frame"] == 0
    assert s["active_per_frame"] == pytest.approx(still["described"] / 16)

    tex = _texture(64, seed=3)
    moving = extract_trajectories([np.roll(tex, 2 * t, axis=1) for t in range(17)], params)
    counts = run_counts(moving)
    assert counts["kept"] == len(moving) > 20
    assert counts["length_sum"] == pytest.approx(float(moving.info[:, 5].sum()))
    assert summarize([counts])["mean_length_px"] == pytest.approx(2 * 15, abs=2)  # 2 px/frame, 15 steps
