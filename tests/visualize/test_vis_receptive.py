"""Receptive field sizes from the module graph against the textbook recursion."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepvideo.visualize.hooks import find_module
from deepvideo.visualize.receptive import receptive_field


class Chain(nn.Module):
    """conv 7x7/2 -> maxpool 3/2 -> conv 3x3 -> conv 3x3 dilation 2; two branches at the end."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 7, 2, 3)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.c2 = nn.Conv2d(4, 4, 3, 1, 1)
        self.c3 = nn.Conv2d(4, 4, 3, 1, 2, dilation=2)
        self.side = nn.Conv2d(2, 4, 5, 1, 2)  # a separate stream: not an ancestor of c3

    def forward(self, batch):
        x = batch["flow"][:, :, 0]
        s = self.side(x).mean()
        return self.c3(self.c2(self.pool(self.c1(x)))).mean((2, 3)) + s


def test_chain_matches_recursion():
    model = Chain()
    batch = {"flow": torch.randn(1, 2, 1, 64, 64)}
    # r = 1 + (7-1)*1 + (3-1)*2 + (3-1)*4 + (3-1)*2*4 = 1 + 6 + 4 + 8 + 16 = 35
    assert receptive_field(model, "c1", batch) == 7
    assert receptive_field(model, "pool", batch) == 11
    assert receptive_field(model, "c2", batch) == 19
    assert receptive_field(model, "c3", batch) == 35
    assert receptive_field(model, "logits", batch) == 64
    assert receptive_field(model, "side", batch) == 5
    with pytest.raises(KeyError, match="no layer 'c9'"):
        find_module(model, "c9")


def test_capped_at_frame_width():
    model = Chain()
    assert receptive_field(model, "c3", {"flow": torch.randn(1, 2, 1, 16, 16)}) == 16
