"""Temporal segment networks: consensus, partial BN, modalities, cross-modality init."""

import pytest
import torch
from torch import nn

from deepvideo.models import create_model
from deepvideo.models.tsn import tsn

SMALL = {"backbone": "resnet18", "width": 0.125, "dropout": 0.0}


def _batch(n=2, k=3, frames=1, L=5, size=32):
    return {"rgb": torch.randn(n, 3, k * frames, size, size), "flow": torch.randn(n, 2, k * L, size, size)}


@pytest.mark.parametrize("modality,channels", [("rgb", 3), ("flow", 10), ("rgbdiff", 12)])
def test_modalities_shapes_and_gradients(modality, channels):
    model = tsn(6, modality=modality, **SMALL)
    assert model.backbone.conv1.in_channels == channels
    frames = 5 if modality == "rgbdiff" else 1
    out = model(_batch(frames=frames))
    assert out.shape == (2, 6)
    out.square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_flow_conv1_is_cross_modality_initialized():
    model = tsn(3, modality="flow", **SMALL)
    w = model.backbone.conv1.weight
    assert all(torch.allclose(w[:, 0], w[:, c]) for c in range(1, 10))


@pytest.mark.parametrize("consensus", ["avg", "max", "weighted"])
def test_consensus(consensus):
    model = tsn(4, consensus=consensus, num_segments=3, **SMALL).eval()
    batch = _batch(n=1)
    with torch.no_grad():
        per = torch.stack([model.backbone(batch["rgb"][:, :, k]) for k in range(3)], 1)
        y = model(batch)
    ref = {"avg": per.mean(1), "max": per.amax(1), "weighted": per.mean(1)}[consensus]
    assert torch.allclose(y, ref, atol=1e-5)
    if consensus == "weighted":
        assert model.segment_weights.requires_grad


def test_partial_bn_freezes_all_but_the_first():
    model = tsn(4, **SMALL)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns[0].training and not any(b.training for b in bns[1:])
    before = [b.running_mean.clone() for b in bns]
    model.train()
    model(_batch())
    assert not torch.equal(bns[0].running_mean, before[0])
    assert all(torch.equal(b.running_mean, r) for b, r in zip(bns[1:], before[1:], strict=True))
    model.set_partial_bn(False)
    assert all(b.training for b in bns)
    model.eval()
    assert not any(b.training for b in bns)


def test_presets():
    for modality in ("rgb", "flow", "rgbdiff"):
        model = create_model(f"tsn_{modality}_small", num_classes=5).eval()
        spec = model.input_spec
        assert spec.num_segments == 3
        with torch.no_grad():
            assert model(_batch(1, 3, spec.num_frames, 5)).shape == (1, 5)
    with torch.device("meta"):
        big = create_model("tsn_r50_flow", num_classes=101)
    assert big.backbone.conv1.in_channels == 10 and big.backbone.dropout.p == 0.7  # flow: 0.7
    with torch.device("meta"):
        rgb = create_model("tsn_r50_rgb", num_classes=101)
    assert rgb.backbone.dropout.p == 0.8  # Wang et al. 2016: 0.8 spatial, 0.7 temporal


def test_preset_functions_build_what_the_registry_builds():
    from deepvideo.models import get_model_info
    from deepvideo.models.tsn import tsn_flow_small

    torch.manual_seed(0)
    direct = tsn_flow_small(5)
    torch.manual_seed(0)
    registered = create_model("tsn_flow_small", 5)
    assert get_model_info("tsn_flow_small").builder is tsn_flow_small
    pairs = zip(direct.state_dict().values(), registered.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert direct.backbone.conv1.in_channels == 10 and direct.backbone.dropout.p == 0.5
