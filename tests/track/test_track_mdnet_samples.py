"""MDNet's sample generators (IoU constraints, spreads) and 107-pixel crops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepvideo.track.boxes import iou
from deepvideo.track.mdnet_samples import crop_regions, draw_samples, generate, in_ranges

FRAME = (320, 240)
BOX = np.array([100.0, 80.0, 40.0, 60.0])
# sd of clip(Z, -2, 2), Z ~ N(0, 1): E[Z^2; |Z| < 2] + 4 P(|Z| >= 2), E[Z^2; |Z| < 2] = P - 4 phi(2)
_P = math.erf(2 / math.sqrt(2))
CLIPPED_SD = math.sqrt(_P - 4 * math.exp(-2) / math.sqrt(2 * math.pi) + 4 * (1 - _P))


def overlaps(samples):
    return iou(samples, np.repeat(BOX[None], len(samples), axis=0))


@pytest.mark.parametrize("kind,trans,scale,iou_range,n", [
    ("gaussian", 0.1, 1.3, (0.7, 1.0), 500),     # first-frame positives
    ("uniform", 1.0, 1.6, (0.0, 0.5), 400),      # first-frame negatives
    ("whole", 1.0, 1.0, (0.0, 0.5), 400),
    ("uniform", 2.0, 1.3, (0.0, 0.3), 200),      # update negatives
    ("uniform", 0.3, 1.6, (0.6, 1.0), 300),      # box-regression samples
])
def test_draw_samples_meets_the_iou_range(kind, trans, scale, iou_range, n):
    rng = np.random.default_rng(0)
    samples = draw_samples(kind, rng, BOX, n, FRAME, trans, scale, iou_range=iou_range)
    assert samples.shape == (n, 4)
    r = overlaps(samples)
    assert r.min() >= iou_range[0] and r.max() <= iou_range[1]


def test_area_range_filter():
    rng = np.random.default_rng(1)
    samples = draw_samples("uniform", rng, BOX, 200, FRAME, 0.3, 1.6, 1.1, (0.6, 1.0), (1.0, 2.0))
    ratio = samples[:, 2] * samples[:, 3] / (BOX[2] * BOX[3])
    assert len(samples) == 200 and ratio.min() >= 1.0 and ratio.max() <= 2.0


def test_gaussian_candidates_have_the_papers_spread():
    """diag(0.09 r², 0.09 r², 0.25) on (x, y, s), scale 1.05^s; py-MDNet clips at 2σ."""
    rng = np.random.default_rng(2)
    samples = generate("gaussian", rng, BOX, 20000, (2000, 2000), trans=0.6, scale=1.05)
    r = BOX[2:].mean()
    shift = samples[:, :2] + samples[:, 2:] / 2 - (BOX[:2] + BOX[2:] / 2)
    assert np.abs(shift).max() <= 0.6 * r + 1e-9
    assert np.allclose(shift.std(axis=0), 0.3 * r * CLIPPED_SD, rtol=0.03)
    s = np.log(samples[:, 2] / BOX[2]) / np.log(1.05)
    np.testing.assert_allclose(samples[:, 3] / BOX[3], samples[:, 2] / BOX[2])   # one scale for w, h
    assert np.abs(s).max() <= 1 + 1e-9 and abs(s.std() - 0.5 * CLIPPED_SD) < 0.02


def test_whole_samples_cover_the_frame_and_sizes_are_clipped():
    rng = np.random.default_rng(3)
    samples = generate("whole", rng, BOX, 400, FRAME)
    centres = samples[:, :2] + samples[:, 2:] / 2
    assert centres[:, 0].min() < 40 and centres[:, 0].max() > 280
    assert centres[:, 1].min() < 40 and centres[:, 1].max() > 200
    huge = generate("uniform", rng, [0, 0, 500, 500], 50, FRAME, 0.1, 1.0)
    assert huge[:, 2].max() <= FRAME[0] - 10 and huge[:, 3].max() <= FRAME[1] - 10
    with pytest.raises(ValueError, match="unknown sample kind 'ring'"):
        generate("ring", rng, BOX, 3, FRAME)


def test_draw_samples_returns_fewer_when_the_range_is_out_of_reach():
    rng = np.random.default_rng(4)
    samples = draw_samples("gaussian", rng, BOX, 50, FRAME, 0.01, 1.0, iou_range=(0.0, 0.1))
    assert len(samples) == 0
    assert in_ranges(np.array([BOX]), BOX, (0.99, 1.0)).tolist() == [True]


def test_crop_puts_the_box_in_the_central_75_pixels_with_16_of_context():
    frame = np.full((240, 320, 3), 30, np.uint8)
    frame[80:140, 100:140] = (200, 10, 10)           # BOX: x 100..140, y 80..140
    patch = crop_regions(frame, BOX[None])[0]
    assert patch.shape == (107, 107, 3)
    np.testing.assert_array_equal(patch[18:89, 18:89], np.broadcast_to([200, 10, 10], (71, 71, 3)))
    assert (patch[:14] == 30).all() and (patch[93:] == 30).all() and (patch[:, :14] == 30).all()
    corner = crop_regions(frame, [[-50.0, -50.0, 40.0, 40.0]])[0]
    assert (corner[:40, :40] == 128).all()             # outside the frame: grey 128
