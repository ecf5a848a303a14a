"""IoU-Net training samples as pytracking's: perturbed proposals (σ shrunk by 0.9 after a miss,
whole pixels, IoU above ``min_iou``) and ATOM's unjittered reference crop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_pairs import rectangle_sequence

from deepvideo.engine.tasks.atom_dimp import ATOMTask, DiMPTask
from deepvideo.track.boxes import iou
from deepvideo.track.sequence_samples import SequenceSamples, perturbed_box, proposals_for


def test_first_draw_is_the_rounded_gaussian_perturbation():
    box = np.array([40.0, 30.0, 20.0, 16.0], np.float32)
    noise = np.random.default_rng(4).standard_normal(4)
    cx, cy, w, h = np.array([50.0, 38.0, 20.0, 16.0]) + 0.5 * noise
    expected = np.round([cx - w / 2, cy - h / 2, w, h])
    assert np.array_equal(perturbed_box(box, 0.5, np.random.default_rng(4)), expected)


def test_proposals_reach_a_high_min_iou_by_shrinking_sigma():
    box = np.array([40.0, 30.0, 60.0, 48.0], np.float32)
    boxes, overlap = proposals_for(box, 64, np.random.default_rng(0), min_iou=0.9)
    assert bool((overlap > 0.9).all()) and overlap.mean() < 1.0
    assert np.array_equal(boxes, np.round(boxes))                        # whole pixels
    assert np.allclose(overlap, iou(boxes, np.broadcast_to(box, boxes.shape)))


def test_atom_reference_crop_is_not_jittered(tmp_path):
    jitter = {k: ATOMTask.defaults[k] for k in ("center_jitter", "scale_jitter")}
    assert jitter == {"center_jitter": (0.0, 4.5), "scale_jitter": (0.0, 0.5)}
    assert "center_jitter" not in DiMPTask.defaults                      # DiMP: (3, 4.5), (0.25, 0.5)
    seq = rectangle_sequence(tmp_path, [(60, 50, 40, 30), (64, 52, 40, 30), (70, 56, 40, 30)])
    data = SequenceSamples([seq], num_train=1, num_test=1, image_size=96, proposals=4,
                           samples_per_epoch=4, **jitter)
    for index in range(3):
        x, y, w, h = data[index]["train_boxes"][0].tolist()
        assert (x + w / 2, y + h / 2) == pytest.approx((48, 48), abs=1e-4)
        assert math.sqrt(w * h) == pytest.approx(96 / 5, rel=1e-5)
