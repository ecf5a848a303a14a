"""Activation maximisation: objective, units, frozen weights, streams, a_hat cache."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from deepvideo.spec import InputSpec
from deepvideo.visualize import regularizers as R
from deepvideo.visualize.maximize import (
    FLOW_UNITS_PER_PX,
    MaximizeOptions,
    input_shapes,
    jittered,
    maximize,
    regularization,
    to_model_units,
)
from deepvideo.visualize.stats import cached_max_activations, max_activations


class TwoStreamToy(nn.Module):
    """rgb and flow streams, each one conv, summed into 3 logits."""

    def __init__(self):
        super().__init__()
        self.rgb_conv = nn.Conv3d(3, 4, 3, padding=1)
        self.flow_conv = nn.Conv3d(2, 4, 3, padding=1)
        self.fc = nn.Linear(8, 3)
        self.input_spec = InputSpec(modalities=("rgb", "flow"), num_frames=4, flow_stack=4, crop_size=8)

    def forward(self, batch):
        a = self.rgb_conv(batch["rgb"]).relu().mean((2, 3, 4))
        b = self.flow_conv(batch["flow"]).relu().mean((2, 3, 4))
        return self.fc(torch.cat([a, b], 1))


def test_shapes_units_and_regularization_weights():
    model = TwoStreamToy()
    shapes = input_shapes(model.input_spec)
    assert shapes == {"rgb": (3, 4, 8, 8), "flow": (2, 4, 8, 8)}
    x = {"rgb": torch.full((3, 4, 8, 8), 255.0 * 0.225), "flow": torch.full((2, 4, 8, 8), 127.5)}
    batch = to_model_units(x, model.input_spec)
    torch.testing.assert_close(batch["rgb"], torch.ones(1, 3, 4, 8, 8))  # 1 std above the mean
    torch.testing.assert_close(batch["flow"], torch.full((1, 2, 4, 8, 8), 20.0))  # 127.5 units = 20 px
    i3d_like = InputSpec(modalities=("flow",), flow_stack=4, crop_size=8, mean=(0.0, 0.0), std=(20.0, 20.0))
    i3d_batch = to_model_units({"flow": x["flow"]}, i3d_like)
    torch.testing.assert_close(i3d_batch["flow"], torch.ones(1, 2, 4, 8, 8))
    assert FLOW_UNITS_PER_PX == pytest.approx(127.5 / 20)
    opts = MaximizeOptions(reg="tv2d")
    f = torch.randn(2, 4, 8, 8)
    expected = R.range_weight(8, 8) * R.range_penalty(f) + R.tv_weight(8, 8, flow=True) * R.tv2d(f)
    torch.testing.assert_close(regularization(f, "flow", opts), expected)


def test_maximize_raises_the_unit_and_keeps_weights():
    torch.manual_seed(0)
    model = TwoStreamToy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = maximize(model, "flow_conv", 1, MaximizeOptions(steps=30, lr=2.0, weight=50.0))
    assert set(res.inputs) == {"rgb", "flow"}  # both streams optimised
    assert res.history[-1]["activation"] > res.history[0]["activation"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters()) and model.training  # state restored
    norms = res.inputs["flow"].pow(2).sum(0).sqrt()
    assert float(norms.max()) <= R.B + 1e-3  # inside the range ball
    assert res.rho == 3 and res.flow_px().shape == (4, 2, 8, 8)
    logit = maximize(model, "logits", 2, MaximizeOptions(steps=20, weight=5000.0))
    assert logit.history[-1]["activation"] > logit.history[0]["activation"] and logit.rho == 8


def test_jitter_shifts_every_stream_alike_with_a_zero_border():
    x = {"rgb": torch.arange(60.0).view(3, 1, 4, 5), "flow": torch.arange(40.0).view(2, 1, 4, 5)}
    g = torch.Generator().manual_seed(3)
    dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=torch.Generator().manual_seed(3)))
    assert (dy, dx) != (0, 0)
    out = jittered(x, 2, g)
    for key, v in x.items():
        expected = torch.zeros_like(v)
        for i in range(4):
            for j in range(5):
                if 0 <= i - dy < 4 and 0 <= j - dx < 5:  # out[i, j] = in[i - dy, j - dx], else 0
                    expected[..., i, j] = v[..., i - dy, j - dx]
        torch.testing.assert_close(out[key], expected)
    assert jittered(x, 0, g) is x
    model = TwoStreamToy()
    res = maximize(model, "flow_conv", 1, MaximizeOptions(steps=10, lr=2.0, weight=50.0, jitter=2))
    assert res.history[-1]["activation"] > res.history[0]["activation"]


def test_bad_options_and_units():
    with pytest.raises(ValueError, match="unknown regulariser"):
        MaximizeOptions(reg="l2")
    with pytest.raises(ValueError, match="kappa and chi"):
        MaximizeOptions(kappa=-1)
    with pytest.raises(ValueError, match="jitter"):
        MaximizeOptions(jitter=-2)
    with pytest.raises(IndexError, match="out of range"):
        maximize(TwoStreamToy(), "flow_conv", 9, MaximizeOptions(steps=1))
    with pytest.raises(ValueError, match="never fires"):
        maximize(TwoStreamToy(), "flow_conv", 0, MaximizeOptions(steps=1), a_hat=0.0)


def test_max_activations_cached(tmp_path):
    model = TwoStreamToy()
    batches = [to_model_units({k: torch.randn(s) * 50 for k, s in input_shapes(model.input_spec).items()},
                              model.input_spec) for _ in range(2)]
    a = max_activations(model, "flow_conv", batches)
    with torch.no_grad():
        direct = torch.stack([model.flow_conv(b["flow"]).amax((0, 2, 3, 4)) for b in batches]).amax(0)
    torch.testing.assert_close(a, direct)
    cache = tmp_path / "amax.json"
    first = cached_max_activations(cache, model, "flow_conv", batches)
    assert json.loads(cache.read_text())["flow_conv"] == pytest.approx(first.tolist())
    again = cached_max_activations(cache, model, "flow_conv", None)  # read back, nothing measured
    torch.testing.assert_close(again, first)
    cache.write_text("{not json")
    with pytest.raises(ValueError, match="amax.json: line 1"):
        cached_max_activations(cache, model, "flow_conv", None)
