"""ATOM's parts: the IoU-Net (RoI pooling, modulation, gradient-ascent refinement, top-k box) and
the online classifier (Gauss-Newton + CG against a direct solve, sample memory, localisation,
the paper's values)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from deepvideo.track import iounet, online_classifier
from deepvideo.track.iounet import IoUNet, pool_boxes, refine_boxes, top_k_box
from deepvideo.track.online_classifier import (
    ATOMClassifier,
    SampleMemory,
    conjugate_gradient,
    gauss_newton_step,
    localize,
    mlu,
)


def test_pool_boxes_is_roi_align_and_differentiable_in_the_boxes():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 3, 20, 20, generator=g, dtype=torch.float64)
    boxes = torch.tensor([[[16.0, 24, 40, 50], [30, 30, 20, 70]], [[50, 60, 33, 21], [8, 8, 100, 90]]],
                         dtype=torch.float64, requires_grad=True)
    mine = pool_boxes(f, boxes, 5, 8)
    assert mine.shape == (4, 3, 5, 5)
    flat = boxes.detach().reshape(-1, 4)
    index = torch.tensor([[0.0], [0], [1], [1]], dtype=torch.float64)
    rois = torch.cat([index, flat[:, :2], flat[:, :2] + flat[:, 2:]], 1)
    reference = roi_align(f, rois, (5, 5), spatial_scale=1 / 8, sampling_ratio=4, aligned=False)
    assert torch.allclose(mine, reference, atol=1e-10)
    mine.sum().backward()
    assert boxes.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"boxes must be \[B=2, P, 4\]"):
        pool_boxes(f, flat, 5, 8)


@pytest.fixture(scope="module")
def head():
    torch.manual_seed(0)
    net = IoUNet((8, 16), 16).eval()
    f3, f4 = torch.randn(1, 8, 24, 24), torch.randn(1, 16, 12, 12)
    with torch.no_grad():
        modulation = net.modulation(f3, f4, torch.tensor([[70.0, 60, 50, 60]]))
        test = net.test_features(f3, f4)
    return net, modulation, test


def test_iounet_shapes(head):
    net, modulation, test = head
    assert [m.shape for m in modulation] == [(1, 16), (1, 16)]
    assert net.ref3[0].out_channels == 8                 # the reference block3 branch: dim / 2
    proposals = torch.tensor([[[60.0, 50, 40, 40], [70, 60, 50, 60], [10, 10, 30, 30]]])
    assert net.predict_iou(modulation, test, proposals).shape == (1, 3)
    maps = (torch.randn(2, 8, 24, 24), torch.randn(2, 16, 12, 12))
    assert net(maps, torch.rand(2, 4) * 50 + 20, maps, torch.rand(2, 7, 4) * 50 + 20).shape == (2, 7)


def test_refinement_step_follows_the_scaled_gradient_and_raises_the_predicted_iou(head):
    net, modulation, test = head
    boxes = torch.tensor([[60.0, 50, 40, 40], [75, 66, 50, 60], [40, 40, 60, 30]])
    x = boxes.clone().requires_grad_(True)
    before = net.predict_iou(modulation, test, x[None])
    (grad,) = torch.autograd.grad(before.sum(), x)
    one, _ = refine_boxes(net, modulation, test, boxes, steps=1, step_length=0.5)
    assert torch.allclose(one, boxes + 0.5 * grad * boxes[:, 2:].repeat(1, 2), atol=1e-5)
    refined, _ = refine_boxes(net, modulation, test, boxes, steps=5, step_length=0.05)
    after = net.predict_iou(modulation, test, refined[None])[0]
    assert bool((after > before.detach()[0]).all())
    assert iounet.REFINE_STEPS == 5 and iounet.REFINE_STEP_LENGTH == 1.0 and iounet.TOP_K == 3


def test_top_k_box_averages_the_best_three_of_sensible_aspect():
    boxes = torch.tensor([[0.0, 0, 10, 10], [2, 2, 10, 10], [4, 4, 10, 10], [6, 6, 10, 10], [0, 0, 70, 10]])
    ious = torch.tensor([0.9, 0.8, 0.1, 0.7, 0.99])      # the last is too elongated (7:1 > 6)
    box, predicted = top_k_box(boxes, ious)
    assert torch.allclose(box, torch.tensor([8 / 3, 8 / 3, 10, 10]))
    assert float(predicted) == pytest.approx(0.8)
    assert top_k_box(boxes[4:], ious[4:]) is None          # none kept: the tracker keeps its box


def test_conjugate_gradient_solves_a_small_spd_system_exactly():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = a @ a.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    (x,) = conjugate_gradient(lambda v: (a @ v[0],), (b,), 6)
    assert torch.allclose(x, torch.linalg.solve(a, b), atol=1e-8)


def test_gauss_newton_step_equals_the_direct_solution_of_the_normal_equations():
    """Δ = −(JᵀJ + Λ)⁻¹ (Jᵀ r + Λ w) for ATOM's two-layer residual, J from autograd."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    y = torch.rand(2, 5, 5, generator=g, dtype=torch.float64)
    sw = torch.tensor([0.6, 0.4], dtype=torch.float64).sqrt()[:, None, None]
    p0 = torch.randn(2, 3, 1, 1, generator=g, dtype=torch.float64)
    f0 = torch.randn(1, 2, 2, 2, generator=g, dtype=torch.float64)
    regs = (1e-4, 0.1)

    def residual(p, f):
        return sw * (torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, p), f, padding=1)[:, 0] - y)

    d = gauss_newton_step(residual, (p0, f0), regs, cg_iters=60)   # 14 unknowns; 60 as ATOM's init
    r = residual(p0, f0).flatten()
    jp, jf = torch.autograd.functional.jacobian(residual, (p0, f0))
    jac = torch.cat([jp.reshape(r.numel(), -1), jf.reshape(r.numel(), -1)], dim=1)
    lam = torch.diag(torch.tensor([regs[0]] * 6 + [regs[1]] * 8, dtype=torch.float64))
    w = torch.cat([p0.flatten(), f0.flatten()])
    direct = -torch.linalg.solve(jac.T @ jac + lam, jac.T @ r + lam @ w)
    assert torch.allclose(torch.cat([d[0].flatten(), d[1].flatten()]), direct, atol=1e-7)


def test_classifier_values_are_the_papers():
    c = ATOMClassifier()
    assert (c.dim, c.kernel) == (64, 4)
    assert c.regs == (1e-4, 0.1) and c.sigma_factor == 0.25 and c.learning_rate == 0.01
    assert (c.init_gn_iter, c.init_cg_iter, c.cg_iter, c.train_skipping) == (6, 60, 5, 10)
    assert c.memory.capacity == 250 and c.memory.min_init_weight == 0.25
    assert (c.activation, c.mlu_alpha) == ("mlu", 0.05)       # response_activation = ('mlu', 0.05)
    oc = online_classifier
    assert (oc.HARD_NEGATIVE_LR, oc.HARD_NEGATIVE_CG_ITER, oc.NOT_FOUND, oc.DISTRACTOR, oc.HARD_NEGATIVE,
            oc.NEIGHBOURHOOD, oc.DISPLACEMENT_SCALE) == (0.02, 5, 0.25, 0.8, 0.5, 2.2, 0.8)


def target_features(cx: int, cy: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(1, 16, 14, 14, generator=g)
    x[0, :4, cy - 1:cy + 2, cx - 1:cx + 2] += 2.0          # the target's look
    return x


def test_classifier_learns_the_target_and_finds_it_moved():
    c = ATOMClassifier(dim=8, seed=0)
    c.initialize(target_features(5, 5), (4.0, 4.0, 3.0, 3.0))      # the target spans cells 4..6
    s = c.score(target_features(5, 5))
    assert s.shape == (14, 14)
    assert divmod(int(s.argmax()), 14) == (5, 5) and float(s.max()) > 0.5
    moved = c.score(target_features(9, 4, seed=3))
    assert divmod(int(moved.argmax()), 14) == (4, 9)
    with pytest.raises(ValueError, match="need one box or 1 boxes"):
        c.update(target_features(5, 5), (1, 1, 0, 3))


def test_mlu_is_elu_of_leaky_relu():
    x = torch.tensor([-1.0, -0.05, -0.01, 0.0, 0.3, 2.0])
    expected = torch.where(x >= 0, x, 0.05 * (torch.exp(x / 0.05) - 1))
    assert torch.allclose(mlu(x), expected, atol=1e-7)
    assert float(mlu(torch.tensor(-100.0))) == pytest.approx(-0.05)
    with pytest.raises(ValueError, match="activation must be one of"):
        ATOMClassifier(activation="relu")


def test_each_activation_minimises_its_own_objective():
    """The Gauss-Newton residual applies the activation: each classifier's solution scores better
    on its own objective than the other's, from the same start and data."""
    fits = {}
    for activation in ("mlu", "none"):
        c = ATOMClassifier(dim=8, seed=0, activation=activation)
        c.initialize(target_features(5, 5), (4.0, 4.0, 3.0, 3.0))
        fits[activation] = c
    m, n = fits["mlu"], fits["none"]
    assert m.objective(m.projection, m.filter) < m.objective(n.projection, n.filter)
    assert n.objective(n.projection, n.filter) < n.objective(m.projection, m.filter)
    assert float(m.raw_scores(target_features(5, 5)).min()) < float(n.raw_scores(target_features(5, 5)).min())


def test_classifier_updates_the_filter_every_tenth_frame_or_at_a_hard_negative():
    c = ATOMClassifier(dim=8, seed=0)
    c.initialize(target_features(5, 5), (4.0, 4.0, 3.0, 3.0))
    filters = [c.filter]
    for i in range(10):
        c.update(target_features(5, 5, seed=i + 1), (4.0, 4.0, 3.0, 3.0))
        filters.append(c.filter)
    assert all(f is filters[0] for f in filters[:10]) and filters[10] is not filters[0]
    c.update(target_features(6, 6, seed=20), (5.0, 5.0, 3.0, 3.0), hard_negative=True)
    assert c.filter is not filters[10]
    assert c.memory.weights[-1].item() == pytest.approx(0.02 / c.memory.weights.sum().item(), rel=0.2)


def test_sample_memory_weights():
    m = SampleMemory(capacity=4, min_init_weight=0.25)
    m.initialize(torch.zeros(2, 1), torch.zeros(2, 1))
    assert m.weights.tolist() == [0.5, 0.5]
    m.add(torch.ones(1), torch.ones(1), 0.5)           # decay 0.5, new 0.5: init keeps 0.5 >= 0.25
    assert m.weights.tolist() == pytest.approx([0.25, 0.25, 0.5])
    m.add(torch.ones(1), torch.ones(1), 0.9)           # init would have 0.05: raised to 0.25
    assert m.weights[:2].sum().item() == pytest.approx(0.25)
    assert m.weights.sum().item() == pytest.approx(1.0)
    low = int(m.weights[2:].argmin()) + 2
    m.add(2 * torch.ones(1), 2 * torch.ones(1), 0.9)   # full: the lowest non-initial sample goes
    assert len(m.features) == 4 and float(m.features[low]) == 2
    assert m.weights[:2].sum().item() == pytest.approx(0.25)


def test_localize_flags():
    s = np.zeros((19, 19))                               # displacement threshold 0.8 * 19 / 2 = 7.6
    s[9, 9] = 0.2
    assert localize(s, (4, 4), (9, 9))[1] == "not_found"
    s[9, 9] = 1.0
    assert localize(s, (4, 4), (9, 9)) == ((9, 9), "normal", 1.0)
    s[9, 11] = 0.9                                       # within 2.2 target sizes: ignored
    assert localize(s, (4, 4), (9, 9))[1] == "normal"
    s[1, 1] = 0.6                                        # far, above 0.5 of the peak
    assert localize(s, (4, 4), (9, 9))[1] == "hard_negative"
    s[1, 1] = 0.95                                       # a distractor: the peak near the last position
    assert localize(s, (4, 4), (9, 9)) == ((9, 9), "hard_negative", 1.0)
    assert localize(s, (4, 4), (2, 2)) == ((1, 1), "hard_negative", 0.95)
    assert localize(s, (4, 4), (5, 5))[1] == "uncertain"          # both near
    assert localize(s, (4, 4), (18, 0))[1] == "uncertain"         # both far
