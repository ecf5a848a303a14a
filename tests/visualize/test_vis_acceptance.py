"""Issue 15's acceptance on a motion stream trained in the test (``conftest.motion_stream``, the
model of ``benchmarks/bench_visualize.py``): maximised class inputs move like their class as the
model sees them, kappa smooths over time, chi = 0 leaves time unconstrained, Grad-CAM lies on the
moving object.

The direction is measured on the flow after the model's mean displacement subtraction: the mean
(u, v) over the 10 % of vectors of largest magnitude for the four translations, the curl over
the same vectors for the two rotations (positive = clockwise on screen), summed over three noise
seeds (one maximisation from noise is one sample of what excites the unit). The class units are
maximised with the bench's ``DIRECTION_OPTIONS`` (TV3D with kappa = 10, jitter).
"""

from __future__ import annotations

import pytest
import torch

from deepvideo.visualize import regularizers as R
from deepvideo.visualize.maximize import MaximizeOptions, maximize

DIRECTIONS = (
    "MoveLeft",
    "MoveRight",
    "MoveUp",
    "MoveDown",
    "RotateClockwise",
    "RotateCounterclockwise",
)


@pytest.mark.parametrize("name", DIRECTIONS)
def test_maximised_flow_moves_like_its_class(vis_bench, motion_stream, name):
    key, sign = vis_bench.EXPECTED[name]
    seen = vis_bench.seen_motion(motion_stream, vis_bench.class_inputs(motion_stream, name))
    assert sign * seen[key] > 0, f"{name}: seen {seen}"


def test_larger_kappa_gives_temporally_smoother_flow(vis_bench, motion_stream):
    sweep = vis_bench.kappa_chi_variation(motion_stream)
    variation = [sweep[f"kappa={k:g}"][0] for k in R.KAPPAS]  # kappa 10, 5, 2.5, 1
    assert variation == sorted(variation) and variation[-1] > variation[0], variation
    assert sweep["chi=0"][0] > sweep["chi=10"][0]


def test_chi_zero_is_no_temporal_constraint(vis_bench, motion_stream):
    opts = {**vis_bench.CLASS_OPTIONS, "steps": 20}
    free = maximize(motion_stream.model, "logits", 1, MaximizeOptions(reg="tv2d1d", chi=0.0, **opts))
    spatial = maximize(motion_stream.model, "logits", 1, MaximizeOptions(reg="tv2d", **opts))
    torch.testing.assert_close(free.inputs["flow"], spatial.inputs["flow"])


def test_gradcam_concentrates_on_the_moving_object(vis_bench, motion_stream):
    """Mean heat inside the renderer's object masks vs outside, over the held-out moving clips."""
    ratio, heats = vis_bench.gradcam_contrast(motion_stream)
    assert len(heats) == 9 * vis_bench.HELD_OUT and ratio >= 3.0, f"inside / outside = {ratio:.2f}"
