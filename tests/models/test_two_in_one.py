"""Two-in-one stream (Zhao & Snoek 2019): motion condition / modulation layers, presets, parameter table."""

import pytest
import torch

from deepvideo.models import create_model, get_model_info
from deepvideo.models.two_in_one import (
    MODULATED,
    RGB_SSD_PARAMS,
    TWO_IN_ONE_SSD_PARAMS,
    MotionCondition,
    MotionModulation,
    ssd300_vgg16,
    two_in_one,
    two_in_one_ssd300,
    two_in_one_two_stream,
)

TINY = {"width": 0.125, "input_size": 32, "fc_dims": (16, 16)}


def count(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_table_of_the_detection_streams():
    """The paper's table: RGB stream (SSD300, VGG-16, 25 classes) 26.82M, two-in-one 26.93M."""
    assert (RGB_SSD_PARAMS, TWO_IN_ONE_SSD_PARAMS) == (26.82e6, 26.93e6)
    with torch.device("meta"):  # counts only: no memory, no initialisation
        rgb, tio = count(ssd300_vgg16(25)), count(two_in_one_ssd300(25))
    assert rgb == pytest.approx(RGB_SSD_PARAMS, rel=0.01)
    assert tio == pytest.approx(TWO_IN_ONE_SSD_PARAMS, rel=0.01)
    assert tio - rgb == pytest.approx(0.11e6, rel=0.05)  # the MC + MM overhead


def test_ssd_heads_have_the_published_default_boxes_per_position():
    with torch.device("meta"):
        net = ssd300_vgg16(25)
    # 4/6/6/6/4/4 boxes on the 38/19/10/5/3/1 maps of SSD300 = 8732 boxes
    assert [h.out_channels // 4 for h in net.loc] == [4, 6, 6, 6, 4, 4]
    assert [h.out_channels // 25 for h in net.conf] == [4, 6, 6, 6, 4, 4]
    assert sum(k * s * s for k, s in zip([4, 6, 6, 6, 4, 4], [38, 19, 10, 5, 3, 1], strict=True)) == 8732


def test_motion_modulation_is_scale_and_shift_of_features():
    mm = MotionModulation(4, cond=3, hidden=5)
    f, c = torch.randn(2, 4, 6, 6), torch.randn(2, 3, 12, 12)
    assert torch.equal(mm(f, c), f)  # γ = 1, β = 0 at initialisation
    with torch.no_grad():
        mm.gamma[2].bias.fill_(2.0)
        mm.beta[2].bias.fill_(-1.0)
    assert torch.allclose(mm(f, c), 2 * f - 1)
    torch.manual_seed(0)
    with torch.no_grad():
        mm.gamma[2].weight.normal_()
    pooled = torch.nn.functional.avg_pool2d(c, 2)  # the condition at the features' resolution
    gamma = mm.gamma(pooled)
    assert gamma.shape == f.shape
    assert torch.allclose(mm(f, c), gamma * f - 1, atol=1e-6)


def test_motion_condition_layers():
    mc = MotionCondition(4)
    assert [tuple(c.weight.shape) for c in mc.convs] == [(32, 4, 3, 3)] + [(32, 32, 1, 1)] * 3
    assert mc(torch.randn(1, 4, 8, 8)).shape == (1, 32, 8, 8)


def test_two_in_one_starts_as_the_rgb_network_and_learns_from_flow():
    torch.manual_seed(0)
    model = two_in_one(5, **TINY).eval()
    assert sorted(model.body.modulation) == sorted(MODULATED)
    rgb, flow = torch.randn(2, 3, 3, 32, 32), torch.randn(2, 2, 3, 32, 32)
    with torch.no_grad():
        out = model({"rgb": rgb, "flow": flow})
        plain = model.body.net(rgb.permute(0, 2, 1, 3, 4).reshape(6, 3, 32, 32)).reshape(2, 3, 5).mean(1)
        assert out.shape == (2, 5) and torch.allclose(out, plain, atol=1e-5)
    model.train()
    model({"rgb": rgb, "flow": flow}).square().mean().backward()
    assert model.body.modulation["relu1_2"].gamma[2].weight.grad.abs().sum() > 0  # flow reaches the loss
    with torch.no_grad():
        for mm in model.body.modulation.values():
            mm.beta[2].weight.normal_()
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(model({"rgb": rgb, "flow": -flow}), model({"rgb": rgb, "flow": flow}))


def test_two_in_one_two_stream_fuses_softmax_scores():
    model = two_in_one_two_stream(4, **TINY)
    batch = {"rgb": torch.randn(2, 3, 2, 32, 32), "flow": torch.randn(2, 2, 2, 32, 32)}
    out = model.train()(batch)
    assert set(out) == {"logits", "aux_flow"}
    model.eval()
    with torch.no_grad():
        fused = model(batch).exp()
        ref = (model.two_in_one(batch).softmax(1) + model.flow(batch).softmax(1)) / 2
    assert torch.allclose(fused, ref, atol=1e-6)
    assert count(model) == count(model.two_in_one) + count(model.flow)


def test_missing_flow_is_named():
    with pytest.raises(KeyError, match="needs batch\\['flow'\\]"):
        two_in_one(3, **TINY)({"rgb": torch.randn(1, 3, 1, 32, 32)})


def test_registered_presets():
    spec = get_model_info("two_in_one_small").spec
    assert spec.modalities == ("rgb", "flow") and spec.num_segments == 3 and spec.flow_stack == 1
    model = create_model("two_in_one_two_stream_small", num_classes=3, fc_dims=(8, 8))
    assert isinstance(model.flow.net.conv1_1, torch.nn.Conv2d) and model.flow.net.conv1_1.in_channels == 2
