"""Our PyTorch TV-L1 against ground truth and OpenCV's DualTVL1."""

import numpy as np
import pytest
import torch

from deepvideo.flow import compute_flow
from deepvideo.flow.groundtruth import epe, make_sample
from deepvideo.flow.tvl1 import (
    _COMPILED,
    PRESETS,
    TVL1Params,
    _batcher_network,
    _block,
    _block_inplace,
    _selection_network,
    _with_fallback,
    median_filter,
    median_unfold,
    tvl1_flow,
)


@pytest.fixture(scope="module")
def pairs():
    samples = [make_sample("translation", 48, 64, seed=11, max_disp=2.5),
               make_sample("smooth", 48, 64, seed=12, max_disp=2.5)]
    return samples


def test_default_preset_is_opencvs_defaults():
    p = PRESETS["default"]
    assert (p.tau, p.lam, p.theta, p.scales, p.warps, p.epsilon) == (0.25, 0.15, 0.3, 5, 5, 0.01)
    assert p.inner_iterations * p.outer_iterations == 300 and p.scale_step == 0.8 and p.median_filtering == 5
    fast = PRESETS["fast"]
    assert fast.warps < p.warps and fast.scales < p.scales
    assert fast.inner_iterations * fast.outer_iterations < 300


def test_translation_epe_small_and_close_to_opencv(pairs):
    s = pairs[0]
    ours = compute_flow((s.prev[None], s.next[None]), method="tvl1", preset="fast")
    ref = compute_flow((s.prev[None], s.next[None]), method="opencv-tvl1")
    e_ours, e_ref = epe(ours[0], s.flow, s.valid), epe(ref[0], s.flow, s.valid)
    assert e_ours < 0.25
    assert e_ours < e_ref + 0.1
    assert epe(ours[0], ref[0], s.valid) < 0.25


def test_default_preset_matches_opencv_on_smooth_field(pairs):
    s = pairs[1]
    ours = compute_flow((s.prev[None], s.next[None]), method="tvl1")
    ref = compute_flow((s.prev[None], s.next[None]), method="opencv-tvl1")
    e_ours, e_ref = epe(ours[0], s.flow, s.valid), epe(ref[0], s.flow, s.valid)
    assert e_ours <= 1.1 * e_ref + 0.02
    assert epe(ours[0], ref[0]) < 0.15


def test_batched_equals_unbatched(pairs):
    prev = np.stack([s.prev for s in pairs])
    nxt = np.stack([s.next for s in pairs])
    both = tvl1_flow(prev, nxt, preset="fast")
    one = torch.cat([tvl1_flow(prev[i:i + 1], nxt[i:i + 1], preset="fast") for i in range(2)])
    assert both.shape == (2, 2, 48, 64)
    torch.testing.assert_close(both, one, atol=1e-4, rtol=0)
    chunked = tvl1_flow(prev, nxt, preset="fast", batch_size=1)
    torch.testing.assert_close(both, chunked, atol=1e-4, rtol=0)


def test_zero_motion_and_params():
    rng = np.random.default_rng(0)
    img = (rng.random((1, 24, 32)) * 255).astype(np.uint8)
    flow = tvl1_flow(img, img, preset="fast")
    assert flow.abs().max() < 1e-3
    with pytest.raises(ValueError, match="unknown tvl1 parameters"):
        tvl1_flow(img, img, nonsense=1)
    with pytest.raises(ValueError, match="unknown tvl1 preset"):
        tvl1_flow(img, img, preset="slow")
    assert TVL1Params(warps=2).warps == 2


def test_median_network_is_exact():
    assert len(_batcher_network(4)) == 5  # Batcher's network for 4 inputs has 5 comparators
    for n, rank in [(9, 4), (25, 12)]:
        net = _selection_network(n, rank)
        rng = np.random.default_rng(n)
        for _ in range(50):
            vals = list(rng.integers(0, 5, n))
            for a, b, _lo, _hi in net:
                if vals[a] > vals[b]:
                    vals[a], vals[b] = vals[b], vals[a]
            assert vals[rank] == sorted(vals)[rank]
    column_net = _selection_network(25, 12, column=5)
    assert len(column_net) < len(_selection_network(25, 12))
    x = torch.randn(2, 2, 13, 17)
    assert torch.equal(median_filter(x, 5), median_unfold(x, 5))
    assert torch.equal(median_filter(x, 3), median_unfold(x, 3))
    ties = torch.randint(0, 3, (1, 2, 9, 10)).float()
    assert torch.equal(median_filter(ties, 5), median_unfold(ties, 5))
    const = torch.full((1, 1, 6, 6), 2.5)
    assert torch.equal(median_filter(const, 5), const)


def test_functional_step_equals_inplace_step():
    """The step torch.compile fuses (_block) computes what the eager in-place step does."""
    g = torch.Generator().manual_seed(0)
    u, p = torch.randn(2, 2, 9, 11, generator=g), torch.randn(2, 4, 9, 11, generator=g) * 0.1
    grad_i, rho_c = torch.randn(2, 2, 9, 11, generator=g), torch.randn(2, 1, 9, 11, generator=g)
    neg_inv = -1.0 / (grad_i * grad_i).sum(1, keepdim=True).clamp_min(0.1)
    ua, pa, ea = _block(u, p, grad_i, rho_c, neg_inv, 0.045, 0.3, 0.25 / 0.3, 7)
    ub, pb, eb = _block_inplace(u.clone(), p.clone(), grad_i, rho_c, neg_inv, 0.045, 0.3, 0.25 / 0.3, 7)
    torch.testing.assert_close(ua, ub)
    torch.testing.assert_close(pa, pb)
    torch.testing.assert_close(ea, eb)


def test_compile_failure_falls_back_to_eager():
    def broken(*args):
        raise RuntimeError("no compiler")

    calls = []
    call = _with_fallback("test", broken, lambda *a: calls.append(a) or "eager")
    saved = dict(_COMPILED)
    try:
        with pytest.warns(RuntimeWarning, match="running eager"):
            assert call(1, 2) == "eager"
        assert call(3) == "eager" and calls == [(1, 2), (3,)]
    finally:
        _COMPILED.clear()
        _COMPILED.update(saved)
