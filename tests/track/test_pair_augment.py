"""pysot's template / search augmentation: colour offsets, cross blur, the exemplar's shift and
scale jitter (values of pysot's SiamRPN++ / SiamMask experiment files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_pairs import rectangle_sequence

from deepvideo.track import pair_augment
from deepvideo.track.pair_augment import blur_kernel, color_offset, photometric
from deepvideo.track.pairs import PairDataset


def test_color_offset_is_the_rgbvar_matrix_times_a_normal_draw_in_rgb_order():
    n = np.random.default_rng(3).standard_normal(3).astype(np.float32)
    expected = (pair_augment.RGB_VAR_BGR @ n)[::-1]
    assert np.allclose(color_offset(np.random.default_rng(3)), expected)
    assert pair_augment.RGB_VAR_BGR[2].tolist() == pytest.approx([4.64467907, 4.73710203, 4.88324118])


def test_blur_kernel_is_a_cross_summing_to_one():
    for seed in range(5):
        kernel = blur_kernel(np.random.default_rng(seed))
        k = kernel.shape[0]
        assert k % 2 == 1 and 5 <= k <= 45 and kernel.sum() == pytest.approx(1.0)
        c = k // 2
        off = kernel.copy()
        off[:, c] = 0
        off[c, :] = 0
        assert not off.any()                                    # only the middle row and column
        w = kernel[0, c] * k                                    # the column weight
        assert kernel[c, 0] == pytest.approx((1 - w) / k) and kernel[c, c] == pytest.approx(1 / k)


def test_photometric_off_draws_nothing_and_on_subtracts_the_offset():
    image = np.full((6, 6, 3), 100.0, np.float32)
    rng = np.random.default_rng(0)
    assert np.array_equal(photometric(image, rng, 0.0, 0.0), image)
    assert rng.random() == np.random.default_rng(0).random()
    draws = np.random.default_rng(1)
    draws.random()
    offset = color_offset(draws)
    assert np.allclose(photometric(image, np.random.default_rng(1), 1.0, 0.0), image - offset)


def test_exemplar_jitter_moves_only_the_exemplar(tmp_path):
    boxes = [(60, 50, 40, 30), (80, 70, 36, 28), (70, 60, 44, 32)]
    seqs = [rectangle_sequence(tmp_path, boxes)]
    plain = PairDataset(seqs, pairs_per_epoch=8, gray_share=0.0, seed=1)
    jittered = PairDataset(seqs, pairs_per_epoch=8, gray_share=0.0, seed=1, exemplar_shift=4,
                           exemplar_scale=0.05)
    moved = []
    for index in range(4):
        a, b = plain[index], jittered[index]
        assert torch.equal(a["search"], b["search"]) and torch.equal(a["target"], b["target"])
        red = lambda e: np.argwhere(e["exemplar"][0].numpy() > 128).mean(axis=0)   # noqa: E731
        shift = red(b) - red(a)
        assert np.abs(shift).max() <= 4 + 0.05 * 63.5 + 1.5      # shift + scale about the middle
        moved.append(np.abs(shift).max())
    assert max(moved) > 0.5
    with pytest.raises(ValueError, match="color"):
        PairDataset(seqs, color=1.5)


def test_color_and_blur_change_both_crops_reproducibly(tmp_path):
    seqs = [rectangle_sequence(tmp_path, [(60, 50, 40, 30), (80, 70, 36, 28)])]
    data = PairDataset(seqs, pairs_per_epoch=4, gray_share=0.0, seed=2, color=1.0, search_blur=1.0)
    plain = PairDataset(seqs, pairs_per_epoch=4, gray_share=0.0, seed=2)
    a, b = data[0], plain[0]
    assert not torch.equal(a["exemplar"], b["exemplar"]) and not torch.equal(a["search"], b["search"])
    assert torch.equal(a["target"], b["target"])
    assert torch.equal(data[0]["search"], a["search"])          # a pure function of the key
