"""Ground-truth pairs: determinism, exactness of the relation, EPE."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepvideo.flow.groundtruth import epe, make_dataset, make_sample, stack_samples


@pytest.mark.parametrize("kind", ["translation", "smooth", "objects"])
def test_deterministic_and_valid(kind):
    a, b = make_sample(kind, 40, 48, seed=5), make_sample(kind, 40, 48, seed=5)
    c = make_sample(kind, 40, 48, seed=6)
    assert np.array_equal(a.prev, b.prev) and np.array_equal(a.flow, b.flow)
    assert not np.array_equal(a.prev, c.prev)
    assert a.prev.shape == (40, 48, 3) and a.prev.dtype == np.uint8 and a.flow.shape == (2, 40, 48)
    assert 0.5 < a.valid.mean() <= 1.0
    # brightness constancy: prev(x) == next(x + flow(x)) at valid pixels (up to rounding)
    h, w = a.valid.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = (xs + a.flow[0]) / (w - 1) * 2 - 1, (ys + a.flow[1]) / (h - 1) * 2 - 1
    grid = torch.from_numpy(np.stack([gx, gy], -1))
    nxt = torch.from_numpy(a.next).permute(2, 0, 1)[None].float()
    warped = torch.nn.functional.grid_sample(nxt, grid[None], align_corners=True)[0].permute(1, 2, 0).numpy()
    diff = np.abs(warped - a.prev.astype(np.float32)).mean(-1)[a.valid]
    assert np.median(diff) < 2.0


def test_objects_have_occlusions():
    s = make_sample("objects", 64, 64, seed=2, max_disp=4)
    assert (~s.valid).sum() > 10
    assert len(np.unique(np.round(s.flow[0], 3))) > 3  # several motions


def test_epe_self_is_zero_and_known_value():
    s = make_sample("smooth", 32, 32, seed=1)
    assert epe(s.flow, s.flow, s.valid) == 0.0
    shifted = s.flow.copy()
    shifted[0] += 3.0
    shifted[1] += 4.0
    assert epe(shifted, s.flow) == pytest.approx(5.0, rel=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.floats(-5, 5), st.floats(-5, 5), st.integers(0, 3))
def test_epe_constant_offset_property(du, dv, n_masked_rows):
    gt = np.zeros((2, 2, 6, 5), np.float32)
    flow = gt + np.array([du, dv], np.float32)[None, :, None, None]
    mask = np.ones((2, 6, 5), bool)
    mask[:, :n_masked_rows] = False
    assert epe(flow, gt, mask) == pytest.approx(float(np.hypot(du, dv)), rel=1e-5, abs=1e-6)


def test_epe_errors_and_dataset():
    with pytest.raises(ValueError, match="one shape"):
        epe(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="no pixel"):
        epe(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), np.zeros((4, 4), bool))
    prev, nxt, flow, valid = stack_samples(make_dataset(3, 24, 32, seed=0))
    assert prev.shape == (3, 24, 32, 3) and flow.shape == (3, 2, 24, 32) and valid.dtype == torch.bool
    with pytest.raises(ValueError, match="unknown ground-truth kind"):
        make_sample("spiral")
