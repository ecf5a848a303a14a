"""HOG/HOF/MBH of synthetic fields against hand-computed values (Wang et al. 2013 layout)."""

import numpy as np
import pytest

from deepvideo.features import histograms as hg


def _descriptor(integral, point=(16, 16)):
    corners = hg.patch_corners(np.array([point], np.float32), 32, 32)
    return hg.cell_descriptors(integral, corners)[0]


def _expected(cell_hist):
    """Hand formula: 4 equal cells, +epsilon, L1 normalised, square root."""
    vec = np.tile(np.asarray(cell_hist, np.float64) + hg.EPSILON, 4)
    return np.sqrt(vec / vec.sum())


def test_descriptor_dimensions_follow_paper():
    assert (hg.PATCH, hg.CELLS_XY, hg.CELLS_T) == (32, 2, 3)
    assert 4 * 3 * hg.HOG_BINS == 96 and 4 * 3 * hg.HOF_BINS == 108 and 4 * 3 * hg.MBH_BINS == 96
    assert (hg.MIN_FLOW, hg.EPSILON) == (0.4, 0.05)


def test_soft_binning_splits_between_neighbours():
    # 22.5 deg lies halfway between the 0 and 45 deg bins of an 8-bin histogram
    v = np.array([[np.cos(np.radians(22.5)), np.sin(np.radians(22.5))]]) * 2.0
    h = hg.orientation_bins(v[:, :1], v[:, 1:], 8)[0, 0]
    np.testing.assert_allclose(h, [1, 1, 0, 0, 0, 0, 0, 0], atol=0.02)
    # 350 deg is 10 deg from the 0 bin (wrapping) and 35 from the 315 bin
    a = np.radians(350.0)
    h = hg.orientation_bins(np.array([[np.cos(a)]]), np.array([[np.sin(a)]]), 8)[0, 0]
    np.testing.assert_allclose(h[[7, 0]], [10 / 45, 35 / 45], atol=0.01)


def test_hog_of_horizontal_ramp():
    img = np.tile(np.arange(32, dtype=np.float32) * 2, (32, 1))  # I = 2x: [-1,0,1] gives 4 inside
    desc = _descriptor(hg.hog_integral(img))
    # the border columns see reflected borders (gradient 0); interior columns have gradient 4
    gx = np.full((32, 32), 4.0)
    gx[:, 0] = gx[:, -1] = 0.0
    left, right = gx[:, :16].sum() / 2, gx[:, 16:].sum() / 2  # per cell (16 rows each)
    cells = [[left] + [0] * 7, [left] + [0] * 7, [right] + [0] * 7, [right] + [0] * 7]
    vec = np.asarray(cells, np.float64).ravel() + hg.EPSILON
    np.testing.assert_allclose(desc, np.sqrt(vec / vec.sum()), rtol=1e-5)


def test_hof_of_translating_pattern_and_zero_bin():
    moving = np.stack([np.full((32, 32), 2.0), np.zeros((32, 32))])  # 2 px/frame to the right
    np.testing.assert_allclose(_descriptor(hg.hof_integral(moving)), _expected([512] + [0] * 8), rtol=1e-5)
    up = np.stack([np.zeros((32, 32)), np.full((32, 32), -1.0)])  # -y: 270 deg = bin 6
    np.testing.assert_allclose(_descriptor(hg.hof_integral(up)), _expected([0] * 6 + [256, 0, 0]), rtol=1e-5)
    slow = np.stack([np.full((32, 32), 0.3), np.zeros((32, 32))])  # below 0.4 px: zero bin, weight 1
    np.testing.assert_allclose(_descriptor(hg.hof_integral(slow)), _expected([0] * 8 + [256]), rtol=1e-5)


def test_mbh_ignores_constant_motion_and_sees_its_boundary():
    flow = np.stack([np.full((32, 32), 3.0), np.zeros((32, 32))])
    mbhx, mbhy = hg.mbh_integrals(flow)
    np.testing.assert_allclose(_descriptor(mbhx), np.full(32, np.sqrt(1 / 32)), rtol=1e-5)
    flow[0, :, 16:] = 0.0  # a motion boundary at x = 16: d(u)/dx = -3 at columns 15 and 16
    # each cell holds one boundary column of 16 pixels with gradient (-3, 0): 180 deg = bin 4
    np.testing.assert_allclose(_descriptor(hg.mbh_integrals(flow)[0]), _expected([0, 0, 0, 0, 48, 0, 0, 0]),
                               rtol=1e-5)
    mbhy = _descriptor(hg.mbh_integrals(flow)[1])
    np.testing.assert_allclose(mbhy, np.full(32, np.sqrt(1 / 32)), rtol=1e-5)


def test_pool_time_means_over_three_cells_of_five_frames():
    per_frame = np.arange(15, dtype=np.float32).reshape(1, 15, 1)
    np.testing.assert_allclose(hg.pool_time(per_frame), [[2, 7, 12]])
    with pytest.raises(ValueError, match="shorter than 3"):
        hg.pool_time(per_frame[:, :2])


def test_patch_is_shifted_inside_and_small_images_rejected():
    c = hg.patch_corners(np.array([[1.0, 1.0], [60.0, 30.0]]), 40, 64)
    np.testing.assert_array_equal(c, [[0, 0], [32, 8]])
    with pytest.raises(ValueError, match="smaller than the 32x32"):
        hg.patch_corners(np.zeros((1, 2)), 20, 64)


def test_no_points_give_an_empty_descriptor_array():
    integral = hg.hof_integral(np.zeros((2, 32, 32)))
    assert hg.cell_descriptors(integral, np.zeros((0, 2), np.int64)).shape == (0, 36)
