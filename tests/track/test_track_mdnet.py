"""MDNet / RT-MDNet network: the paper's layer shapes and values, and RoIAlign against its
definition and against per-patch features."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepvideo.track import mdnet as m


def test_layers_and_shapes_are_the_papers():
    net = m.MDNet(num_domains=3)
    convs = net.convs
    assert (convs.conv1.out_channels, convs.conv1.kernel_size, convs.conv1.stride) == (96, (7, 7), (2, 2))
    assert (convs.conv2.out_channels, convs.conv2.kernel_size, convs.conv2.stride) == (256, (5, 5), (2, 2))
    assert (convs.conv3.out_channels, convs.conv3.kernel_size, convs.conv3.dilation) == (512, (3, 3), (1, 1))
    assert all(c.padding == (0, 0) for c in (convs.conv1, convs.conv2, convs.conv3))
    assert [n for n in convs.layer_names()] == ["conv1", "relu1", "norm1", "pool1", "conv2", "relu2",
                                                "norm2", "pool2", "conv3", "relu3"]
    lrn = convs.norm1
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 5e-4, 0.75, 2.0)    # VGG-M
    assert (net.fc4.in_features, net.fc4.out_features, net.fc5.out_features) == (512 * 9, 512, 512)
    assert [b.out_features for b in net.fc6] == [2, 2, 2] and net.dropout.p == 0.5
    x = torch.rand(2, 3, 107, 107) * 255
    assert net.feature_map(x).shape == (2, 512, 3, 3)
    assert net(x, domain=2).shape == (2, 2)
    with pytest.raises(IndexError, match="3 domains; asked for domain 3"):
        net(x, domain=3)


def test_initialisation_is_py_mdnets():
    torch.manual_seed(0)
    net = m.MDNet(num_domains=2)
    for fc in (net.fc4, net.fc5):
        assert torch.all(fc.bias == 0.1)
        assert abs(float(fc.weight.detach().std()) - 0.01) < 0.0005
    for branch in net.fc6:
        assert torch.all(branch.bias == 0) and abs(float(branch.weight.detach().std()) - 0.01) < 0.002
    assert all(torch.all(c.bias == 0) for c in (net.convs.conv1, net.convs.conv2, net.convs.conv3))
    old = net.fc6[0].weight.clone()
    net.new_domains(1)
    assert net.num_domains == 1 and not torch.equal(net.fc6[0].weight, old)


def test_input_is_rgb_0_255_minus_128():
    net = m.MDNet(width=0.1).eval()
    x = torch.rand(1, 3, 107, 107) * 255
    torch.testing.assert_close(net.feature_map(x), net.convs(x - 128))


def test_width_scales_every_layer():
    assert m.channels(0.25) == (24, 64, 128, 128)
    with pytest.raises(ValueError, match="width must be positive"):
        m.channels(0)


def test_roi_align_variant_layers():
    net = m.MDNet(width=0.25, roi_align=True, lrn=m.RTMDNET_LRN)
    assert "pool2" not in net.convs.layer_names() and net.convs.conv3.dilation == (3, 3)
    x = torch.rand(3, 3, 107, 107) * 255
    assert net.feature_map(x).shape == (3, 128, 5, 5)      # stride 8, 75-pixel receptive field
    assert net.conv_features(x).shape == (3, 128 * 9) and net(x).shape == (3, 2)
    with pytest.raises(ValueError, match="needs the RoIAlign variant"):
        m.MDNet(width=0.1).roi_features(torch.zeros(1, 8, 5, 5), torch.zeros(1, 5))


def test_roi_features_sample_the_bin_centres_of_the_receptive_field_roi():
    """A feature map linear in (x, y): RoIAlign's bilinear bin averages equal the map at the bin
    centres, where the RoI is ``[x1, x2 - 75] / 8`` (RT-MDNet's samples2maskroi)."""
    net = m.MDNet(width=0.1, roi_align=True)
    ys, xs = torch.meshgrid(torch.arange(20.0), torch.arange(24.0), indexing="ij")
    coef = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, -3.0]])
    fmap = (coef[:, 0, None, None] * xs + coef[:, 1, None, None] * ys)[None]
    x1, y1, x2, y2 = 20.0, 12.0, 160.0, 130.0
    out = net.roi_features(fmap, torch.tensor([[0.0, x1, y1, x2, y2]])).view(3, 3, 3)
    cx = x1 / 8 + (torch.arange(3) + 0.5) * ((x2 - 75) / 8 - x1 / 8) / 3
    cy = y1 / 8 + (torch.arange(3) + 0.5) * ((y2 - 75) / 8 - y1 / 8) / 3
    expected = coef[:, 0, None, None] * cx[None, None, :] + coef[:, 1, None, None] * cy[None, :, None]
    torch.testing.assert_close(out, expected)


def test_candidate_rois_enlarge_boxes_1_2_times():
    rois = m.candidate_rois(torch.tensor([[10.0, 20.0, 50.0, 100.0]]))
    torch.testing.assert_close(rois, torch.tensor([[5.0, 10.0, 65.0, 130.0]]))


def test_shared_map_equals_the_patchs_own_map_on_the_stride_grid():
    """RT-MDNet's point: a candidate's RoI feature from one map of the whole area equals the
    feature of its own 107 crop (valid convolutions) when the crop sits on the stride-8 grid."""
    torch.manual_seed(0)
    net = m.MDNet(width=0.1, roi_align=True).eval()
    image = torch.rand(1, 3, 107 + 8 * 3, 107 + 8 * 2) * 255
    top, left = 8 * 3, 8 * 1
    patch = image[:, :, top:top + 107, left:left + 107]
    own = net.conv_features(patch)
    box = torch.tensor([[left + 16.0, top + 16.0, 75.0, 75.0]])      # the patch's box
    rois = torch.cat([torch.zeros(1, 1), m.candidate_rois(box)], dim=1)
    shared = net.roi_features(net.feature_map(image), rois)
    torch.testing.assert_close(shared, own, rtol=1e-4, atol=1e-4)


def test_state_dict_rebuilds_the_same_network():
    net = m.MDNet(num_domains=2, width=0.1, roi_align=True, lrn=m.PYMDNET_LRN).eval()
    again = m.from_state_dict(net.state_dict()).eval()
    assert again.roi_align and again.lrn == m.PYMDNET_LRN and again.num_domains == 2
    x = torch.rand(2, 3, 107, 107) * 255
    torch.testing.assert_close(again(x, 1), net(x, 1))
    shared = {k: v for k, v in net.state_dict().items() if not k.startswith("fc6.")}
    assert m.from_state_dict(shared).num_domains == 1
    with pytest.raises(ValueError, match="keys matching nothing in MDNet: \\['extra'\\]"):
        m.from_state_dict({**net.state_dict(), "extra": torch.zeros(1)}, source="w.safetensors")
    with pytest.raises(ValueError, match="w.safetensors: not MDNet weights"):
        m.from_state_dict({"fc.weight": torch.zeros(1)}, source="w.safetensors")
    state = net.state_dict()
    del state["architecture"]
    with pytest.raises(ValueError, match="no MDNet 'architecture' entry"):
        m.from_state_dict(state)


def test_patch_box_is_16_pixels_in():
    assert m.patch_box() == (16.0, 16.0, 75.0, 75.0)
    assert isinstance(m.MDNet(width=0.1).fc6, nn.ModuleList)


def test_forward_is_the_papers_composition():
    """Eval mode: fc6_k(relu(fc5(relu(fc4(flatten(conv3)))))) written out with the weights."""
    torch.manual_seed(1)
    net = m.MDNet(num_domains=2, width=0.1).eval()
    x = torch.rand(2, 3, 107, 107) * 255
    c = net.convs
    h = torch.relu(c.conv1(x - 128))
    h = torch.nn.functional.max_pool2d(torch.nn.functional.local_response_norm(h, 5, 5e-4, 0.75, 2.0), 3, 2)
    h = torch.relu(c.conv2(h))
    h = torch.nn.functional.max_pool2d(torch.nn.functional.local_response_norm(h, 5, 5e-4, 0.75, 2.0), 3, 2)
    h = torch.relu(c.conv3(h)).flatten(1)
    h = torch.relu(h @ net.fc4.weight.T + net.fc4.bias)
    h = torch.relu(h @ net.fc5.weight.T + net.fc5.bias)
    expected = h @ net.fc6[1].weight.T + net.fc6[1].bias
    torch.testing.assert_close(net(x, domain=1), expected)
