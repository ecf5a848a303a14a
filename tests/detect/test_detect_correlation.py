"""The D&T correlation layer against an explicit loop of its definition."""

from __future__ import annotations

import pytest
import torch

from deepvideo.detect.correlation import MAX_DISPLACEMENT, correlation, correlation_channels


def explicit(x_t, x_tau, d, stride=1, dstride=1):
    n, c, h, w = x_t.shape
    shifts = range(-(d // dstride) * dstride, d + 1, dstride)
    out = torch.zeros(n, len(shifts) ** 2, len(range(0, h, stride)), len(range(0, w, stride)))
    for a, i in enumerate(range(0, h, stride)):
        for b, j in enumerate(range(0, w, stride)):
            for s, (p, q) in enumerate((p, q) for p in shifts for q in shifts):
                if 0 <= i + p < h and 0 <= j + q < w:
                    out[:, s, a, b] = (x_t[:, :, i, j] * x_tau[:, :, i + p, j + q]).sum(1)
    return out


@pytest.mark.parametrize("d,stride,dstride", [(2, 1, 1), (3, 2, 1), (4, 2, 2)])
def test_correlation_matches_the_definition(d, stride, dstride):
    g = torch.Generator().manual_seed(d)
    x_t, x_tau = torch.randn(2, 3, 5, 7, generator=g), torch.randn(2, 3, 5, 7, generator=g)
    got = correlation(x_t, x_tau, d, stride, dstride)
    assert torch.allclose(got, explicit(x_t, x_tau, d, stride, dstride), atol=1e-5)
    assert got.shape[1] == correlation_channels(d, dstride)
    assert torch.allclose(correlation(x_t, x_tau, d, stride, dstride, normalize=True), got / 3)


def test_paper_displacement_and_shape_errors():
    assert MAX_DISPLACEMENT == 8 and correlation_channels() == 17 ** 2
    with pytest.raises(ValueError, match="one shape"):
        correlation(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))
