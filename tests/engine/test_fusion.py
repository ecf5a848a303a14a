"""Score files and late fusion: round trips, alignment, weighted averaging, SVM on scores."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.engine import fusion as F
from deepvideo.engine.metrics import hit_at_k, softmax


def _set(ids, labels, scores, classes=("a", "b", "c"), source=""):
    scores = np.asarray(scores, dtype=np.float32)
    return F.ScoreSet(list(ids), np.asarray(labels), scores[:, None, :], scores, list(classes),
                      source=source)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    views = rng.normal(size=(4, 3, 5)).astype(np.float32)
    s = F.ScoreSet([f"v/{i}.mp4" for i in range(4)], np.array([0, 1, 4, 2]), views, views.mean(1),
                   ["c0", "c1", "c2", "c3", "c4"], "mean", {"model": "tiny", "views": 3})
    path = F.save_scores(tmp_path / "run" / "scores.npz", s)
    assert not list(path.parent.glob("*.tmp"))
    back = F.load_scores(path.parent)  # a run folder means its scores.npz
    assert back.video_ids == s.video_ids and back.class_names == s.class_names
    np.testing.assert_array_equal(back.labels, s.labels)
    np.testing.assert_array_equal(back.view_logits, views)
    np.testing.assert_allclose(back.scores, views.mean(1))
    assert back.meta == {"model": "tiny", "views": 3} and back.source == str(path)


def test_load_pt_file(tmp_path):
    torch = pytest.importorskip("torch")
    v = torch.randn(2, 1, 3)
    torch.save({"video_ids": ["x", "y"], "labels": torch.tensor([0, 2]), "view_logits": v,
                "scores": v[:, 0], "class_names": ["a", "b", "c"]}, tmp_path / "s.pt")
    s = F.load_scores(tmp_path / "s.pt")
    assert s.video_ids == ["x", "y"] and s.num_classes == 3


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        F.load_scores(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"bad\.npz.*lacks video_ids"):
        F.load_scores(bad)
    with pytest.raises(ValueError, match="inconsistent scores"):
        F.ScoreSet(["a"], np.array([0, 1]), np.zeros((1, 1, 2)), np.zeros((1, 2)), ["x", "y"])


def test_align_reorders_and_checks():
    a = _set(["x", "y", "z"], [0, 1, 2], np.eye(3), source="a.npz")
    b = _set(["z", "x", "y"], [2, 0, 1], [[0, 0, 9], [9, 0, 0], [0, 9, 0]], source="b.npz")
    _, b2 = F.align([a, b])
    assert b2.video_ids == a.video_ids
    np.testing.assert_array_equal(b2.scores.argmax(1), [0, 1, 2])
    with pytest.raises(ValueError, match="b.npz: labels differ"):
        F.align([a, _set(["x", "y", "z"], [0, 1, 1], np.eye(3), source="b.npz")])
    with pytest.raises(ValueError, match="b.npz: videos differ"):
        F.align([a, _set(["x", "y", "w"], [0, 1, 2], np.eye(3), source="b.npz")])
    with pytest.raises(ValueError, match="class names differ"):
        F.align([a, _set(["x", "y", "z"], [0, 1, 2], np.eye(3), ("a", "b", "d"), "b.npz")])


def test_weighted_fusion_values():
    s1 = np.array([[2.0, 0.0], [0.0, 1.0]])
    s2 = np.array([[0.0, 4.0], [1.0, 0.0]])
    np.testing.assert_allclose(F.weighted_fusion([s1, s2], [1, 3], "logits"), (s1 + 3 * s2) / 4)
    soft = F.weighted_fusion([s1, s2], [1, 1], "softmax")
    np.testing.assert_allclose(soft, (softmax(s1) + softmax(s2)) / 2)
    np.testing.assert_allclose(soft.sum(1), 1.0)
    with pytest.raises(ValueError, match="2 weights given for 1"):
        F.weighted_fusion([s1], [1, 2])
    with pytest.raises(ValueError, match="unknown score space"):
        F.weighted_fusion([s1], space="probit")


def test_weighted_fusion_of_complementary_streams_beats_each():
    # stream A is right on the first half, stream B on the second half, each confidently
    rng = np.random.default_rng(1)
    n, k = 40, 4
    labels = rng.integers(0, k, n)
    a, b = rng.normal(0, 0.1, (n, k)), rng.normal(0, 0.1, (n, k))
    a[np.arange(n // 2), labels[: n // 2]] += 3.0
    b[np.arange(n // 2, n), labels[n // 2:]] += 3.0
    fused = F.weighted_fusion([a, b], [1, 1], "softmax")
    assert hit_at_k(fused, labels) == 1.0
    assert hit_at_k(a, labels) < 0.8 and hit_at_k(b, labels) < 0.8


def test_svm_features_are_l2_normalised_per_model():
    rng = np.random.default_rng(2)
    x = F.svm_features([rng.normal(size=(5, 3)), rng.normal(size=(5, 3))])
    assert x.shape == (5, 6)
    np.testing.assert_allclose(np.linalg.norm(x[:, :3], axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(x[:, 3:], axis=1), 1.0)


def test_svm_fusion_learns_to_trust_the_informative_stream():
    # stream A is noise, stream B is informative but its best class is shifted by one:
    # averaging cannot fix it, a linear SVM on the stacked scores can.
    rng = np.random.default_rng(3)
    k = 3

    def make(n):
        y = np.repeat(np.arange(k), n // k)
        a = rng.normal(size=(y.size, k))
        b = rng.normal(0, 0.2, (y.size, k))
        b[np.arange(y.size), (y + 1) % k] += 4.0
        return y, a, b

    y_tr, a_tr, b_tr = make(60)
    y_te, a_te, b_te = make(30)
    avg = F.weighted_fusion([a_te, b_te])
    svm = F.svm_fusion([a_tr, b_tr], y_tr, [a_te, b_te], k)
    assert svm.shape == (30, k)
    assert hit_at_k(avg, y_te) < 0.5
    assert hit_at_k(svm, y_te) > 0.9


def test_svm_fusion_binary_and_missing_class():
    rng = np.random.default_rng(4)
    y = np.array([0, 0, 0, 2, 2, 2])
    s = rng.normal(0, 0.1, (6, 3))
    s[np.arange(6), y] += 2
    out = F.svm_fusion([s], y, [s], 3)
    assert out.shape == (6, 3)
    assert np.all(out[:, 1] < out[:, [0, 2]].min(axis=1))  # class 1 never seen: never predicted
    np.testing.assert_array_equal(out.argmax(1), y)


def test_fuse_sets_records_method(tmp_path):
    a = _set(["x", "y"], [0, 1], [[1, 0, 0], [0, 1, 0]], source="a.npz")
    b = _set(["y", "x"], [1, 0], [[0, 0, 1], [0, 0, 1]], source="b.npz")
    fused = F.fuse_sets([a, b], [3, 1], "logits")
    np.testing.assert_allclose(fused.scores, [[0.75, 0, 0.25], [0, 0.75, 0.25]])
    assert fused.meta["weights"] == [3.0, 1.0] and fused.meta["inputs"] == ["a.npz", "b.npz"]
    F.save_scores(tmp_path / "f.npz", fused)
    assert F.load_scores(tmp_path / "f.npz").meta["fusion"] == "weighted"
