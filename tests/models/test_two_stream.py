"""Two-stream ConvNets (Simonyan & Zisserman 2014): snippets, streams, late fusion, multi-task."""

import pytest
import torch

from deepvideo.models import create_model, get_model_info
from deepvideo.models.two_stream import (
    TwoStream,
    multitask_loss,
    two_stream_multitask,
    two_stream_spatial,
    two_stream_temporal,
)
from deepvideo.nn.inputs import flow_to_snippets, rgbdiff_to_snippets

SMALL = {"backbone": "resnet18", "width": 0.125}


def _all_params_get_gradients(model, out):
    loss = sum(v.float().square().mean() for v in (out.values() if isinstance(out, dict) else [out]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing


def test_flow_stack_channel_order():
    # field k has u = 10k + 1, v = 10k + 2
    flow = torch.zeros(1, 2, 6, 2, 2)
    for k in range(6):
        flow[:, 0, k], flow[:, 1, k] = 10 * k + 1, 10 * k + 2
    x = flow_to_snippets(flow, 3)  # K = 2 snippets of L = 3
    assert x.shape == (2, 6, 2, 2)
    assert x[0, :, 0, 0].tolist() == [1, 2, 11, 12, 21, 22]  # I(2k-1) = d^x_k, I(2k) = d^y_k
    assert x[1, :, 0, 0].tolist() == [31, 32, 41, 42, 51, 52]


def test_mean_flow_subtraction():
    flow = torch.randn(2, 2, 4, 5, 5) + 3.0
    x = flow_to_snippets(flow, 4, mean_subtraction=True)
    assert torch.allclose(x.mean(dim=(2, 3)), torch.zeros(2, 8), atol=1e-5)
    with pytest.raises(ValueError, match="multiple of flow_stack"):
        flow_to_snippets(flow, 3)


def test_rgb_difference():
    rgb = torch.arange(5.0).view(1, 1, 5, 1, 1).expand(1, 3, 5, 2, 2) ** 2
    d = rgbdiff_to_snippets(rgb, 5)
    assert d.shape == (1, 12, 2, 2)
    assert d[0, ::3, 0, 0].tolist() == [1, 3, 5, 7]


@pytest.mark.parametrize("k,size", [(1, 32), (3, 48)])
def test_spatial_stream_shapes_and_gradients(k, size):
    net = two_stream_spatial(7, **SMALL)
    out = net({"rgb": torch.randn(2, 3, k, size, size)})
    assert out.shape == (2, 7)
    _all_params_get_gradients(net, out)


@pytest.mark.parametrize("L", [1, 5, 10])
def test_temporal_stream_takes_2L_channels(L):
    net = two_stream_temporal(4, flow_stack=L, mean_subtraction=True, **SMALL)
    assert net.backbone.conv1.in_channels == 2 * L
    out = net({"flow": torch.randn(2, 2, 2 * L, 32, 32)})
    assert out.shape == (2, 4)
    _all_params_get_gradients(net, out)


def test_consensus_averages_snippet_scores():
    net = two_stream_spatial(3, **SMALL).eval()
    rgb = torch.randn(1, 3, 2, 32, 32)
    both = net({"rgb": rgb})
    each = [net({"rgb": rgb[:, :, i : i + 1]}) for i in range(2)]
    assert torch.allclose(both, (each[0] + each[1]) / 2, atol=1e-5)


def test_late_fusion_averages_softmax_scores():
    s, t = two_stream_spatial(5, **SMALL), two_stream_temporal(5, flow_stack=2, **SMALL)
    model = TwoStream(s, t)
    batch = {"rgb": torch.randn(2, 3, 1, 32, 32), "flow": torch.randn(2, 2, 2, 32, 32)}
    train_out = model(batch)
    assert set(train_out) == {"logits", "aux_temporal"}
    model.eval()
    fused = model(batch)
    ref = (s(batch).softmax(-1) + t(batch).softmax(-1)) / 2
    assert torch.allclose(fused.softmax(-1), ref, atol=1e-5)


def test_multitask_heads_and_loss():
    net = two_stream_multitask(101, flow_stack=2, **SMALL)
    batch = {
        "flow": torch.randn(4, 2, 2, 32, 32),
        "label_ucf101": torch.tensor([3, -1, 7, -1]),
        "label_hmdb51": torch.tensor([-1, 50, -1, 0]),
    }
    out = net(batch)
    assert out["logits"].shape == (4, 101) and out["aux_hmdb51"].shape == (4, 51)
    loss = multitask_loss(out, batch, net.head_names)
    loss.backward()
    assert net.heads["hmdb51"].weight.grad.abs().sum() > 0 and net.heads["ucf101"].weight.grad.abs().sum() > 0
    net.eval()
    assert net(batch).shape == (4, 101)
    with pytest.raises(KeyError, match="label_hmdb51"):
        multitask_loss(out, {"label": batch["label_ucf101"]}, net.head_names)


@pytest.mark.parametrize(
    "name", ["two_stream_spatial_small", "two_stream_temporal_small", "two_stream_small"]
)
def test_small_presets(name):
    model = create_model(name, num_classes=6).eval()
    spec = model.input_spec
    assert spec.crop_size <= 112 and get_model_info(name).paper
    batch = {"rgb": torch.randn(1, 3, 1, 64, 64), "flow": torch.randn(1, 2, spec.flow_stack or 1, 64, 64)}
    assert model(batch).shape == (1, 6)


def test_paper_preset_is_cnn_m_2048():
    with torch.device("meta"):
        model = create_model("two_stream_temporal", num_classes=101)
    assert model.backbone.conv1.weight.shape == (96, 20, 7, 7)
    assert model.backbone.fc7.out_features == 2048 and model.backbone.drop6.p == 0.9
    assert model.input_spec.flow_stack == 10
