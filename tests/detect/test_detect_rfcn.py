"""R-FCN and the D&T tracking head: the papers' numbers, box coding, RPN/OHEM rules, NMS, tracking targets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from deepvideo.detect.box_coding import cell_anchors, decode, encode, grid_anchors, per_anchor
from deepvideo.detect.dt import DetectTrack, dt_losses, track_targets
from deepvideo.detect.rfcn import PAPER, RFCN, box_vote, rfcn_cpu
from deepvideo.detect.rfcn_loss import RPN_RULES, anchor_labels, ohem_loss


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return rfcn_cpu(3, anchor_scales=(16, 32), anchor_ratios=(1.0,), head_channels=16, rpn_channels=16)


def test_paper_configuration():
    torch.manual_seed(0)
    model = RFCN(30, depth=50, width=0.0625)  # the paper's head on a narrow backbone
    assert len(model.cells) == 15 == len(PAPER["anchor_scales"]) * len(PAPER["anchor_ratios"])
    assert model.k == 7 and model.cls_maps.out_channels == 49 * 31 and model.box_maps.out_channels == 4 * 49
    conv = model.reduce[0]
    assert conv.out_channels == 512 and conv.dilation == (6, 6) and conv.kernel_size == (3, 3)
    assert model.post_nms[1] == 300 and model.rpn_nms == 0.7 and model.test_nms == 0.3
    assert model.backbone.layer4[1].conv2.dilation == (2, 2)
    assert PAPER["ohem_rois"] == 128 and PAPER["fg_iou"] == 0.5
    assert RPN_RULES == {"positive_iou": 0.7, "negative_iou": 0.3, "batch": 256, "positive_share": 0.5}
    maps = model.eval().features(torch.rand(1, 3, 64, 96))
    assert maps["conv4"].shape[-2:] == maps["conv5"].shape[-2:] == (4, 6)  # both stride 16
    assert maps["conv3"].shape[-2:] == (8, 12)


def test_anchors_and_box_coding():
    cells = cell_anchors((32, 64), (0.5, 1.0, 2.0))
    w, h = cells[:, 2] - cells[:, 0], cells[:, 3] - cells[:, 1]
    assert torch.allclose(w * h, torch.tensor([32.0 ** 2] * 3 + [64.0 ** 2] * 3))
    assert torch.allclose(h / w, torch.tensor([0.5, 1, 2] * 2))
    grid = grid_anchors(cells, 2, 3, 16)
    assert grid.shape == (2 * 3 * 6, 4)
    assert torch.allclose((grid[6] [:2] + grid[6][2:]) / 2, torch.tensor([24.0, 8.0]))  # cell (0, 1)
    maps = torch.arange(2 * 6 * 4 * 2 * 3, dtype=torch.float32).view(2, 24, 2, 3)
    assert per_anchor(maps, 4)[1, 6 + 2].tolist() == maps[1, 8:12, 0, 1].tolist()
    ref = torch.tensor([[10.0, 20, 50, 40]])
    box = torch.tensor([[14.0, 18, 64, 48]])
    target = encode(box, ref, (1, 1, 1, 1))
    expected = [(39 - 30) / 40, (33 - 30) / 20, math.log(50 / 40), math.log(30 / 20)]
    assert target[0].tolist() == pytest.approx(expected)
    assert torch.allclose(decode(encode(box, ref), ref), box, atol=1e-4)


def test_rpn_anchor_labels():
    anchors = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30], [0, 0, 7, 10], [0, 0, 30, 30.0]])
    labels, index = anchor_labels(anchors, torch.tensor([[0, 0, 10, 10.0]]))
    # IoU 1 and 0.9 -> positive, 0 -> negative, 0.7 -> positive, 1/9 -> negative
    assert labels.tolist() == [1, 1, 0, 1, 0]
    labels, _ = anchor_labels(anchors[2:3], torch.tensor([[18, 18, 40, 40.0]]))
    assert labels.tolist() == [1]  # the best anchor of a box is positive whatever its IoU


def test_ohem_keeps_the_hardest_rois_per_image():
    logits = torch.tensor([[5.0, 0, 0], [0, 5, 0], [0, 0, 5], [5, 0, 0]])
    classes = torch.tensor([0, 2, 2, 1])  # losses: easy, hard, easy, hard
    deltas, targets = torch.zeros(4, 4), torch.zeros(4, 4)
    targets[2] = 10.0  # the third RoI gets a large box loss
    cls, box = ohem_loss(logits, deltas, classes, targets, [2, 2], keep=1)
    ce = torch.nn.functional.cross_entropy(logits, classes, reduction="none")
    assert cls.item() == pytest.approx((ce[1] + ce[2]).item() / 2)
    assert box.item() == pytest.approx(4 * 9.5 / 2)


def test_proposals_and_detections_respect_nms(tiny):
    tiny.eval()
    images = torch.rand(1, 3, 64, 64)
    maps = tiny.features(images)
    proposals = tiny.proposals(*tiny.rpn(maps["conv4"]), (64, 64))[0]
    assert 0 < len(proposals) <= tiny.post_nms[1]
    assert (box_iou(proposals, proposals).triu(1) <= 0.7 + 1e-6).all()
    tiny.box_voting = False  # NMS alone: voting moves the kept boxes (test below)
    (dets,) = tiny.detect(images, maps)
    tiny.box_voting = True
    for label in dets.labels.unique():
        same = dets.boxes[dets.labels == label]
        assert (box_iou(same, same).triu(1) <= 0.3 + 1e-6).all()
        assert len(same) <= PAPER["per_class_detections"] == 25
    assert (dets.scores > tiny.score_threshold).all() and len(dets.scores) <= tiny.max_detections


def test_box_voting_is_the_score_weighted_mean_of_overlapping_boxes_of_the_class():
    assert PAPER["vote_iou"] == 0.5
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 20], [0, 0, 10, 10]])
    scores = torch.tensor([0.6, 0.2, 0.9, 0.5])
    labels = torch.tensor([1, 1, 1, 2])
    # candidate 1 overlaps with IoU 81/119 >= 0.5, candidate 2 only 0.5 (counts), candidate 3 is another class
    voted = box_vote(boxes[:1], labels[:1], boxes, scores, labels)
    expected = (0.6 * boxes[0] + 0.2 * boxes[1] + 0.9 * boxes[2]) / 1.7
    assert torch.allclose(voted[0], expected)
    alone = box_vote(boxes[3:], labels[3:], boxes, scores, labels)
    assert torch.equal(alone, boxes[3:])  # its only same-class candidate is itself
    assert box_vote(boxes[:0], labels[:0], boxes, scores, labels).shape == (0, 4)


def test_tracking_targets_and_losses(tiny):
    boxes_a, tracks_a = torch.tensor([[0, 0, 10, 10.0], [5, 5, 25, 15]]), torch.tensor([4, 7])
    boxes_b, tracks_b = torch.tensor([[10, 10, 30, 20.0]]), torch.tensor([7])
    rois, targets = track_targets(boxes_a, tracks_a, boxes_b, tracks_b)
    assert rois.tolist() == [[5, 5, 25, 15]]
    assert torch.allclose(decode(targets, rois), boxes_b)
    # training RoIs (proposals + ground truth): those over IoU 0.5 with object 7 track to its next box
    proposals = torch.tensor([[6, 5, 25, 15.0], [5, 5, 15, 15], [0, 0, 9, 10]])
    rois, targets = track_targets(boxes_a, tracks_a, boxes_b, tracks_b,
                                  rois=torch.cat([proposals, boxes_a]))
    assert rois.tolist() == [[6, 5, 25, 15], [5, 5, 25, 15]]  # IoU 0.95, 1; 0.5 is not above
    assert torch.allclose(decode(targets, rois), boxes_b.expand(2, 4))
    model = DetectTrack(tiny).train()
    batch = {"rgb_a": torch.rand(1, 3, 64, 64), "rgb_b": torch.rand(1, 3, 64, 64),
             "boxes_a": [boxes_a], "boxes_b": [boxes_b], "labels_a": [torch.tensor([1, 2])],
             "labels_b": [torch.tensor([2])], "tracks_a": [tracks_a], "tracks_b": [tracks_b]}
    losses = dt_losses(model, batch, ohem=16)
    assert set(losses) == {"rpn_cls", "rpn_box", "cls", "box", "track"}
    losses["track"].backward()
    assert model.track_maps.weight.grad.abs().sum() > 0
    torch.nn.init.zeros_(model.track_maps.weight)
    model.eval()
    maps = [model.detector.features(batch[k]) for k in ("rgb_a", "rgb_b")]
    assert torch.allclose(model.tracked_boxes(*maps, boxes_a), boxes_a, atol=1e-4)  # Δ = 0: no motion
    assert np.isfinite(sum(v.item() for v in losses.values()))
