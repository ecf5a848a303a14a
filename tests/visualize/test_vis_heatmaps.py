"""Grad-CAM, occlusion, filters and top clips on small hand-built nets with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deepvideo.nn.snippet_net import SnippetNet
from deepvideo.spec import InputSpec
from deepvideo.visualize.filters import as_frames, filter_rows, first_conv
from deepvideo.visualize.gradcam import gradcam, mask_contrast
from deepvideo.visualize.occlusion import cube_count, occlusion_map
from deepvideo.visualize.topk import add_heat, top_clips


class Bright(nn.Module):
    """A 3D net: class 1 scores the mean of ReLU(red) (a 1x1x1 conv of weight 1), class 0 its negative."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 1, 1, bias=False)
        nn.init.ones_(self.conv.weight)
        self.input_spec = InputSpec(modalities=("rgb",), num_frames=4, crop_size=8)

    def forward(self, batch):
        a = self.conv(batch["rgb"][:, :1]).relu().mean((2, 3, 4))
        return torch.cat([-a, a], 1)


def _spot() -> torch.Tensor:
    x = torch.zeros(1, 3, 4, 8, 8)
    x[0, 0, 2, 2:4, 4:6] = 1.0  # one bright 2x2 spot in frame 2
    return x


def test_gradcam_finds_the_spot_in_space_and_time():
    heat, cls = gradcam(Bright(), {"rgb": _spot()}, "conv", 1, size=(4, 8, 8))
    assert cls == 1 and heat.shape == (1, 4, 8, 8)
    assert float(heat.max()) == pytest.approx(1.0)
    mask = _spot()[0, 0] > 0
    assert float(heat[0][mask].min()) == pytest.approx(1.0) and float(heat[0][~mask].max()) == 0.0
    assert mask_contrast(heat[0] + 0.1, mask) == pytest.approx(1.1 / 0.1, rel=1e-4)
    top, cls = gradcam(Bright(), {"rgb": _spot()}, "conv")  # the predicted class (1)
    assert cls == 1
    with pytest.raises(ValueError, match="out of range"):
        gradcam(Bright(), {"rgb": _spot()}, "conv", 5)


def test_gradcam_of_a_2d_snippet_net_uses_snippets_as_time():
    conv = nn.Conv2d(4, 3, 3, padding=1)
    net = SnippetNet(nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)),
                     "flow", flow_stack=2)
    flow = torch.randn(1, 2, 6, 8, 8)  # K = 3 snippets of L = 2 fields
    heat, _ = gradcam(net, {"flow": flow}, "backbone.0", 0)
    assert heat.shape == (1, 3, 8, 8)
    up, _ = gradcam(net, {"flow": flow}, "backbone.0", 0, size=(6, 8, 8))
    assert up.shape == (1, 6, 8, 8)
    unit, index = gradcam(net, {"flow": flow}, "backbone.0", ("channel", 2))
    with torch.no_grad():  # snippet k holds fields 2k, 2k+1 as channels u, v, u, v
        a = conv(flow.reshape(1, 2, 3, 2, 8, 8).permute(0, 2, 3, 1, 4, 5).reshape(3, 4, 8, 8))[:, 2].relu()
    assert index == 2
    torch.testing.assert_close(unit[0], a / a.max())


def test_occlusion_drop_lies_on_the_spot():
    model = Bright()
    x = _spot()
    drop = occlusion_map(model, {"rgb": x}, "rgb", 1, mode="space", size=2, stride=2)
    assert drop.shape == (4, 8, 8)
    # hiding the 2x2 spot (one cube) removes all of class 1's score: 4 px / 256
    assert float(drop[2, 2, 4]) == pytest.approx(4 / 256, rel=1e-5) and float(drop[:, 6:, :].abs().max()) == 0
    slabs = occlusion_map(model, {"rgb": x}, "rgb", 1, mode="time", frames=1)
    assert float(slabs[2].min()) == pytest.approx(4 / 256, rel=1e-5) and float(slabs[0].abs().max()) == 0
    assert cube_count((4, 8, 8), "space", 2, 1, 2) == 16 and cube_count((4, 8, 8), "time", 2, 2, 2) == 3
    assert cube_count((4, 8, 8), "spacetime", 4, 2, 4) == 3 * 4
    with pytest.raises(ValueError, match="unknown occlusion mode"):
        occlusion_map(model, {"rgb": x}, "rgb", 1, mode="depth")


def test_filter_frames_for_2d_flow_and_3d_kernels():
    flow_conv = nn.Conv2d(6, 4, 3)  # L = 3 fields: channels u1 v1 u2 v2 u3 v3
    frames = as_frames(flow_conv.weight, "flow")
    assert frames.shape == (4, 3, 2, 3, 3)
    torch.testing.assert_close(frames[1, 2, 0], flow_conv.weight[1, 4].detach())  # u_3 of filter 1
    conv3d = nn.Conv3d(3, 5, (2, 3, 3))
    f3 = as_frames(conv3d.weight, "rgb")
    assert f3.shape == (5, 2, 3, 3, 3)
    torch.testing.assert_close(f3[0, 1, 2], conv3d.weight[0, 2, 1].detach())  # blue, second frame
    rows = filter_rows(conv3d.weight, "rgb", count=2)
    assert len(rows) == 2 and rows[0].shape == (2, 3, 3, 3) and rows[0].min() == 0 and rows[0].max() == 255
    assert filter_rows(flow_conv.weight, "flow", "uv")[0].shape == (3, 3, 6, 3)
    assert first_conv(nn.Sequential(nn.ReLU(), conv3d))[0] == "1"
    with pytest.raises(ValueError, match="cannot show a kernel with 5"):
        filter_rows(nn.Conv2d(5, 1, 3).weight, "rgb")


def test_top_clips_rank_by_excitation():
    model = Bright()
    levels = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.2])
    clips = torch.zeros(5, 3, 4, 8, 8)
    clips[:, 0] = levels.view(5, 1, 1, 1)
    batches = [{"rgb": clips[:3], "index": torch.tensor([10, 11, 12])},
               {"rgb": clips[3:], "index": torch.tensor([13, 14])}]
    top = top_clips(model, "conv", 0, batches, k=3)
    assert [c.index for c in top] == [11, 13, 12]
    assert [c.score for c in top] == pytest.approx([0.9, 0.7, 0.5])
    logits = top_clips(model, "logits", 1, batches, k=1)
    assert logits[0].index == 11
    add_heat(model, "conv", 0, top, "rgb")
    assert top[0].heat.shape == (4, 8, 8) and float(top[0].heat.min()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="need a conv layer"):
        add_heat(model, "logits", 1, top, "rgb")
    with pytest.raises(ValueError, match="k must be"):
        top_clips(model, "conv", 0, batches, k=0)
    assert np.isfinite(top[0].score)
