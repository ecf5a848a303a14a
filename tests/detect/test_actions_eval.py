"""Frame-mAP against an independent brute-force AP; tube linking and video-mAP by hand."""

import numpy as np
import pytest

from deepvideo.detect.actions.ava import AvaBox
from deepvideo.detect.actions.evaluate import FRAME_IOU, frame_map
from deepvideo.detect.actions.framebox import Tube
from deepvideo.detect.actions.tubes import (
    COCO_RANGE,
    LINK_IOU,
    MAX_MISSED,
    link_tubes,
    spatiotemporal_iou,
    video_map,
)


def brute_iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def brute_ap(dets, gts):
    """VOC AP by definition: precision at each true positive's rank, maximised over higher
    recalls, summed with weight 1/positives (no arrays, no cumulative sums)."""
    order = sorted(range(len(dets)), key=lambda i: (-dets[i][2], i))
    used, hits = set(), []
    for i in order:
        key, box, _ = dets[i]
        cands = [(brute_iou(box, g[1]), j) for j, g in enumerate(gts) if g[0] == key]
        best = max(cands, default=(0.0, -1))
        ok = best[0] >= 0.5 and best[1] not in used
        if ok:
            used.add(best[1])
        hits.append(ok)
    prec = [sum(hits[:k + 1]) / (k + 1) for k in range(len(hits))]
    total = 0.0
    for k, hit in enumerate(hits):
        if hit:
            total += max(prec[k:]) / len(gts)
    return total


def test_frame_map_matches_brute_force_and_drops_excluded():
    rng = np.random.default_rng(3)
    truths, dets = [], []
    for ts in range(6):
        for person in range(3):
            x, y = rng.uniform(0, 0.5, 2)
            box = (x, y, x + 0.3, y + 0.4)
            for action in rng.choice([1, 2, 3], size=rng.integers(1, 3), replace=False):
                truths.append(AvaBox("v", ts, box, int(action), person))
            for action in (1, 2, 3):
                shift = rng.uniform(-0.08, 0.08, 4)
                dets.append(AvaBox("v", ts, tuple(np.clip(np.array(box) + shift, 0, 1)), action,
                                   score=float(rng.random())))
    truths.append(AvaBox("v", 9, (0, 0, 1, 1), 1, 0))  # excluded keyframe: its miss must not count
    truths.append(AvaBox("v", 0, (0, 0, 1, 1), 7, 0))  # class 7 is not evaluated
    assert FRAME_IOU == 0.5  # the AVA protocol
    result = frame_map(dets, truths, classes=[1, 2, 3], excluded={("v", 9)})
    assert set(result["per_class"]) == {1, 2, 3}
    for c in (1, 2, 3):
        d = [(r.key, r.box, r.score) for r in dets if r.action == c]
        g = [(r.key, r.box) for r in truths if r.action == c and r.key != ("v", 9)]
        assert result["per_class"][c] == pytest.approx(brute_ap(d, g), abs=1e-6)
    assert result["mean"] == pytest.approx(np.mean([result["per_class"][c] for c in (1, 2, 3)]), abs=1e-12)


def tube(label, first, n, box, score=1.0):
    return Tube(label, np.arange(first, first + n), np.tile(np.asarray(box, float), (n, 1)), score)


def test_video_map_identical_tubes_is_one():
    truth = {"a": [tube(0, 0, 10, [0, 0, 10, 10])], "b": [tube(1, 3, 5, [5, 5, 20, 30])]}
    result = video_map(truth, truth)
    assert result["0.2"] == result["0.5"] == result["0.5:0.95"] == 1.0


def test_shifted_tubes_hand_computed():
    gt = tube(0, 0, 10, [0, 0, 10, 10])
    late = tube(0, 5, 10, [0, 0, 10, 10])  # frames 5..14: temporal IoU 5/15, spatial 1
    assert spatiotemporal_iou(late, gt) == pytest.approx(1 / 3)
    result = video_map({"a": [late]}, {"a": [gt]})
    assert result["0.2"] == 1.0 and result["0.5"] == 0.0
    side = tube(0, 0, 10, [2, 0, 12, 10])  # IoU 80/120 = 2/3 in every frame
    assert spatiotemporal_iou(side, gt) == pytest.approx(2 / 3)
    # thresholds 0.50, 0.55, 0.60, 0.65 of the ten pass: 0.4
    assert video_map({"a": [side]}, {"a": [gt]})["0.5:0.95"] == pytest.approx(0.4)
    assert COCO_RANGE[0] == 0.5 and COCO_RANGE[-1] == 0.95 and len(COCO_RANGE) == 10
    # a duplicate lower-scored tube is a false positive: precision 1 at recall 1 -> AP 1, and a
    # higher-scored false tube in another video first: AP = 1/2
    wrong = tube(0, 0, 10, [0, 0, 10, 10], score=2.0)
    assert video_map({"a": [side], "z": [wrong]}, {"a": [gt]})["0.5"] == pytest.approx(0.5)


def test_greedy_linking_follows_the_best_overlap():
    assert LINK_IOU == 0.1 and MAX_MISSED == 5  # Singh et al. 2017
    dets = {}
    for f in range(6):
        boxes = np.array([[f, 0, f + 10, 10], [50 - f, 40, 60 - f, 50]], float)
        dets[f] = (boxes, np.array([0.9, 0.6]))
    tubes = link_tubes(dets, label=2)
    assert len(tubes) == 2
    assert tubes[0].score == pytest.approx(0.9) and tubes[0].frames.tolist() == list(range(6))
    assert tubes[0].boxes[:, 0].tolist() == list(range(6))
    assert tubes[1].boxes[:, 0].tolist() == [50 - f for f in range(6)] and tubes[1].label == 2


def test_linking_gap_and_termination():
    box = np.array([[0, 0, 10, 10]], float)
    dets = {0: (box, np.array([1.0])), 3: (box, np.array([0.5])), 20: (box, np.array([0.8]))}
    tubes = link_tubes(dets)
    # frames 0 and 3 join (gap 3 <= k); frame 20 is after k = 5 missed frames: a new tube
    assert sorted(t.frames.tolist() for t in tubes) == [[0, 3], [20]]
    assert max(t.score for t in tubes if len(t.frames) == 2) == pytest.approx(0.75)


def test_link_classes_gives_one_tube_per_class_track():
    from deepvideo.detect.actions.tubes import link_classes

    frames = {f: (np.array([[f, 0, f + 10, 10]], float), np.array([[0.9, 0.2]])) for f in range(4)}
    frames[4] = (np.zeros((0, 4)), np.zeros((0, 2)))  # a frame without detections
    tubes = link_classes(frames, 2)
    assert sorted((t.label, round(t.score, 6)) for t in tubes) == [(0, 0.9), (1, 0.2)]
    truth = {"v": [tube(0, 0, 4, [0, 0, 10, 10])]}
    truth["v"][0].boxes[:, 0] += np.arange(4)
    truth["v"][0].boxes[:, 2] += np.arange(4)
    assert video_map({"v": [t for t in tubes if t.label == 0]}, truth)["0.5"] == 1.0
