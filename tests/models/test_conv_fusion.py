"""Convolutional two-stream fusion (Feichtenhofer et al. CVPR 2016): Table 3.1 parameters, fusion
at any layer, the 3D conv fusion architecture."""

import pytest
import torch

from deepvideo.models import create_model
from deepvideo.models.conv_fusion import conv_fusion, conv_fusion_3d

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
    assert y.shape == (2, 5) and torch.allclose(y.exp().sum(-1), torch.ones(2), atol=1e-4)


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
