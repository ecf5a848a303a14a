"""PairDataset for SiamMask / SiamRPN++: the search crop's mask and the spatial-aware shift."""

import math

import cv2
import numpy as np
import pytest

from deepvideo.track.datasets import Sequence
from deepvideo.track.pairs import PairDataset

FRAME_W, FRAME_H = 200, 160


def masked_sequence(tmp_path, boxes, with_masks=True) -> Sequence:
    """A red rectangle (the box) on green; the mask PNG is the rectangle."""
    frames, masks = [], []
    for k, (x, y, w, h) in enumerate(boxes):
        frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
        frame[..., 1] = 80
        frame[y:y + h, x:x + w] = (255, 0, 0)
        mask = np.zeros((FRAME_H, FRAME_W), np.uint8)
        mask[y:y + h, x:x + w] = 255
        frames.append(tmp_path / f"f{k:03d}.png")
        masks.append(tmp_path / f"m{k:03d}.png")
        cv2.imwrite(str(frames[-1]), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(masks[-1]), mask)
    return Sequence("masked", frames, np.asarray(boxes, np.float64),
                    mask_paths=masks if with_masks else [])


def test_mask_is_cut_like_the_search_crop(tmp_path):
    boxes = [(60, 50, 40, 30), (150, 120, 44, 36), (70, 60, 44, 32)]   # one box near the corner
    data = PairDataset([masked_sequence(tmp_path, boxes)], pairs_per_epoch=10, shift=64, scale=0.18,
                       gray_share=0.0, seed=2, with_mask=True)
    for index in range(6):
        item = data[index]
        mask = item["mask"].numpy()
        assert mask.shape == (255, 255) and mask.dtype == np.float32
        assert 0 <= mask.min() and mask.max() <= 1
        red = item["search"][0].numpy() / 255
        x, y, w, h = item["target"].numpy()
        inner = (slice(math.ceil(y) + 1, math.floor(y + h) - 1),
                 slice(math.ceil(x) + 1, math.floor(x + w) - 1))
        assert mask[inner].min() > 0.99
        # the mask follows the red rectangle, not the replicated border outside the frame
        assert np.abs(mask - red).mean() < 0.02
        assert abs(mask.sum() - w * h) < 0.1 * w * h


def test_without_mask_the_item_is_siamfc_s():
    boxes = [(60, 50, 40, 30), (70, 60, 44, 32)]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        seq = masked_sequence(Path(tmp), boxes)
        assert set(PairDataset([seq], pairs_per_epoch=2)[0]) == {"exemplar", "search", "target"}
        plain = masked_sequence(Path(tmp), boxes, with_masks=False)
        with pytest.raises(ValueError, match="without masks: \\['masked'\\]"):
            PairDataset([plain], with_mask=True)


def test_spatial_aware_shift_spreads_the_target_uniformly(tmp_path):
    boxes = [(80, 60, 40, 40), (82, 62, 40, 40)]
    data = PairDataset([masked_sequence(tmp_path, boxes)], pairs_per_epoch=400, shift=64, scale=0.0,
                       gray_share=0.0, seed=0)
    offsets = []
    for index in range(400):
        rng, *_ = data.choice(index)
        rng.uniform(-data.scale, data.scale)
        offsets.append(rng.uniform(-64, 64, size=2))
    offsets = np.array(offsets)
    # uniform on [-64, 64]: mean 0, standard deviation 128 / sqrt(12)
    assert np.abs(offsets).max() <= 64 and np.abs(offsets.mean(axis=0)).max() < 8
    assert offsets.std(axis=0) == pytest.approx([128 / math.sqrt(12)] * 2, rel=0.1)
    # and the item's target centre is the crop centre minus that shift
    x, y, w, h = data[3]["target"].numpy()
    rng, *_ = data.choice(3)
    rng.uniform(0, 0)
    dx, dy = rng.uniform(-64, 64, size=2)
    assert (x + w / 2, y + h / 2) == pytest.approx((127.5 - dx, 127.5 - dy), abs=1e-3)
