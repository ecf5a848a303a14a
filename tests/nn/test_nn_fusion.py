"""Fusion functions (Feichtenhofer et al. CVPR 2016): values, initializations, alignment."""

import pytest
import torch

from deepvideo.nn.fusion import (
    Conv3dFusion,
    ConvFusion,
    Fusion,
    align_spatial,
    fuse_bilinear,
    fuse_concat,
    fuse_max,
    fuse_sum,
    fusion_pool3d,
    gaussian_kernel3d,
)


def test_sum_and_max_values():
    a = torch.tensor([[[[1.0, -2.0]]]])
    b = torch.tensor([[[[0.5, 3.0]]]])
    assert torch.equal(fuse_sum(a, b), torch.tensor([[[[1.5, 1.0]]]]))
    assert torch.equal(fuse_max(a, b), torch.tensor([[[[1.0, 3.0]]]]))


def test_concat_interleaves_channels():
    a = torch.arange(3.0).view(1, 3, 1, 1)
    b = 10 + torch.arange(3.0).view(1, 3, 1, 1)
    y = fuse_concat(a, b)
    assert y.flatten().tolist() == [0, 10, 1, 11, 2, 12]
    assert fuse_concat(a, b, interleave=False).flatten().tolist() == [0, 1, 2, 10, 11, 12]


@pytest.mark.parametrize("shape", [(2, 6), (2, 6, 5, 4), (2, 6, 3, 5, 4)])
def test_conv_fusion_starts_as_sum(shape):
    torch.manual_seed(0)
    a, b = torch.randn(shape), torch.randn(shape)
    f = ConvFusion(6)
    assert torch.allclose(f(a, b), a + b, atol=1e-6)
    assert f.weight.shape == (6, 12)  # 1x1x2DxD


def test_conv_fusion_gradient_reaches_inputs_and_weights():
    a = torch.randn(2, 4, 3, 3, requires_grad=True)
    b = torch.randn(2, 4, 3, 3, requires_grad=True)
    f = ConvFusion(4)
    f(a, b).square().sum().backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0 and f.weight.grad.abs().sum() > 0


def test_bilinear_matches_reference():
    torch.manual_seed(1)
    a, b = torch.randn(2, 3, 4, 5), torch.randn(2, 2, 4, 5)
    y = fuse_bilinear(a, b)
    assert y.shape == (2, 6)
    ref = torch.einsum("nihw,njhw->nij", a, b).flatten(1)
    ref = torch.sign(ref) * ref.abs().sqrt()
    ref = ref / ref.norm(dim=1, keepdim=True)
    assert torch.allclose(y, ref, atol=1e-5)
    assert torch.allclose(y.norm(dim=1), torch.ones(2), atol=1e-5)


def test_align_pads_vggm_13_to_14():
    a, b = torch.ones(1, 2, 14, 14), torch.ones(1, 2, 13, 13)
    pa, pb = align_spatial(a, b)
    assert pa.shape == pb.shape == (1, 2, 14, 14)
    assert pb[..., 13, :].abs().sum() == 0 and pb[..., :13, :13].min() == 1
    assert fuse_sum(a, b).shape == (1, 2, 14, 14)


def test_sum_rejects_different_widths():
    with pytest.raises(ValueError, match="equal channel counts"):
        fuse_sum(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3))


def test_gaussian_kernel():
    g = gaussian_kernel3d(3, 1.0)
    assert g.shape == (3, 3, 3) and abs(float(g.sum()) - 1) < 1e-6
    # ratio centre / face neighbour = exp(1/2) for sigma 1
    assert abs(float(g[1, 1, 1] / g[0, 1, 1]) - float(torch.exp(torch.tensor(0.5)))) < 1e-5


def test_conv3d_fusion_init_is_identities_times_gaussian():
    f = Conv3dFusion(4, 4, 4)
    w = f.conv.weight
    g = gaussian_kernel3d()
    assert w.shape == (4, 8, 3, 3, 3)
    assert torch.allclose(w[2, 2], g) and torch.allclose(w[2, 6], 3 * g)
    assert w[2, 3].abs().sum() == 0 and w[2, 7].abs().sum() == 0
    # on a constant input the interior output is exactly x_a + 3 x_b
    a = torch.full((1, 4, 5, 6, 6), 2.0)
    b = torch.full((1, 4, 5, 6, 6), 0.5)
    y = f(a, b)
    assert y.shape == (1, 4, 5, 6, 6)
    assert torch.allclose(
        y[:, :, 1:-1, 1:-1, 1:-1], torch.full_like(y[:, :, 1:-1, 1:-1, 1:-1], 3.5), atol=1e-5
    )


def test_conv3d_fusion_then_pool_shapes():
    f = Conv3dFusion(8, 8, 4)
    pool = fusion_pool3d()
    y = pool(f(torch.randn(2, 8, 5, 14, 14), torch.randn(2, 8, 5, 13, 13)))
    assert y.shape == (2, 4, 3, 7, 7)
    assert pool(torch.randn(1, 2, 5, 13, 13)).shape == (1, 2, 3, 6, 6)


@pytest.mark.parametrize(
    "kind,channels", [("sum", 4), ("max", 4), ("concat", 8), ("conv", 4), ("bilinear", 16)]
)
def test_fusion_module_out_channels(kind, channels):
    f = Fusion(kind, 4)
    y = f(torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3))
    assert f.out_channels == channels and y.shape[1] == channels


def test_unknown_fusion():
    with pytest.raises(ValueError, match="unknown fusion"):
        Fusion("product", 4)
