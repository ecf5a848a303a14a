"""MDNet's offline training items: one domain, 8 frames, 32 positives then 96 negatives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from deepvideo.track.mdnet_domains import DomainDataset


@dataclass
class Square:
    """A sequence of a bright square on grey (the parts of deepvideo.track.datasets.Sequence used)."""

    name: str
    boxes: np.ndarray
    absent: np.ndarray | None = None

    def __len__(self):
        return len(self.boxes)

    def frame(self, index: int) -> np.ndarray:
        image = np.full((120, 160, 3), 90, np.uint8)
        x, y, w, h = self.boxes[index].astype(int)
        image[y:y + h, x:x + w] = 230
        return image


def squares(n: int = 3, frames: int = 10):
    return [Square(f"s{k}", np.array([[20.0 + 3 * t + 10 * k, 30.0, 30.0, 30.0] for t in range(frames)]))
            for k in range(n)]


def test_item_layout_labels_and_paper_counts():
    data = DomainDataset(squares(), seed=0)
    item = data[(0, 0)]
    assert item["patches"].shape == (128, 3, 107, 107) and item["patches"].dtype.is_floating_point is False
    assert item["labels"].tolist() == [1] * 32 + [0] * 96
    # positives overlap the target (IoU >= 0.7): the bright square fills most of their centre
    centre = item["patches"][:, :, 40:67, 40:67].float().mean(dim=(1, 2, 3))
    assert centre[:32].min() > 200 and centre[32:].mean() < centre[:32].mean() - 50


def test_each_cycle_visits_every_domain_once_and_items_are_pure():
    data = DomainDataset(squares(4), iterations=8, seed=3)
    assert len(data) == 8 and data.num_domains == 4
    for epoch in (0, 1):
        first = [data.domain_of(i, epoch) for i in range(4)]
        second = [data.domain_of(i, epoch) for i in range(4, 8)]
        assert sorted(first) == sorted(second) == [0, 1, 2, 3]
    a, b = data[(5, 2)], data[(5, 2)]
    assert int(a["domain"]) == data.domain_of(5, 2)
    assert (a["patches"] == b["patches"]).all()


def test_holdout_split_is_disjoint():
    seqs = squares(1, frames=20)
    train = DomainDataset(seqs, holdout_every=5)
    held = DomainDataset(seqs, holdout_every=5, split="holdout")
    assert held.frames[0].tolist() == [4, 9, 14, 19]
    assert set(train.frames[0]) | set(held.frames[0]) == set(range(20))
    assert not set(train.frames[0]) & set(held.frames[0])
    with pytest.raises(ValueError, match="split 'holdout' with holdout_every=0"):
        DomainDataset(seqs, split="holdout")


def test_a_target_larger_than_the_frame_is_an_error_naming_the_sequence():
    big = Square("big", np.array([[-100.0, -100.0, 400.0, 400.0]] * 3))   # samples are clipped to the frame
    with pytest.raises(ValueError, match="sequence 'big'.*found 0/32 positives"):
        DomainDataset([big])[0]
