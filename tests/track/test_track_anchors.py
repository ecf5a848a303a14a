"""SiamRPN anchors: sizes and positions by the formula, deltas, target assignment."""

import math

import pytest
import torch

from deepvideo.track import anchors as A


def test_paper_numbers():
    assert A.STRIDE == 8 and A.RATIOS == (0.33, 0.5, 1.0, 2.0, 3.0) and A.SCALES == (8.0,)
    assert (A.POSITIVE_IOU, A.NEGATIVE_IOU, A.POSITIVES, A.SAMPLED) == (0.6, 0.3, 16, 64)


def test_anchor_sizes_follow_the_formula():
    sizes = A.anchor_sizes()
    assert sizes.shape == (5, 2)
    for (w, h), r in zip(sizes.tolist(), A.RATIOS, strict=True):
        w0 = math.floor(math.sqrt(64 / r))
        assert (w, h) == (8 * w0, 8 * math.floor(w0 * r))
    assert sizes.tolist() == [[104, 32], [88, 40], [64, 64], [40, 80], [32, 96]]


def test_anchor_grid_is_centred_on_the_search_image():
    grid = A.anchor_grid(25, 255)
    assert grid.shape == (5, 25, 25, 4)
    assert grid[:, 12, 12, :2].tolist() == [[127.5, 127.5]] * 5
    assert grid[0, 0, 0, :2].tolist() == [127.5 - 12 * 8] * 2
    assert torch.equal(grid[2, 3, 4], torch.tensor([127.5 + (4 - 12) * 8, 127.5 + (3 - 12) * 8, 64, 64]))
    torch.testing.assert_close(A.anchor_grid(17, 0)[:, 8, 8, :2], torch.zeros(5, 2))


def test_encode_decode():
    anchors = torch.tensor([[100.0, 50.0, 64.0, 32.0]])
    boxes = torch.tensor([[110.0, 42.0, 80.0, 16.0]])
    deltas = A.encode(anchors, boxes)
    torch.testing.assert_close(deltas, torch.tensor([[10 / 64, -8 / 32, math.log(80 / 64), math.log(0.5)]]))
    torch.testing.assert_close(A.decode(anchors, deltas), boxes)


def test_assignment_thresholds_sampling_and_weights():
    grid = A.anchor_grid(17, 255)
    # the target is exactly the centre 64x64 anchor: that anchor has IoU 1
    target = torch.tensor([[127.5 - 32, 127.5 - 32, 64.0, 64.0], [90.0, 100.0, 100.0, 40.0]])
    t = A.assign_targets(grid, target, torch.Generator().manual_seed(0))
    assert t.labels.shape == (2, 5, 17, 17) and t.deltas.shape == (2, 4, 5, 17, 17)
    assert t.labels[0, 2, 8, 8] == 1 and t.iou[0, 2, 8, 8] == pytest.approx(1.0)
    torch.testing.assert_close(t.deltas[0, :, 2, 8, 8], torch.zeros(4))
    for n in range(2):
        pos, neg = t.labels[n] == 1, t.labels[n] == 0
        assert 0 < pos.sum() <= 16 and neg.sum() == 48
        assert (t.iou[n][pos] > 0.6).all() and (t.iou[n][neg] < 0.3).all()
        torch.testing.assert_close(t.weights[n][pos], torch.full((int(pos.sum()),), 1 / float(pos.sum())))
        assert (t.weights[n][~pos] == 0).all()
    # the centred 64x64 target has 9 candidate positives; with room for 4, 4 are drawn, and
    # 64 - 4 negatives
    few = A.assign_targets(grid, target[:1], positives=4)
    assert (few.iou > 0.6).sum() == 9 and (few.labels == 1).sum() == 4 and (few.labels == 0).sum() == 60
    assert ((few.labels == 1) <= (few.iou > 0.6)).all()


def test_sample_keeps_a_random_subset():
    mask = torch.zeros(40, dtype=torch.bool)
    mask[5:35] = True
    kept = A.sample(mask, 16, torch.Generator().manual_seed(1))
    assert kept.sum() == 16 and (kept <= mask).all()
    assert torch.equal(A.sample(mask, 30, None), mask)


def test_iou_of_anchor_and_box():
    grid = torch.tensor([[[[50.0, 50.0, 20.0, 20.0]]]])
    iou = A.anchor_iou(grid, torch.tensor([[50.0, 40.0, 20.0, 20.0]]))
    assert iou.item() == pytest.approx(200 / 600)   # x 40..60 vs 50..70, y 40..60 both
