"""Spatiotemporal multiplier networks (Feichtenhofer et al. CVPR 2017)."""

import pytest
import torch

from deepvideo.models import create_model
from deepvideo.models.st_multiplier import st_multiplier

SMALL = {"appearance_depth": 18, "motion_depth": 18, "width": 0.125, "flow_stack": 2, "motion_dropout": 0.0}


def _batch(n, t, L=2, size=32):
    return {"rgb": torch.randn(n, 3, t, size, size), "flow": torch.randn(n, 2, t * L, size, size)}


@pytest.mark.parametrize("T", [2, 4])
def test_shapes_and_gradients(T):
    model = st_multiplier(5, **SMALL)
    out = model(_batch(2, T))
    assert out["logits"].shape == (2, 5) and out["aux_motion"].shape == (2, 5)
    sum(v.square().mean() for v in out.values()).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize("placement", ["residual", "conv5", "shortcut"])
@pytest.mark.parametrize("init", ["identity_center", "identity_avg"])
def test_temporal_filters(placement, init):
    torch.manual_seed(0)
    plain = st_multiplier(3, temporal_filters=None, **SMALL).eval()
    model = st_multiplier(3, temporal_filters=placement, temporal_init=init, **SMALL).eval()
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all("temporal_" in k for k in missing)
    expected = {"residual": 8, "conv5": 2, "shortcut": 8}[placement]
    assert len(missing) == 2 * expected  # weight + bias per filter, both streams
    batch = _batch(1, 4)
    with torch.no_grad():
        same = torch.allclose(model(batch), plain(batch), atol=1e-5)
    assert same == (init == "identity_center")  # 1 (x) [0,1,0] starts as the identity


@pytest.mark.parametrize("kind", ["direct", "residual"])
@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("direction", ["m2a", "a2m", "both"])
def test_every_ablation_variant_runs(kind, op, direction):
    model = st_multiplier(3, kind=kind, op=op, direction=direction, temporal_filters=None, **SMALL).eval()
    assert all(c.kind == kind and c.op == op and c.direction == direction for c in model.connections.values())
    with torch.no_grad():
        assert model(_batch(1, 2)).shape == (1, 3)


def test_gate_every_unit():
    model = st_multiplier(3, gated_unit="all", **SMALL)
    assert len(model.connections) == 8  # ResNet-18: 2 units in each of 4 blocks
    with pytest.raises(ValueError, match="placement"):
        st_multiplier(3, temporal_filters="everywhere", **SMALL)


def test_final_preset_r50_appearance_r152_motion_forward():
    model = create_model("st_multiplier_r50_r152", num_classes=101).eval()
    assert (
        sum(len(s) for s in model.appearance.stages) == 16 and sum(len(s) for s in model.motion.stages) == 50
    )
    assert model.motion.stem[0].in_channels == 20 and model.motion.dropout.p == 0.8
    with torch.no_grad():
        assert model(_batch(1, 2, L=10, size=64)).shape == (1, 101)


def test_small_preset():
    model = create_model("st_multiplier_small", num_classes=4).eval()
    spec = model.input_spec
    with torch.no_grad():
        assert model(_batch(1, spec.num_segments, spec.flow_stack, 32)).shape == (1, 4)


def test_head_max_over_time_per_position_then_spatial_average():
    """Eq. 5.10: x(i,j,c) = max_t x(i,j,t,c), then the spatial average, then the classifier."""
    torch.manual_seed(0)
    model = st_multiplier(4, **SMALL).eval()
    head = model.appearance
    assert head.temporal_head == "position_max"
    conv5 = torch.randn(2, head.num_features, 3, 2, 2)
    expected = head.fc(conv5.amax(dim=2).mean(dim=(2, 3)))
    with torch.no_grad():
        torch.testing.assert_close(head.head(conv5), expected)
        swapped = head.fc(conv5.mean(dim=(3, 4)).amax(dim=2))  # the other order differs
    assert not torch.allclose(expected, swapped)


def test_motion_dropout_after_the_classifier():
    torch.manual_seed(0)
    model = st_multiplier(4, **{**SMALL, "motion_dropout": 0.8}).train()
    motion = model.motion
    assert motion.dropout_after_fc and motion.dropout.p == 0.8 and not model.appearance.dropout_after_fc
    conv5 = torch.randn(3, motion.num_features, 2, 2, 2)
    logits = motion.head(conv5)
    zeroed = logits == 0  # dropout on the logits: whole scores are zeroed, the rest scaled by 1/(1-p)
    assert zeroed.any()
    clean = motion.fc(conv5.amax(dim=2).mean(dim=(2, 3)))
    torch.testing.assert_close(logits[~zeroed], clean[~zeroed] / 0.2)
