"""SiamFC training pairs: crop geometry, gap, grayscale share, determinism, errors."""

import inspect
import math

import cv2
import numpy as np
import pytest

from deepvideo.track.datasets import Sequence
from deepvideo.track.pairs import PairDataset, context_side

FRAME_W, FRAME_H = 200, 160


def rectangle_sequence(tmp_path, boxes, absent=None, name="rect") -> Sequence:
    """Frames with a red rectangle (the box, whole pixels) on a dark green background, as PNG."""
    paths = []
    for k, (x, y, w, h) in enumerate(boxes):
        frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
        frame[..., 1] = 80
        frame[y:y + h, x:x + w] = (255, 0, 0)
        path = tmp_path / f"{name}{k:04d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return Sequence(name, paths, np.asarray(boxes, dtype=np.float64),
                    None if absent is None else np.asarray(absent, dtype=bool))


def test_paper_numbers():
    defaults = {k: v.default for k, v in inspect.signature(PairDataset).parameters.items()}
    assert (defaults["exemplar_size"], defaults["search_size"]) == (127, 255)
    assert defaults["context"] == 0.5 and defaults["max_gap"] == 100
    # SiamFC: p = (w + h) / 4, side sqrt((w + 2p)(h + 2p))
    w, h = 40.0, 20.0
    p = (w + h) / 4
    assert context_side(w, h) == pytest.approx(math.sqrt((w + 2 * p) * (h + 2 * p)))
    assert context_side(64, 64) == pytest.approx(128.0)


def test_target_lands_where_target_says(tmp_path):
    boxes = [(60, 50, 40, 30), (80, 70, 36, 28), (70, 60, 44, 32)]
    data = PairDataset([rectangle_sequence(tmp_path, boxes)], pairs_per_epoch=20, shift=16,
                       scale=0.1, gray_share=0.0, seed=1)
    targets = []
    for index in range(6):
        item = data[(index, 2)]
        _, _, first, second = data.choice((index, 2))
        assert item["exemplar"].shape == (3, 127, 127) and item["search"].shape == (3, 255, 255)
        x, y, w, h = item["target"].numpy()
        targets.append((x, y))
        red = item["search"][0].numpy()
        inner = red[math.ceil(y) + 1:math.floor(y + h) - 1, math.ceil(x) + 1:math.floor(x + w) - 1]
        assert inner.min() > 250
        outside = np.ones_like(red, dtype=bool)
        rows = slice(max(0, math.floor(y) - 1), math.ceil(y + h) + 1)
        outside[rows, max(0, math.floor(x) - 1):math.ceil(x + w) + 1] = False
        assert red[outside].max() < 5
        # the search crop's scale: the box is w * 255 / (s * 255/127 * (1 +- 0.1))
        bw, bh = boxes[second][2:]
        nominal = 127 / context_side(bw, bh)
        assert nominal / 1.1 - 1e-4 <= w / bw <= nominal / 0.9 + 1e-4
        # the exemplar is centred, scaled by 127 / s
        ew, eh = boxes[first][2:]
        cols = np.flatnonzero(item["exemplar"][0].numpy()[63] > 128)
        assert cols.size == pytest.approx(ew * 127 / context_side(ew, eh), abs=1.5)
        assert (cols[0] + cols[-1] + 1) / 2 == pytest.approx(63.5, abs=1)
    assert len(set(targets)) > 1  # jittered: not always at the centre


def test_gap_and_visibility_respected(tmp_path):
    boxes = [(60 + k, 50, 30, 30) for k in range(30)]
    absent = [k % 4 == 0 for k in range(30)]
    data = PairDataset([rectangle_sequence(tmp_path, boxes, absent)], max_gap=3, pairs_per_epoch=300)
    gaps = []
    for index in range(300):
        _, _, first, second = data.choice(index)
        assert not absent[first] and not absent[second]
        gaps.append(abs(second - first))
    assert 1 <= min(gaps) and max(gaps) == 3


def test_gray_share(tmp_path):
    data = PairDataset([rectangle_sequence(tmp_path, [(60, 50, 40, 30)] * 2)], exemplar_size=15,
                       search_size=31, pairs_per_epoch=400, seed=3)
    gray = []
    for index in range(400):
        search = data[index]["search"]
        gray.append(bool((search[0] == search[1]).all() and (search[1] == search[2]).all()))
    assert abs(np.mean(gray) - 0.25) < 0.06


def test_deterministic_per_key(tmp_path):
    boxes = [(60 + 2 * k, 50, 30, 30) for k in range(10)]
    data = PairDataset([rectangle_sequence(tmp_path, boxes)], pairs_per_epoch=10, seed=7)
    a, b = data[(4, 1)], data[(4, 1)]
    assert all((a[k] == b[k]).all() for k in a)
    assert not (a["target"] == data[(4, 2)]["target"]).all()
    assert (data[4]["target"] == data[(4, 0)]["target"]).all()


def test_sequence_without_two_visible_frames_is_named(tmp_path):
    good = rectangle_sequence(tmp_path, [(60, 50, 30, 30)] * 3, name="good")
    bad = rectangle_sequence(tmp_path, [(60, 50, 30, 30)] * 3, absent=[True, False, True], name="lonely")
    with pytest.raises(ValueError, match="lonely.*visible in 1 of 3"):
        PairDataset([good, bad])


def test_pairs_from_the_synthetic_set_through_a_loader(tmp_path):
    import torch

    from deepvideo.data.samplers import EpochSampler
    from deepvideo.track.datasets import load_dataset
    from deepvideo.track.synth import render_tracking_set

    render_tracking_set(tmp_path / "set", num_sequences=2, frames=8, size=(64, 48), seed=0,
                        progress=False)
    data = PairDataset(load_dataset(tmp_path / "set"), pairs_per_epoch=4, shift=8, scale=0.05)
    sampler = EpochSampler(data, seed=0)
    sampler.set_epoch(3)
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=4, sampler=sampler)))
    assert batch["exemplar"].shape == (4, 3, 127, 127) and batch["search"].shape == (4, 3, 255, 255)
    assert batch["exemplar"].dtype == torch.float32
    assert 0 <= batch["search"].min() <= batch["search"].max() <= 255
    centers = batch["target"][:, :2] + batch["target"][:, 2:] / 2
    assert (centers - 127.5).abs().max() <= 8 + 1e-3  # shifted by at most `shift` output pixels
