"""Serve test fixtures: a tiny run folder (R(2+1)D-18 at width 8, 4 frames of 32x32), the colour scorer."""

from __future__ import annotations

import pytest
import torch
from serve_helpers import CLASSES, TINY_KWARGS, TINY_SPEC, ColourScorer


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A run folder holding a randomly initialised tiny R(2+1)D-18 with classes red/green/blue."""
    from deepvideo.serve.runs import build_model, save_run

    torch.manual_seed(0)
    model = build_model("r2plus1d_18", len(CLASSES), TINY_KWARGS, TINY_SPEC)
    folder = tmp_path_factory.mktemp("serve") / "run"
    return save_run(folder, model, CLASSES, kwargs=TINY_KWARGS, spec=TINY_SPEC)


@pytest.fixture
def colour_scorer():
    return ColourScorer()
