"""Tran et al. 2018 family and the bottleneck ResNet-50 zoo models."""

import pytest
import torch
from torch import nn

from deepvideo.models import create_model, list_models
from deepvideo.nn.conv import Conv2Plus1d, midplanes

# The papers' parameter counts are the presets' published figures: tests/models/test_profile.py.


def _tiny(name):
    info = next(i for i in list_models() if i.name == name)
    if "arch" in info.defaults:  # Tran family
        kw = {"width": 8}
        if info.defaults["arch"] == "r2d":
            kw["num_frames"] = 4
        return create_model(name, 5, **kw)
    return create_model(name, 5, width=8)


@pytest.mark.parametrize("name", [i.name for i in list_models("resnet3d")])
def test_every_preset_forward_backward(name):
    model = _tiny(name).eval()  # eval: batch norm on 1x1x1 maps of a batch of one
    out = model({"rgb": torch.randn(1, 3, 4, 32, 32)})
    assert out.shape == (1, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.input_spec.modalities == ("rgb",)


def test_mc_and_rmc_conv_kinds():
    m = create_model("mc3_18", 10, width=8)
    assert m.stem[0].kernel_size == (3, 7, 7)
    assert m.layer1[0].conv1.kernel_size == (3, 3, 3)  # conv2_x: 3D
    assert m.layer2[0].conv1.kernel_size == (1, 3, 3)  # conv3_x and up: 2D
    r = create_model("rmc3_18", 10, width=8)
    assert r.stem[0].kernel_size == (1, 7, 7) and r.layer1[0].conv1.kernel_size == (1, 3, 3)
    assert r.layer2[0].conv1.kernel_size == (3, 3, 3)
    assert r.layer2[0].conv1.stride == (2, 2, 2)


def test_r2plus1d_mid_widths_paper_vs_torchvision():
    paper = create_model("r2plus1d_18", 10)
    tv = create_model("r2plus1d_18_tv", 10)
    first = paper.layer2[0]
    assert first.conv1.mid_channels == midplanes(64, 128) and first.conv2.mid_channels == midplanes(128, 128)
    assert tv.layer2[0].conv2.mid_channels == midplanes(64, 128)  # torchvision reuses the block's M
    assert tv.stem[0].mid_channels == 45 and paper.stem[0].mid_channels == midplanes(3, 64, 3, 7)
    assert isinstance(paper.layer4[1].conv2, Conv2Plus1d)


def test_r2d_folds_time_and_checks_length():
    m = create_model("r2d_18", 3, num_frames=4, width=8).eval()
    assert m.stem[0].in_channels == 12
    assert m(torch.randn(1, 3, 4, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError, match="built for 4 frames"):
        m(torch.randn(1, 3, 8, 32, 32))


def test_group_norm_selectable():
    m = create_model("r3d_18", 4, width=8, norm="gn")
    assert not any(isinstance(x, nn.BatchNorm3d) for x in m.modules())
    assert m(torch.randn(1, 3, 4, 32, 32)).shape == (1, 4)
    s = create_model("slow_r50", 4, width=8, norm="gn")
    assert not any(isinstance(x, nn.BatchNorm3d) for x in s.modules())


def test_bottleneck_temporal_kernels():
    i3d = create_model("i3d_r50", 10)
    kt = [b.conv_a.kernel_size[0] for b in i3d.layer3]
    assert kt == [3, 1, 3, 1, 3, 1] and i3d.stem[0].kernel_size == (5, 7, 7)
    assert [b.conv_a.kernel_size[0] for b in i3d.layer4] == [1, 3, 1]
    slow = create_model("slow_r50", 10)
    assert {b.conv_a.kernel_size[0] for b in slow.layer2} == {1} and {
        b.conv_a.kernel_size[0] for b in slow.layer4
    } == {3}
    nl = create_model("nl_i3d_r50", 10, width=8)
    assert sum(type(x).__name__ == "NonLocal3d" for x in nl.modules()) == 5


def test_missing_rgb_is_a_clear_error():
    m = create_model("r3d_18", 2, width=8)
    with pytest.raises(KeyError, match="rgb"):
        m({"flow": torch.zeros(1, 2, 4, 32, 32)})


def test_slow_r101_has_its_own_builder():
    from deepvideo.models import get_model_info
    from deepvideo.models.resnet3d import slow_r50, slow_r101

    assert get_model_info("slow_r101").builder is slow_r101
    with torch.device("meta"):
        deep = slow_r101(10)
    assert [len(getattr(deep, f"layer{i}")) for i in range(1, 5)] == [3, 4, 23, 3]
    assert {b.conv_a.kernel_size[0] for b in deep.layer2} == {1}
    assert {b.conv_a.kernel_size[0] for b in deep.layer3} == {3}
    assert deep.stem[0].kernel_size == (1, 7, 7)
    with pytest.raises(TypeError, match="depth"):
        slow_r50(10, depth=101)  # no depth switch: each depth is its own preset
