"""Karpathy et al. 2014: single frame, early, late, slow fusion, multiresolution."""

import pytest
import torch

from deepvideo.models import create_model
from deepvideo.models.karpathy import KarpathyNet

SMALL = {"width": 0.125, "fc_dims": (32, 32)}


@pytest.mark.parametrize(
    "variant,T",
    [("single_frame", 1), ("early_fusion", 10), ("late_fusion", 2), ("slow_fusion", 10), ("multires", 1)],
)
def test_variants_shapes_and_gradients(variant, T):
    size = 90 if variant == "multires" else 85
    model = KarpathyNet(variant, 6, input_size=size, **SMALL)
    out = model({"rgb": torch.randn(2, 3, T, size, size)})
    assert out.shape == (2, 6)
    out.square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_early_fusion_first_layer_spans_10_frames():
    model = KarpathyNet("early_fusion", 3, input_size=85, **SMALL)
    assert model.tower.conv1.kernel_size == (10, 11, 11) and model.tower.conv1.stride == (1, 3, 3)


def test_slow_fusion_temporal_extents():
    model = KarpathyNet("slow_fusion", 3, input_size=85, **SMALL).eval()
    t = model.tower
    assert (t.conv1.kernel_size[0], t.conv2.kernel_size[0], t.conv3.kernel_size[0]) == (4, 2, 2)
    x = torch.randn(1, 3, 10, 85, 85)
    with torch.no_grad():
        assert t.forward_until(x, "conv1").shape[2] == 4
        assert t.forward_until(x, "conv2").shape[2] == 2
        assert t.forward_until(x, "conv3").shape[2] == 1


def test_late_fusion_shares_tower_and_merges_at_fc():
    model = KarpathyNet("late_fusion", 3, input_size=85, **SMALL)
    single = KarpathyNet("single_frame", 3, input_size=85, **SMALL)
    assert model.classifier[1].in_features == 2 * single.classifier[1].in_features
    assert sum(p.numel() for p in model.tower.parameters()) == sum(
        p.numel() for p in single.tower.parameters()
    )


def test_multires_streams_see_89_pixels():
    model = KarpathyNet("multires", 3, input_size=178, **SMALL).eval()
    seen = []
    model.tower.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[-1]))
    model.context.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[-1]))
    with torch.no_grad():
        model({"rgb": torch.randn(1, 3, 1, 178, 178)})
    assert seen == [89, 89]


def test_wrong_clip_length_is_reported():
    with pytest.raises(ValueError, match="expects rgb"):
        KarpathyNet("early_fusion", 3, input_size=85, **SMALL)({"rgb": torch.randn(1, 3, 4, 85, 85)})


def test_presets():
    model = create_model("karpathy_slow_fusion_small", num_classes=4).eval()
    s = model.input_spec
    with torch.no_grad():
        assert model({"rgb": torch.randn(1, 3, s.num_frames, s.crop_size, s.crop_size)}).shape == (1, 4)
    assert create_model("karpathy_late_fusion", num_classes=487).input_spec.frame_stride == 15


@pytest.mark.parametrize("variant", ["single_frame", "early_fusion", "late_fusion", "slow_fusion",
                                     "multires"])
def test_small_presets_are_the_small_nets_of_their_variant(variant):
    """Each CPU preset builds its own variant at 1/4 width with FC 256 (they once all fell back to
    the full-size slow-fusion net)."""
    from deepvideo.models import get_model_info

    model = create_model(f"karpathy_{variant}_small", num_classes=4)
    assert model.variant == variant
    assert get_model_info(f"karpathy_{variant}_small").defaults["width"] == 0.25
    assert sum(p.numel() for p in model.parameters()) < 2e6
