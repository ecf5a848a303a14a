"""The regularisers and weights of thesis ch. 6 against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from deepvideo.visualize import regularizers as R


def test_chapter_constants():
    assert (R.B, R.ALPHA, R.V_RATIO, R.FLOW_TV_FACTOR) == (160.0, 3.0, 6.5, 10.0)
    assert R.KAPPAS == (10.0, 5.0, 2.5, 1.0) and R.CHIS == (10.0, 5.0, 1.0, 0.0)
    assert R.range_weight(4, 5) == pytest.approx(1 / (20 * 160.0**3))
    v = 160.0 / 6.5
    assert R.tv_weight(4, 5) == pytest.approx(1 / (20 * v**2))
    assert R.tv_weight(4, 5, flow=True) == pytest.approx(10 / (20 * v**2))


def test_range_penalty_and_projection():
    x = torch.zeros(2, 1, 1, 2)
    x[:, 0, 0, 0] = torch.tensor([3.0, 4.0])  # pixel norm 5
    assert float(R.range_penalty(x)) == pytest.approx(5.0**3, rel=1e-6)
    big = torch.zeros(2, 1, 1, 1)
    big[:, 0, 0, 0] = torch.tensor([300.0, 400.0])  # norm 500 > B
    p = R.project_range(big)
    assert float(p.pow(2).sum().sqrt()) == pytest.approx(160.0)
    torch.testing.assert_close(R.project_range(x), x)  # inside the ball: unchanged


def _ramp(spatial: float, temporal: float) -> torch.Tensor:
    """x(t, i, j) = spatial * j + temporal * t, one channel, T=3, 4x4."""
    t = torch.arange(3.0).view(3, 1, 1)
    j = torch.arange(4.0).view(1, 1, 4)
    return (spatial * j + temporal * t).expand(3, 4, 4)[None].clone()


def test_tv_terms_on_ramps():
    x = _ramp(2.0, 0.0)  # only horizontal differences of 2: 3 frames x 3x3 grid x 4
    assert float(R.tv2d(x)) == pytest.approx(3 * 9 * 4.0)
    y = _ramp(0.0, 1.0)  # only temporal differences of 1 (2 steps x 9 grid points)
    assert float(R.tv2d(y)) == pytest.approx(0.0, abs=1e-6)
    assert float(R.tv3d(y, kappa=2.5)) == pytest.approx(2.5 * 2 * 9, rel=1e-5)
    assert float(R.tv2d1d(y, chi=5.0)) == pytest.approx(5.0 * 2 * 9, rel=1e-5)
    assert float(R.tv2d1d(y, chi=0.0)) == pytest.approx(0.0, abs=1e-5)  # chi = 0: no temporal constraint
    assert float(R.tv3d(x, kappa=10.0)) == pytest.approx(float(R.tv2d(x)), rel=1e-5)
    with pytest.raises(ValueError, match="unknown regulariser"):
        R.total_variation(x, "tv4d")


def test_temporal_variation():
    assert R.temporal_variation(_ramp(0.0, 3.0)) == pytest.approx(3.0)
    assert R.temporal_variation(torch.ones(2, 1, 4, 4)) == 0.0
