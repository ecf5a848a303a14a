"""Metrics: properties (hypothesis), hand-computed cases and agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from deepvideo.engine import metrics as M

FAST = settings(max_examples=60, deadline=None)


@st.composite
def scores_labels(draw, max_n=30, max_k=12, ties=True):
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(1, max_k))
    elems = st.integers(-3, 3).map(float) if ties else st.floats(-10, 10, allow_nan=False, width=32)
    scores = draw(hnp.arrays(np.float64, (n, k), elements=elems))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return scores, labels


@FAST
@given(scores_labels())
def test_hit_at_k_monotone_in_k_and_one_at_num_classes(data):
    scores, labels = data
    k_total = scores.shape[1]
    hits = [M.hit_at_k(scores, labels, k) for k in range(1, k_total + 2)]
    assert all(a <= b for a, b in zip(hits, hits[1:], strict=False))
    assert hits[k_total - 1] == 1.0 and hits[-1] == 1.0


@FAST
@given(scores_labels())
def test_hit_at_1_equals_argmax_accuracy(data):
    scores, labels = data
    assert M.hit_at_k(scores, labels, 1) == pytest.approx((scores.argmax(1) == labels).mean())


@FAST
@given(scores_labels())
def test_confusion_rows_sum_to_class_counts(data):
    scores, labels = data
    k = scores.shape[1]
    cm = M.confusion_matrix(M.predictions(scores), labels, k)
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(labels, minlength=k))
    np.testing.assert_array_equal(cm.sum(axis=0), np.bincount(scores.argmax(1), minlength=k))
    assert np.trace(cm) == (scores.argmax(1) == labels).sum()


@FAST
@given(st.integers(1, 8), st.integers(1, 6), st.randoms(use_true_random=False))
def test_mean_class_accuracy_equals_accuracy_on_balanced_data(k, per_class, rnd):
    rng = np.random.default_rng(rnd.randint(0, 2**31))
    labels = np.repeat(np.arange(k), per_class)
    scores = rng.normal(size=(labels.size, k))
    cm = M.confusion_matrix(M.predictions(scores), labels, k)
    assert M.mean_class_accuracy(cm) == pytest.approx(M.hit_at_k(scores, labels, 1))


@FAST
@given(scores_labels())
def test_rank_is_invariant_to_monotone_transform(data):
    scores, labels = data
    np.testing.assert_array_equal(M.label_rank(scores, labels), M.label_rank(3 * scores + 7, labels))


@FAST
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 6)),
                  elements=st.floats(-20, 20, allow_nan=False)))
def test_aggregation_bounds_and_single_view_identity(v):
    mean = M.aggregate_views(v, "mean")
    mx = M.aggregate_views(v, "max")
    soft = M.aggregate_views(v, "softmax")
    assert np.all(mean <= mx + 1e-12) and np.all(mean >= v.min(axis=1) - 1e-12)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)
    np.testing.assert_allclose(M.aggregate_views(v[:, :1], "mean"), v[:, 0])
    np.testing.assert_allclose(M.aggregate_views(v[:, :1], "softmax"), M.softmax(v[:, 0]))


def test_against_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    for n, k in [(50, 5), (200, 20), (7, 3)]:
        scores = rng.normal(size=(n, k))
        labels = rng.integers(0, k, size=n)
        labels[:k] = np.arange(k)  # every class present, so sklearn sees all labels
        for top in range(1, min(4, k)):
            ref = skm.top_k_accuracy_score(labels, scores, k=top, labels=np.arange(k))
            assert M.hit_at_k(scores, labels, top) == pytest.approx(ref)
        pred = M.predictions(scores)
        cm = M.confusion_matrix(pred, labels, k)
        np.testing.assert_array_equal(cm, skm.confusion_matrix(labels, pred, labels=np.arange(k)))
        assert M.mean_class_accuracy(cm) == pytest.approx(skm.balanced_accuracy_score(labels, pred))
        np.testing.assert_allclose(M.per_class_accuracy(cm),
                                   skm.recall_score(labels, pred, average=None, labels=np.arange(k)))


def test_hand_computed_case_and_ties():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.4, 0.1], [0.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    labels = np.array([1, 1, 2, 0])
    np.testing.assert_array_equal(M.label_rank(scores, labels), [0, 1, 2, 2])
    assert M.hit_at_k(scores, labels, 1) == 0.25
    assert M.hit_at_k(scores, labels, 2) == 0.5
    # constant scores predict class 0: no credit for a tie
    assert M.predictions(scores)[2] == 0
    cm = M.confusion_matrix(M.predictions(scores), labels, 3)
    np.testing.assert_array_equal(cm, [[0, 0, 1], [1, 1, 0], [1, 0, 0]])
    acc = M.per_class_accuracy(cm)
    np.testing.assert_allclose(acc, [0.0, 0.5, 0.0])
    assert M.mean_class_accuracy(cm) == pytest.approx(1 / 6)


def test_per_class_accuracy_nan_for_absent_class():
    cm = M.confusion_matrix([0, 1, 1], [0, 1, 0], 3)
    acc = M.per_class_accuracy(cm)
    assert np.isnan(acc[2]) and acc[0] == 0.5 and acc[1] == 1.0
    assert M.mean_class_accuracy(cm) == pytest.approx(0.75)


def test_video_metrics_clip_vs_video_levels():
    v = np.array([
        [[0.0, 1.0], [2.0, 0.0], [2.0, 0.0]],   # label 0: clip 2/3 right, video mean right
        [[0.0, 3.0], [1.0, 0.0], [1.0, 0.0]],   # label 1: clip 1/3, mean [0.67, 1.0] right
    ])
    out = M.video_metrics(v, [0, 1], "mean", ks=(1,))
    assert out["clip_hit@1"] == pytest.approx(3 / 6)
    assert out["video_hit@1"] == 1.0
    assert out["num_views"] == 3 and out["num_videos"] == 2
    np.testing.assert_array_equal(out["confusion"], [[1, 0], [0, 1]])
    soft = M.video_metrics(v, [0, 1], "softmax", ks=(1,))
    assert soft["video_hit@1"] == 0.5  # softmax averaging lets two mild views outvote one sure view
    assert M.scalar_metrics(out)["video_hit@1"] == 1.0 and "confusion" not in M.scalar_metrics(out)


@pytest.mark.parametrize("bad, match", [
    (lambda: M.hit_at_k(np.zeros((2, 3)), [0, 3]), "labels must lie"),
    (lambda: M.hit_at_k(np.zeros((2, 3)), [0]), r"labels must be \[N\]"),
    (lambda: M.hit_at_k(np.array([[np.nan, 1.0]]), [0]), "NaN"),
    (lambda: M.hit_at_k(np.zeros((2, 3)), [0, 1], k=0), "k must be"),
    (lambda: M.aggregate_views(np.zeros((2, 2, 2)), "median"), "unknown aggregation"),
    (lambda: M.confusion_matrix([0, 5], [0, 1], 3), "predictions must lie"),
])
def test_bad_input_raises_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()
