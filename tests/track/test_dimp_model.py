"""DiMP's model predictor: the steepest-descent step against the paper's formula, the learned
loss's initial values (the paper's / the authors' settings), the distance bins and the network."""

from __future__ import annotations

import math

import pytest
import torch

from deepvideo.track import dimp
from deepvideo.track.dimp import DiMPNet, SteepestDescent, apply_filter, distance_bins, filter_transpose


def explicit_scores(feat: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``s[i, o] = Σ_{c,u,v} x_pad[i, c, o_y + u, o_x + v] f[c, u, v]`` by loops (one sequence)."""
    k = w.shape[-1]
    x = torch.nn.functional.pad(feat[:, 0], (k // 2,) * 4)
    out_h, out_w = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    s = torch.zeros(feat.shape[0], out_h, out_w, dtype=feat.dtype)
    for i in range(feat.shape[0]):
        for oy in range(out_h):
            for ox in range(out_w):
                s[i, oy, ox] = (x[i, :, oy:oy + k, ox:ox + k] * w[0]).sum()
    return s[:, None]


def test_steepest_descent_step_is_the_papers_closed_form():
    """f' = f − β α ∇L, α = ||∇L||² / (||J ∇L||² + λ||∇L||²), for L = ½ Σ ||v (m s + (1−m) max(0, s)
    − y)||² + ½ λ ||f||², with ∇L and the Jacobian J of the residuals from autograd."""
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 1, 3, 5, 5, generator=g, dtype=torch.float64)
    w0 = 0.3 * torch.randn(1, 3, 2, 2, generator=g, dtype=torch.float64)
    y = torch.rand(2, 1, 6, 6, generator=g, dtype=torch.float64)
    m = torch.rand(2, 1, 6, 6, generator=g, dtype=torch.float64)
    v = 0.5 + torch.rand(2, 1, 6, 6, generator=g, dtype=torch.float64)
    lam, beta = 0.37, 0.9
    sd = SteepestDescent().double()

    def residual(w):
        s = explicit_scores(feat, w)
        return (v * (m * s + (1 - m) * torch.clamp(s, min=0) - y)).flatten()

    r = residual(w0)
    jac = torch.autograd.functional.jacobian(residual, w0).reshape(r.numel(), -1)
    grad = jac.T @ r + lam * w0.flatten()
    alpha = grad.dot(grad) / ((jac @ grad).square().sum() + lam * grad.dot(grad))
    expected = w0.flatten() - beta * alpha * grad
    got = sd.step(w0, feat, y, m, v, torch.tensor(lam, dtype=torch.float64))
    assert torch.allclose(got.flatten(), expected, atol=1e-10)


def test_filter_and_its_adjoint():
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(2, 3, 4, 6, 6, generator=g, dtype=torch.float64)
    w = torch.randn(3, 4, 4, 4, generator=g, dtype=torch.float64)
    s = apply_filter(feat, w)
    assert s.shape == (2, 3, 7, 7)                       # even kernel: one more cell
    assert torch.allclose(s[:, :1], explicit_scores(feat[:, :1], w[:1]))
    u = torch.randn_like(s)
    # <A w, u> == <w, Aᵀ u>
    assert torch.allclose((s * u).sum(), (w * filter_transpose(feat, u, 4)).sum())


def test_learned_loss_starts_at_the_authors_values():
    sd = SteepestDescent()
    assert sd.num_iter == 5 and sd.bins == 100 and sd.bin_displacement == pytest.approx(0.1)
    assert torch.exp(sd.log_step_length).item() == pytest.approx(0.9)
    assert sd.regularization().item() == pytest.approx(0.1 ** 2)
    sd.filter_reg.data.fill_(0.0)
    assert sd.regularization().item() == pytest.approx(1e-3 ** 2)   # min_filter_reg
    d = torch.arange(100) * 0.1
    gauss = torch.exp(-0.5 * (d / 0.9) ** 2)                       # σ = 1/4 / 5 · 18 cells
    assert dimp.INIT_SIGMA == pytest.approx(0.9)
    assert torch.allclose(sd.label_net.weight.flatten(), gauss - gauss.min())
    assert torch.allclose(sd.mask_net.weight.flatten(), 3 * torch.tanh(2 - d))
    assert torch.all(sd.weight_net.weight == 1)


def test_distance_bins_are_triangular_with_an_open_last_bin():
    b = distance_bins(torch.tensor([[0.0, 0.0]]), (1, 40), 5, 1.0)
    assert b.shape == (1, 5, 1, 40)
    assert torch.allclose(b.sum(dim=1), torch.ones(1, 1, 40))
    assert b[0, :, 0, 0].tolist() == [1, 0, 0, 0, 0]
    half = distance_bins(torch.tensor([[2.5, 0.0]]), (1, 1), 5, 1.0)[0, :, 0, 0]
    assert torch.allclose(half, torch.tensor([0, 0, 0.5, 0.5, 0]))
    assert b[0, -1, 0, 30] == 1                               # far: the last bin


def test_optimiser_lowers_its_loss_and_keeps_the_iterates():
    torch.manual_seed(0)
    sd = SteepestDescent(num_iter=4, init_sigma=1.0)
    feat = torch.randn(3, 2, 8, 9, 9)
    boxes = torch.tensor([60.0, 50.0, 40.0, 30.0]).expand(3, 2, 4)
    w0 = torch.zeros(2, 8, 4, 4)

    def loss(w):
        y, m, v = sd.loss_maps(boxes, (10, 10), 4)
        s = apply_filter(feat, w)
        r = v * (m * s + (1 - m) * torch.relu(s) - y) / math.sqrt(3)
        return (r.square().sum() + sd.regularization() * w.square().sum()).item()

    with torch.no_grad():
        w, iterates = sd(w0, feat, boxes)
    assert len(iterates) == 5 and iterates[0] is w0 and iterates[-1] is w
    values = [loss(x) for x in iterates]
    assert all(b < a for a, b in zip(values, values[1:], strict=False))


def test_network_shapes_and_gradients_through_the_unrolled_optimiser():
    torch.manual_seed(0)
    net = DiMPNet(18, width=0.125, iou_dim=16, num_iter=2)
    images = torch.rand(2, 2, 3, 96, 96) * 255                  # 2 images of 2 sequences
    boxes = torch.tensor([30.0, 30.0, 30.0, 30.0]).expand(2, 2, 4)
    proposals = torch.tensor([28.0, 33.0, 31.0, 29.0]).expand(2, 2, 5, 4)
    out = net(images, images, boxes, proposals)
    assert len(out["scores"]) == 3 and out["scores"][0].shape == (2, 2, 7, 7)
    assert out["iou"].shape == (2, 2, 5)
    sum(s.square().mean() for s in out["scores"]).backward()
    assert net.optimizer.log_step_length.grad is not None and net.optimizer.mask_net.weight.grad is not None
    assert net.initializer.conv.weight.grad.abs().sum() > 0
    assert net.config["clf_dim"] == 32 and DiMPNet(50, width=0.0625, iou_dim=8).config["clf_dim"] == 32
