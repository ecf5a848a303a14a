"""LRCN and "beyond short snippets" (conv pooling, deep LSTM)."""

import pytest
import torch

from deepvideo.models import create_model
from deepvideo.models.lrcn import beyond_snippets_lstm, conv_pooling, lrcn

SMALL = {"backbone": "resnet18", "width": 0.125}


@pytest.mark.parametrize("T", [1, 4])
@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_lrcn_shapes_and_gradients(T, modality):
    model = lrcn(5, modality=modality, flow_stack=2, hidden=16, **SMALL)
    batch = {"rgb": torch.randn(2, 3, T, 32, 32), "flow": torch.randn(2, 2, 2 * T, 32, 32)}
    out = model(batch)
    assert out.shape == (2, 5)
    out.square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_lrcn_averages_per_step_predictions():
    model = lrcn(3, hidden=8, **SMALL).eval()
    batch = {"rgb": torch.randn(1, 3, 4, 32, 32)}
    with torch.no_grad():
        steps = model.step_logits(batch)
        assert steps.shape == (1, 4, 3)
        assert torch.allclose(model(batch), steps.mean(1))
        # recurrence: the prediction at step 2 depends on frame 0
        other = batch["rgb"].clone()
        other[:, :, 0] += 1
        assert not torch.allclose(model.step_logits({"rgb": other})[:, 2], steps[:, 2])


def test_deep_lstm():
    model = beyond_snippets_lstm(3, hidden=8, **SMALL)
    assert model.lstm.num_layers == 5
    assert model({"rgb": torch.randn(1, 3, 3, 32, 32)}).shape == (1, 3)


def test_conv_pooling_is_max_over_time_of_conv_maps():
    model = conv_pooling(4, **SMALL).eval()
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        maps = torch.stack([model.backbone.features(x[:, :, t]) for t in range(3)], 1)
        ref = model.backbone.forward_head(maps.amax(1))
        assert torch.allclose(model({"rgb": x}), ref, atol=1e-5)
        # order of frames does not matter
        assert torch.allclose(model({"rgb": x.flip(2)}), ref, atol=1e-5)


def test_conv_pooling_flow_and_vgg_backbone(samples_independent):
    model = conv_pooling(4, backbone="vgg_m_2048", modality="flow", flow_stack=2, input_size=64, width=0.125)
    flow = torch.randn(2, 2, 6, 64, 64)  # 3 steps of 2 fields
    out = samples_independent(model, {"flow": flow})
    # max pooling over time ignores the order of the steps (Ng et al.: conv pooling is orderless)
    shuffled = flow.reshape(2, 2, 3, 2, 64, 64)[:, :, [2, 0, 1]].reshape(2, 2, 6, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model({"flow": shuffled}), out, rtol=1e-5, atol=1e-6)


def test_small_presets():
    for name in ("lrcn_rgb_small", "lrcn_flow_small", "conv_pooling_rgb_small", "conv_pooling_flow_small"):
        model = create_model(name, num_classes=3).eval()
        s = model.input_spec
        t = s.num_frames if "rgb" in s.modalities else s.num_segments
        batch = {"rgb": torch.randn(1, 3, t, 32, 32), "flow": torch.randn(1, 2, t * s.flow_stack, 32, 32)}
        with torch.no_grad():
            assert model(batch).shape == (1, 3)
