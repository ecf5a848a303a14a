"""Convolutional two-stream fusion (Feichtenhofer et al. CVPR 2016): Table 3.1 parameters, fusion
at any layer, the 3D conv fusion architecture."""

import pytest
import torch

from deepvideo.models import create_model
from deepvideo.models.conv_fusion import conv_fusion, conv_fusion_3d
from deepvideo.nn.inputs import flow_to_snippets, rgb_to_snippets

SMALL = {"input_size": 112, "width": 0.125, "fc_dims": (32, 16), "flow_stack": 2}


def _count(**kw):
    with torch.device("meta"):  # count without allocating 180M parameters
        model = conv_fusion(101, **kw)
    return sum(p.numel() for p in model.parameters())


# (fusion, layer, paper's Table 3.1 figure, the Caffe-style figure of PAPERS.md)
TABLE = [
    ("sum", "softmax", 181.42e6, 181.34e6),
    ("max", "relu5", 97.31e6, 97.24e6),
    ("sum", "relu5", 97.31e6, 97.24e6),
    ("concat", "relu5", 172.81e6, 172.73e6),
]


@pytest.mark.parametrize("fusion,layer,paper,caffe", TABLE)
def test_table_3_1_parameter_counts(fusion, layer, paper, caffe):
    n = _count(fusion=fusion, layer=layer)
    assert abs(n - paper) / paper < 0.005
    assert round(n / 1e6, 2) == round(caffe / 1e6, 2)


def test_conv_and_bilinear_rows_as_documented():
    assert round(_count(fusion="conv", layer="relu5") / 1e6, 2) == 97.76  # paper: 97.58M
    with torch.device("meta"):
        m = conv_fusion(101, fusion="bilinear", layer="relu5")
    towers = sum(p.numel() for p in m.spatial.parameters()) + sum(p.numel() for p in m.temporal.parameters())
    assert round(towers / 1e6, 2) == 13.14 and m.head.in_features == 512 * 512  # paper: 6.61M + SVM


def _batch(n=2, k=1, L=2, size=112):
    return {"rgb": torch.randn(n, 3, k, size, size), "flow": torch.randn(n, 2, k * L, size, size)}


@pytest.mark.parametrize("layer", ["relu2", "relu3", "relu5", "fc6", "fc7", "fc8"])
@pytest.mark.parametrize("fusion", ["sum", "max", "concat", "conv"])
def test_fusion_at_any_layer(fusion, layer, samples_independent):
    model = conv_fusion(5, fusion=fusion, layer=layer, **SMALL)
    assert samples_independent(model, _batch()).shape == (2, 5)


def test_bilinear_fusion_and_gradients():
    model = conv_fusion(5, fusion="bilinear", layer="relu5", **SMALL)
    out = model(_batch(k=2))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("fusion,layer,next_fc", [("conv", "relu5", "fc6"), ("concat", "fc6", "fc7")])
def test_conv_and_concat_fusion_start_as_sum(fusion, layer, next_fc):
    torch.manual_seed(0)
    ref = conv_fusion(5, fusion="sum", layer=layer, **SMALL).eval()
    model = conv_fusion(5, fusion=fusion, layer=layer, **SMALL).eval()
    doubled = getattr(model.head, next_fc).weight
    if fusion == "concat":  # the doubled layer repeats its weights for each (a_c, b_c) pair
        assert torch.equal(doubled[:, 0::2], doubled[:, 1::2])
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith(f"head.{next_fc}")}
    model.load_state_dict(state, strict=False)
    ref_fc = getattr(ref.head, next_fc)
    w = ref_fc.weight.repeat_interleave(2, dim=1) if fusion == "concat" else ref_fc.weight
    getattr(model.head, next_fc).weight.data.copy_(w)
    getattr(model.head, next_fc).bias.data.copy_(ref_fc.bias)
    batch = _batch()
    y, y_ref = model(batch), ref(batch)
    assert y_ref.abs().max() > 1e-3  # scores large enough for the comparison to mean something
    assert torch.allclose(y, y_ref, atol=1e-7, rtol=1e-3)


@pytest.mark.parametrize("T,size", [(3, 64), (5, 112)])
def test_3d_fusion_shapes_losses_and_test_average(T, size):
    model = conv_fusion_3d(
        5, spatial_backbone="vgg_m_2048", temporal_backbone="vgg_m_2048", **{**SMALL, "input_size": size}
    )
    out = model(_batch(k=T, size=size))
    assert set(out) == {"logits", "aux_temporal"} and out["logits"].shape == (2, 5)
    sum(v.sum() for v in out.values()).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    y = model(_batch(k=T, size=size))
    assert y.shape == (2, 5)


def test_3d_fusion_mixed_vgg16_vggm_pads_13_to_14():
    model = conv_fusion_3d(
        3,
        spatial_backbone="vgg16",
        temporal_backbone="vgg_m_2048",
        input_size=224,
        width=1 / 32,
        fc_dims=(8, 8),
        flow_stack=1,
    ).eval()
    x = torch.randn(1, 3, 224, 224)
    assert model.spatial(x).shape[-1] == 14 and model.temporal(torch.randn(1, 2, 224, 224)).shape[-1] == 13
    assert model.fuse.conv.weight.shape == (16, 32, 3, 3, 3)
    with torch.no_grad():
        assert model(_batch(n=1, k=2, L=1, size=224)).shape == (1, 3)


def test_small_presets():
    for name in ("conv_fusion_small", "conv_fusion_vggm_small", "conv_fusion_2d_small"):
        model = create_model(name, num_classes=4).eval()
        spec = model.input_spec
        with torch.no_grad():
            y = model(_batch(n=1, k=spec.num_segments, L=spec.flow_stack, size=spec.crop_size))
        assert y.shape == (1, 4)


@pytest.mark.parametrize("scores", ["fc8", "softmax"])
def test_3d_fusion_test_time_average_of_the_two_towers(scores):
    """fc8: (fused + temporal) / 2 of the FC8 scores (default); softmax: log of the mean softmax."""
    torch.manual_seed(0)
    model = conv_fusion_3d(
        5, spatial_backbone="vgg_m_2048", temporal_backbone="vgg_m_2048", test_scores=scores, **SMALL
    ).eval()
    batch = _batch(k=3)
    with torch.no_grad():
        y = model(batch)
        model.training = True  # top level only: the towers stay in eval mode (no dropout)
        parts = model(batch)
        model.training = False
    fused, temporal = parts["logits"], parts["aux_temporal"]
    averaged = ((fused.softmax(-1) + temporal.softmax(-1)) / 2).log()
    expected = (fused + temporal) / 2 if scores == "fc8" else averaged
    torch.testing.assert_close(y, expected)
    with pytest.raises(ValueError, match="test_scores must be one of"):
        conv_fusion_3d(5, test_scores="mean", **SMALL)


def test_table_3_4_rows_2d_conv_and_2d_pool():
    conv2d_pool3d = create_model("conv_fusion_2dconv_3dpool_vgg16_vggm", 5, width=1 / 32, fc_dims=(8, 8),
                                 input_size=112, flow_stack=2)
    conv = conv2d_pool3d.fuse.conv
    assert conv.kernel_size == (1, 1, 1) and conv2d_pool3d.fused_pool.kernel_size == 3
    c = conv.out_channels  # 2D conv fusion starts as the sum: two stacked identities, no x3
    torch.testing.assert_close(conv.weight[:, :, 0, 0, 0], torch.cat([torch.eye(c), torch.eye(c)], 1))
    conv2d_pool2d = create_model("conv_fusion_2dconv_2dpool_vgg16_vggm", 5, width=1 / 32, fc_dims=(8, 8),
                                 input_size=112, flow_stack=2).eval()
    assert conv2d_pool2d.fused_pool.kernel_size == (1, 3, 3) and conv2d_pool2d.fused_pool.stride == (1, 2, 2)
    x = torch.randn(1, 4, 5, 8, 8)
    assert conv2d_pool2d.fused_pool(x).shape[2] == 5 and conv2d_pool3d.fused_pool(x).shape[2] == 3
    with torch.no_grad():
        assert conv2d_pool2d(_batch(n=1, k=5)).shape == (1, 5)


def test_softmax_layer_averages_the_softmax_scores():
    torch.manual_seed(0)
    model = conv_fusion(5, fusion="sum", layer="softmax", **SMALL).eval()
    batch = _batch(k=2)
    with torch.no_grad():
        y = model(batch)
        rgb, flow = rgb_to_snippets(batch["rgb"], 1), flow_to_snippets(batch["flow"], 2)
        probs = (model.spatial(rgb).softmax(-1) + model.temporal(flow).softmax(-1)) / 2
    torch.testing.assert_close(y, probs.reshape(2, 2, 5).mean(1).log())
    assert torch.allclose(y.exp().sum(-1), torch.ones(2))
    with pytest.raises(ValueError, match="use fusion='sum'"):
        conv_fusion(5, fusion="max", layer="softmax", **SMALL)


def test_concat_is_eq_3_3_with_each_pair_swapped():
    """Eq. 3.3 (1-based): y_2d = x^a_d, y_2d-1 = x^b_d; ours puts a_d first in each pair."""
    from deepvideo.nn.fusion import fuse_concat

    a, b = torch.randn(1, 3, 2, 2), torch.randn(1, 3, 2, 2)
    eq33 = torch.empty(1, 6, 2, 2)
    for d in range(1, 4):
        eq33[:, 2 * d - 1] = a[:, d - 1]  # 0-based index of y_2d
        eq33[:, 2 * d - 2] = b[:, d - 1]  # 0-based index of y_2d-1
    swap = [1, 0, 3, 2, 5, 4]
    assert torch.equal(fuse_concat(a, b), eq33[:, swap])
