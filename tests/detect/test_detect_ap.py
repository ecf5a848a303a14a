"""VOC-style AP: hand-computed cases, an independent brute-force implementation, IoU."""

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from deepvideo.detect.ap import Box, average_precision, class_ap, mean_ap, pairwise_iou


def test_pairwise_iou_matches_torchvision():
    rng = np.random.default_rng(0)
    a = np.sort(rng.uniform(0, 50, (7, 2, 2)), axis=1).transpose(0, 2, 1).reshape(7, 4)[:, [0, 2, 1, 3]]
    b = np.sort(rng.uniform(0, 50, (5, 2, 2)), axis=1).transpose(0, 2, 1).reshape(5, 4)[:, [0, 2, 1, 3]]
    expected = box_iou(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_allclose(pairwise_iou(a, b), expected, atol=1e-12)


def test_hand_computed_ap():
    # 2 ground-truth boxes in 2 frames; detections by score: TP, FP, TP
    truths = [Box("f0", "cat", (0, 0, 10, 10)), Box("f1", "cat", (0, 0, 10, 10))]
    dets = [Box("f0", "cat", (0, 0, 10, 10), 0.9), Box("f0", "cat", (20, 20, 30, 30), 0.8),
            Box("f1", "cat", (1, 0, 11, 10), 0.7)]
    # recall 0.5 at precision 1, recall 1 at precision 2/3 -> 0.5 * 1 + 0.5 * 2/3
    assert class_ap(dets, truths) == pytest.approx(0.5 + 1 / 3)


def test_duplicate_detection_is_false_positive_and_ignored_box_is_neutral():
    truths = [Box("f0", "a", (0, 0, 10, 10)), Box("f0", "a", (50, 50, 60, 60), ignore=True)]
    dets = [Box("f0", "a", (0, 0, 10, 10), 0.9), Box("f0", "a", (0, 0, 10, 10), 0.8),
            Box("f0", "a", (50, 50, 60, 60), 0.95)]
    # the ignored match is dropped; TP then FP: AP = 1 (recall 1 reached at precision 1)
    assert class_ap(dets, truths) == pytest.approx(1.0)
    assert class_ap(dets[1:2] + dets[:1], truths[:1]) == pytest.approx(1.0)
    assert class_ap([], truths) == 0.0
    assert np.isnan(class_ap(dets, truths[1:]))


def brute_force_ap(dets, truths, threshold):
    """Independent: greedy matching written out per detection, then the area under the
    interpolated curve as a sum over every detection rank (p_interp(r) = max p at recall ≥ r)."""
    dets = sorted(dets, key=lambda d: -d.score)
    taken, hits = set(), []
    for d in dets:
        cands = [(i, t) for i, t in enumerate(truths) if t.key == d.key]
        best, best_iou = None, -1.0
        for i, t in cands:
            x1, y1 = max(d.box[0], t.box[0]), max(d.box[1], t.box[1])
            x2, y2 = min(d.box[2], t.box[2]), min(d.box[3], t.box[3])
            inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            value = inter / (area(d.box) + area(t.box) - inter)
            if value > best_iou:
                best, best_iou = i, value
        hit = best is not None and best_iou >= threshold and best not in taken
        if hit:
            taken.add(best)
        hits.append(hit)
    n = len(truths)
    points = []
    for k in range(1, len(hits) + 1):
        tp = sum(hits[:k])
        points.append((tp / n, tp / k))
    total, previous = 0.0, 0.0
    for recall, _ in points:
        if recall > previous:
            total += (recall - previous) * max(p for r, p in points if r >= recall)
            previous = recall
    return total


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    truths, dets = [], []
    for frame in range(6):
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 80, 2)
            w, h = rng.uniform(5, 20, 2)
            truths.append(Box(frame, 0, (x, y, x + w, y + h)))
            for _ in range(rng.integers(0, 3)):
                jx, jy = rng.normal(0, 3, 2)
                dets.append(Box(frame, 0, (x + jx, y + jy, x + jx + w, y + jy + h), rng.random()))
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(0, 80, 2)
            dets.append(Box(frame, 0, (x, y, x + 10, y + 10), rng.random()))
    if not truths:
        truths.append(Box(0, 0, (0, 0, 5, 5)))
    assert class_ap(dets, truths, 0.5) == pytest.approx(brute_force_ap(dets, truths, 0.5), abs=1e-9)


def test_mean_ap_skips_classes_without_ground_truth():
    truths = [Box(0, "a", (0, 0, 1, 1)), Box(0, "b", (0, 0, 1, 1))]
    dets = [Box(0, "a", (0, 0, 1, 1), 0.5)]
    result = mean_ap(dets, truths, classes=["a", "b", "c"])
    assert result["per_class"]["a"] == 1.0 and result["per_class"]["b"] == 0.0
    assert np.isnan(result["per_class"]["c"]) and result["mean"] == 0.5


def test_average_precision_of_a_perfect_curve_is_one():
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == 1.0
