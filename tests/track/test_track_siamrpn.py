"""SiamRPN / SiamRPN++ / SiamMask networks and losses against the papers' equations."""

import math

import pytest
import torch
import torch.nn.functional as F

from deepvideo.track import siamrpn as S
from deepvideo.track import siamrpn_loss as L
from deepvideo.track.anchors import anchor_grid, assign_targets


def tiny(name: str, **kw):
    torch.manual_seed(0)
    if name == "siamrpn":
        return S.SiamRPN(width=0.125, **kw).eval()
    if name == "siamrpnpp":
        return S.SiamRPNpp(width=0.125, blocks=(1, 1, 1, 1), channels=8, **kw).eval()
    return S.SiamMask(width=0.125, blocks=(1, 1, 1), channels=8, **kw).eval()


def test_depthwise_xcorr_equals_an_explicit_loop():
    x, z = torch.randn(2, 3, 7, 6), torch.randn(2, 3, 3, 2)
    out = S.depthwise_xcorr(x, z)
    assert out.shape == (2, 3, 5, 5)
    for n in range(2):
        for c in range(3):
            for i in range(5):
                for j in range(5):
                    expected = (x[n, c, i:i + 3, j:j + 2] * z[n, c]).sum()
                    torch.testing.assert_close(out[n, c, i, j], expected)


def test_upchannel_xcorr_equals_an_explicit_loop():
    x, kernel = torch.randn(2, 3, 6, 6), torch.randn(2, 4 * 3, 3, 3)   # 4 outputs of 3 channels
    out = S.upchannel_xcorr(x, kernel)
    assert out.shape == (2, 4, 4, 4)
    for n in range(2):
        for o in range(4):
            for i in range(4):
                for j in range(4):
                    expected = (x[n, :, i:i + 3, j:j + 3] * kernel[n, 3 * o:3 * o + 3]).sum()
                    torch.testing.assert_close(out[n, o, i, j], expected)
    with pytest.raises(ValueError, match="does not fit"):
        S.upchannel_xcorr(x, torch.randn(2, 5, 3, 3))


def test_up_channel_head_lifts_the_template_to_2k_and_4k_channel_kernels():
    net = tiny("siamrpn")
    c = net.channels[-1]
    assert net.rpn.template_cls.out_channels == 2 * 5 * c and net.rpn.template_loc.out_channels == 4 * 5 * c
    out = net(torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255)
    assert out["cls"].shape == (1, 10, 17, 17) and out["loc"].shape == (1, 20, 17, 17)
    # the lifting convs start small: the first correlations (BN in training mode) are O(1)
    assert net.rpn.template_cls.weight.std().item() == pytest.approx(S.UPCHANNEL_INIT_STD, rel=0.05)
    out = net.train()(torch.rand(2, 3, 127, 127) * 255, torch.rand(2, 3, 255, 255) * 255)
    assert out["cls"].abs().max() < 10 and out["loc"].abs().max() < 10


def test_siamrpnpp_geometry_and_layerwise_aggregation():
    net = tiny("siamrpnpp")
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    feats = S.resnet_features(net.backbone, z, 4)
    assert [f.shape[-1] for f in feats[2:]] == [15, 15, 15]           # conv3-5 of the template
    assert [f.shape[-1] for f in net.embed_template(z)] == [7, 7, 7]  # centre crop
    assert [f.shape[-1] for f in S.resnet_features(net.backbone, x, 4)[2:]] == [31, 31, 31]
    with torch.no_grad():
        net.rpn.cls_weight.copy_(torch.tensor([0.0, 1.0, 2.0]))
        out = net(z, x)
        zs, xs = net.embed_template(z), net.features(x, False)
        heads = [head(a, b) for head, a, b in zip(net.rpn.heads, zs, xs, strict=True)]
    w = torch.exp(torch.tensor([0.0, 1.0, 2.0]))
    w = w / w.sum()
    torch.testing.assert_close(out["cls"], sum(wi * h[0] for wi, h in zip(w, heads, strict=True)))
    # equal weights at initialisation
    torch.testing.assert_close(out["loc"], sum(h[1] for h in heads) / 3, rtol=1e-4, atol=1e-4)
    assert out["cls"].shape == (1, 10, 25, 25)


def test_siammask_mask_branch_and_refinement_shapes():
    net = tiny("siammask", refine=True)
    assert net.mask.head[-1].out_channels == 63 * 63 and net.mask.head[-1].kernel_size == (1, 1)
    out = net.match(net.embed_template(torch.rand(1, 3, 127, 127) * 255), torch.rand(1, 3, 255, 255) * 255)
    assert out["mask"].shape == (1, 3969, 25, 25)
    assert net.refined_mask(out, 0, 24).shape == (1, 1, 127, 127)
    with pytest.raises(ValueError, match="no refinement module"):
        tiny("siammask").refined_mask(out, 0, 0)


def test_classification_loss_is_half_positive_half_negative_nll():
    cls = torch.randn(1, 4, 2, 2)          # k = 2: channels (bg a0, bg a1, fg a0, fg a1)
    labels = torch.tensor([[[[1, -1], [0, 0]], [[-1, -1], [-1, 1]]]])
    logp = F.log_softmax(cls.reshape(1, 2, 2, 2, 2), dim=1)
    pos = -(logp[0, 1, 0, 0, 0] + logp[0, 1, 1, 1, 1]) / 2
    neg = -(logp[0, 0, 0, 1, 0] + logp[0, 0, 0, 1, 1]) / 2
    torch.testing.assert_close(L.classification_loss(cls, labels), 0.5 * pos + 0.5 * neg)


def test_regression_loss_is_weighted_l1():
    loc, deltas = torch.randn(2, 8, 3, 3), torch.randn(2, 4, 2, 3, 3)
    weights = torch.zeros(2, 2, 3, 3)
    weights[0, 1, 2, 0] = 0.5
    weights[1, 0, 0, 0] = 1.0
    diff = (loc.reshape(2, 4, 2, 3, 3) - deltas).abs().sum(1)
    expected = (0.5 * diff[0, 1, 2, 0] + diff[1, 0, 0, 0]) / 2
    torch.testing.assert_close(L.regression_loss(loc, deltas, weights), expected)


def test_loss_weights_and_total():
    assert (L.CLS_WEIGHT, L.LOC_WEIGHT, L.MASK_WEIGHT) == (1.0, 1.2, 36.0)
    out = tiny("siamrpn")(torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255)
    targets = assign_targets(anchor_grid(17), torch.tensor([[100.0, 90.0, 60.0, 50.0]]))
    losses = L.rpn_losses(out, targets)
    torch.testing.assert_close(losses["loss"], losses["cls_loss"] + 1.2 * losses["loc_loss"])


def test_mask_labels_cut_the_row_window():
    masks = torch.zeros(1, 255, 255)
    masks[0, 64:191, 64:128] = 1            # the left half of the centre RoW's 127-pixel window
    labels = L.mask_labels(masks, torch.tensor([[0, 12, 12], [0, 12, 20]]), 25)
    assert labels.shape == (2, 63, 63)
    assert (labels[0, :, :31] == 1).all() and (labels[0, :, 33:] == -1).all()
    # column 20: window from 64 + 64 = 128, right of the painted block
    assert (labels[1] == -1).all()


def test_mask_loss_is_the_logistic_loss_over_positive_rows():
    mask = torch.randn(1, 9, 5, 5)          # 3x3 masks on a 5x5 map
    iou = torch.zeros(1, 5, 5, 5)
    iou[0, 2, 1, 3] = 0.7                   # one positive RoW
    masks = torch.zeros(1, 255, 255)
    loss = L.mask_loss(mask, masks, iou)
    labels = L.mask_labels(masks, torch.tensor([[0, 1, 3]]), 5, size=3)
    expected = torch.log1p(torch.exp(-labels.reshape(-1) * mask[0, :, 1, 3])).mean()
    assert (labels == -1).all()
    torch.testing.assert_close(loss, expected)
    assert L.mask_loss(mask, masks, torch.zeros(1, 5, 5, 5)) == 0


def test_top_proposal_decodes_the_best_anchor():
    cls = torch.full((1, 10, 3, 3), -5.0)
    cls[0, 5 + 4, 0, 2] = 5.0               # foreground of anchor 4 (32x96) at row 0, col 2
    loc = torch.zeros(1, 20, 3, 3)
    loc[0, 2 * 5 + 4, 0, 2] = math.log(2.0)  # dw of that anchor: twice as wide
    box, prob = L.top_proposal({"cls": cls, "loc": loc}, anchor_grid(3, 255))
    cx, cy = 127.5 + 8, 127.5 - 8
    torch.testing.assert_close(box, torch.tensor([[cx - 32, cy - 48, 64.0, 96.0]]))
    assert prob.item() == pytest.approx(1 / (1 + math.exp(-10)))


def test_width_and_state_round_trip():
    for name in ("siamrpn", "siamrpnpp", "siammask"):
        net = tiny(name)
        rebuilt = S.network_from_state(name, net.state_dict())
        assert type(rebuilt) is type(net)
    with pytest.raises(ValueError, match="not siamrpnpp weights"):
        S.network_from_state("siamrpnpp", {"x": torch.zeros(1)}, source="w.safetensors")
    state = tiny("siamrpn").state_dict()
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"keys matching nothing \['extra.weight'\]"):
        S.network_from_state("siamrpn", state)
