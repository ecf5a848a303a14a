"""+IDT late fusion helpers and the dataset-level encode helpers."""

import numpy as np
import pytest

from deepvideo.features import late_fusion as lf
from deepvideo.features import videos


def test_l2_average_by_formula():
    a, b = np.array([[3.0, 4.0]]), np.array([[0.0, 2.0]])
    np.testing.assert_allclose(lf.l2_average([a, b], [1, 3]), [[(0.6 + 0) / 4, (0.8 + 3) / 4]])
    with pytest.raises(ValueError, match="weights must be >= 0"):
        lf.l2_average([a, b], [1, -1])


def test_choose_weights_on_validation():
    labels = np.array([0, 1, 1, 0])
    convnet = np.array([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0], [1.0, 0.0]])   # misses video 1
    idt = np.array([[0.2, 0.1], [0.0, 1.0], [0.3, 0.4], [0.5, 0.6]])       # misses video 3
    w, acc = lf.choose_weights([convnet, idt], labels)
    assert acc == 1.0 and w[0] == 1.0 and 0 < w[1]
    fused = lf.l2_average([convnet, idt], w)
    assert (fused.argmax(1) == labels).all()
    assert lf.choose_weights([convnet, convnet], labels)[0] == [1.0, 0.0]  # ties keep the first (0)


def test_id_lists_classes_and_selection(tmp_path):
    (tmp_path / "train.txt").write_text("A/v1.avi 1\n\nB/v2.avi 2\n")
    assert videos.read_id_list(tmp_path / "train.txt") == ["A/v1.avi", "B/v2.avi"]
    assert videos.class_of("A/v1.avi") == "A"
    with pytest.raises(ValueError, match="no class folder"):
        videos.class_of("v1.avi")
    x = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(videos.select(["a", "b", "c"], x, ["c", "a"], "f"), [[4, 5], [0, 1]])
    with pytest.raises(ValueError, match="f: 1 listed video"):
        videos.select(["a"], x[:1], ["z"], "f")
    videos.save_vectors(tmp_path / "v.npz", ["a", "b"], x[:2], {"k": 1})
    ids, vec, meta = videos.load_vectors(tmp_path / "v.npz")
    assert ids == ["a", "b"] and meta == {"k": 1}
    np.testing.assert_array_equal(vec, x[:2])
