"""Feature npz files and the reference binary's text format."""

import numpy as np
import pytest

from deepvideo.features import Trajectories
from deepvideo.features.store import (
    load_features,
    read_reference_text,
    reference_columns,
    save_trajectories,
    write_reference_text,
)


def _tracks(n=3):
    rng = np.random.default_rng(0)
    dims = {"trajectory": 30, "hog": 96, "hof": 108, "mbhx": 96, "mbhy": 96}
    return Trajectories(rng.random((n, 10)).astype(np.float32),
                        {k: rng.random((n, d)).astype(np.float32) for k, d in dims.items()}, {"kept": n})


def test_reference_layout_is_436_columns():
    assert list(reference_columns().values()) == [10, 30, 96, 108, 96, 96]
    assert sum(reference_columns().values()) == 436


def test_reference_text_round_trip_and_errors(tmp_path):
    tr = _tracks()
    write_reference_text(tmp_path / "v.txt", tr)
    back = read_reference_text(tmp_path / "v.txt")
    np.testing.assert_allclose(back.info, tr.info, rtol=1e-6)
    for k, v in tr.descriptors.items():
        np.testing.assert_allclose(back.descriptors[k], v, rtol=1e-6)
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: 3 values, expected 436"):
        read_reference_text(tmp_path / "bad.txt")
    (tmp_path / "word.txt").write_text("\n" + "x " * 436 + "\n")
    with pytest.raises(ValueError, match=r"word.txt:2: not a line of numbers"):
        read_reference_text(tmp_path / "word.txt")


def test_npz_is_float16_and_keeps_meta(tmp_path):
    tr = _tracks()
    save_trajectories(tmp_path / "v.npz", tr, {"video": "a.mp4"})
    with np.load(tmp_path / "v.npz") as z:
        assert z["hog"].dtype == np.float16 and z["info"].dtype == np.float32
    info, desc, meta = load_features(tmp_path / "v.npz")
    np.testing.assert_array_equal(info, tr.info)
    np.testing.assert_allclose(desc["hof"], tr.descriptors["hof"], atol=1e-3)
    assert meta == {"stats": {"kept": 3}, "video": "a.mp4"}
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="other.npz: not a deepvideo features file"):
        load_features(tmp_path / "other.npz")
