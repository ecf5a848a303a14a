"""deepvideo.track.metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepvideo.track import metrics

BOX = [0.0, 0.0, 10.0, 10.0]


def test_protocol_constants_are_the_toolkits_and_papers():
    np.testing.assert_allclose(metrics.SUCCESS_THRESHOLDS, np.arange(21) / 20)
    np.testing.assert_array_equal(metrics.PRECISION_THRESHOLDS, np.arange(51))
    assert metrics.PRECISION_AT == 20
    np.testing.assert_allclose(metrics.NORM_PRECISION_THRESHOLDS, np.arange(51) / 100)
    assert len(metrics.GOT10K_THRESHOLDS) == 101
    assert (metrics.VOT_BURNIN, metrics.VOT_SKIP_INITIALIZE) == (10, 5)
    assert metrics.VOT2018_EAO_INTERVAL == (100, 356)
    assert (metrics.VOT_SKIPPED, metrics.VOT_INIT, metrics.VOT_FAILURE) == (0, 1, 2)


def test_success_is_strictly_greater_and_precision_at_most():
    curve = metrics.success_curve([0.0, 0.5, 1.0])
    assert curve[0] == pytest.approx(2 / 3)   # IoU 0 is no success at threshold 0
    assert curve[10] == pytest.approx(1 / 3)  # IoU 0.5 is no success at threshold 0.5
    assert curve[20] == 0
    prec = metrics.precision_curve([0.0, 20.0, 20.5, np.inf])
    assert prec[0] == 0.25 and prec[20] == 0.5 and prec[50] == 0.75
    with pytest.raises(ValueError, match="no frames"):
        metrics.success_curve([])


def test_ope_sequence_hand_case():
    gt = np.array([BOX] * 4)
    pred = np.array([[50, 50, 5, 5],        # frame 0: replaced by the initial box
                     BOX,                   # IoU 1, error 0
                     [5, 0, 10, 10],        # IoU 50/150, error 5 px, normalized 0.5
                     [np.nan] * 4])         # no box: IoU 0, error infinite
    result = metrics.ope_sequence(pred, gt, times=[0.5, 0.1, 0.2, 0.0])
    assert result["auc"] == pytest.approx((7 * 0.75 + 13 * 0.5) / 21)
    assert result["success_rate"] == 0.5
    assert result["precision"] == 0.75
    assert result["norm_precision"] == pytest.approx((50 * 0.5 + 0.75) / 51)
    assert result["fps"] == pytest.approx((2 + 10 + 5) / 3)  # t = 0 is left out
    assert result["frames"] == 4
    # an absent frame (or an unannotated one) is not scored
    absent = metrics.ope_sequence(pred, gt, absent=[False, False, False, True])
    assert absent["frames"] == 3
    assert absent["precision"] == 1.0
    gt_nan = gt.copy()
    gt_nan[3] = np.nan
    assert metrics.ope_sequence(pred, gt_nan)["auc"] == absent["auc"]


def test_ope_summary_averages_sequence_curves():
    gt = np.array([BOX] * 3)
    a = metrics.ope_sequence(np.array([BOX, BOX, BOX]), gt, times=[0.1] * 3)
    b = metrics.ope_sequence(np.array([BOX, [5, 0, 10, 10], [100, 0, 10, 10]]), gt)
    summary = metrics.ope_summary({"a": a, "b": b})
    np.testing.assert_allclose(summary["success_curve"], (a["success_curve"] + b["success_curve"]) / 2)
    assert summary["auc"] == pytest.approx((a["auc"] + b["auc"]) / 2)
    assert summary["precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert summary["fps"] == pytest.approx(10)  # b has no times
    assert (summary["sequences"], summary["frames"]) == (2, 6)


def test_clip_to_image_moves_x_before_clipping_w():
    # the GOT-10k toolkit clips x into [0, W] first, then w into [0, W - x]
    clipped = metrics.clip_to_image([[-5, 90, 20, 20]], (100, 100))
    np.testing.assert_array_equal(clipped, [[0, 90, 20, 10]])


def test_got10k_sequence_pools_repetitions_after_the_first_frame():
    gt = np.array([BOX] * 3)
    rep1 = np.array([[40, 40, 5, 5], BOX, BOX])              # frame 0 is never scored
    rep2 = np.array([BOX, [5, 0, 10, 10], [np.nan] * 4])
    result = metrics.got10k_sequence([rep1, rep2], gt, size=(100, 100), times=[[0.5] * 3, [0.25] * 3])
    np.testing.assert_allclose(np.sort(result["ious"]), [0, 1 / 3, 1, 1])
    assert result["ao"] == pytest.approx((2 + 1 / 3) / 4)
    assert (result["sr50"], result["sr75"]) == (0.5, 0.5)
    assert result["fps"] == pytest.approx(3)
    visible = metrics.got10k_sequence([rep1, rep2], gt, absent=[False, False, True], size=(100, 100))
    assert visible["ao"] == pytest.approx(2 / 3)
    summary = metrics.got10k_summary({"s": result, "t": visible}, times=[[0.5, 0.5]])
    assert summary["ao"] == pytest.approx((2 + 1 / 3 + 1 + 1 / 3) / 6)  # frames pooled
    assert summary["fps"] == 2 and summary["frames"] == 6
    with pytest.raises(ValueError, match="2 predicted boxes for 3 frames"):
        metrics.got10k_sequence([rep1[:2]], gt)


def test_vot_overlap_hand_cases():
    size = (100, 100)
    cases = [([10, 10, 10, 10], [15, 10, 10, 10], 1 / 3),    # pixels 10..19 vs 15..24
             ([10.5, 10, 10, 10], [15, 10, 10, 10], 1 / 3),  # 10.5 rounds to 10 (half to even)
             ([11.5, 10, 10, 10], [15, 10, 10, 10], 7 / 13),  # 11.5 rounds to 12
             ([90, 0, 10, 10], [95, 0, 10, 10], 0.5),        # the second clipped at x = 99
             ([200, 0, 10, 10], [95, 0, 10, 10], 0.0),
             ([np.nan] * 4, [95, 0, 10, 10], 0.0),            # no box
             ([np.nan] * 4, [np.nan] * 4, 1.0)]               # two empty regions
    pred, gt, expected = zip(*cases, strict=True)
    np.testing.assert_allclose(metrics.vot_overlap(np.array(pred), np.array(gt), size), expected)


T, I, F, S = metrics.VOT_TRACKED, metrics.VOT_INIT, metrics.VOT_FAILURE, metrics.VOT_SKIPPED


def test_vot_accuracy_skips_burnin_failures_and_skipped_frames():
    codes = np.array([I] + [T] * 12 + [F, S, S, S, S, I, T, T])
    overlaps = np.arange(len(codes)) / 100
    accuracy, used = metrics.vot_accuracy(codes, overlaps, burnin=10)
    assert used == 3  # frames 10, 11, 12: the second initialisation's burn-in covers the rest
    assert accuracy == pytest.approx((0.10 + 0.11 + 0.12) / 3)
    assert metrics.vot_accuracy(codes, overlaps, burnin=3)[1] == 10  # 3..12; 19, 20 in the burn-in
    assert metrics.vot_accuracy([I, F], [0, 0]) == (0.0, 0)


def test_eao_segments_and_curve():
    codes = [I, T, T, F, S, S, S, S, I, T]
    overlaps = [0, 1, 0.5, 0, 0, 0, 0, 0, 0, 0.8]
    segments = metrics.eao_segments(codes, overlaps)
    assert [(list(o), failed) for o, failed in segments] == [([0, 1, 0.5], True), ([0, 0.8], False)]
    curve = metrics.eao_curve(segments)
    # n = 1: both segments, (1 + 0.8) / 2; n = 2: only the failed one (the other ended), 0.75
    np.testing.assert_allclose(curve, [0, 0.9, 0.75])
    # a failed segment is zero-padded: (mean(0.6, 0) + mean(1, 1)) / 2 at n = 2
    curve = metrics.eao_curve([(np.array([0, 0.6]), True), (np.array([0, 1, 1]), False)])
    np.testing.assert_allclose(curve, [0, 0.8, 0.65])
    assert metrics.eao_score(curve, (1, 2)) == pytest.approx(0.725)
    with pytest.raises(ValueError, match="shorter interval"):
        metrics.eao_score(curve, (1, 3))
    assert [failed for _, failed in metrics.eao_segments([I, T, T], [0, 1, 1])] == [False]


def test_vot_summary_weights_by_length():
    gt = np.array([BOX] * 10)
    run_a = (np.array([I] + [T] * 9), np.array([[np.nan] * 4] + [BOX] * 9))
    a = metrics.vot_sequence([run_a, run_a], gt, (100, 100), burnin=2)
    assert (a["accuracy"], a["failures"], a["frames"]) == (1.0, 0.0, 10)
    b = {"accuracy": 0.5, "failures": 2.0, "frames": 30, "segments": [(np.zeros(3), True)]}
    summary = metrics.vot_summary({"a": a, "b": b}, eao_interval=(1, 2))
    assert summary["accuracy"] == pytest.approx((1.0 * 10 + 0.5 * 30) / 40)
    assert summary["robustness"] == pytest.approx(2.0 * 30 / 40)
    assert summary["reliability"] == pytest.approx(math.exp(-30 * 1.5 / 20))
    assert summary["failures"] == 2.0
    assert math.isnan(metrics.vot_summary({"a": a}, eao_interval=None)["eao"])


def test_attribute_subsets_take_sequences_with_any_flagged_frame():
    subsets = metrics.attribute_subsets({
        "s1": {"occlusion": np.array([0, 1, 0], bool), "blur": np.zeros(3, bool)},
        "s2": {"occlusion": np.ones(2, bool)}, "s3": {}})
    assert subsets == {"occlusion": ["s1", "s2"]}
