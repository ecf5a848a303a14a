"""Fixtures shared by the model tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn


def _assert_samples_independent(model: nn.Module, batch: dict, atol: float = 1e-5) -> torch.Tensor:
    """In eval mode a batch's outputs equal the outputs of its samples run one by one (nothing
    mixes samples; ``atol`` relative to the largest output when that exceeds 1), and two
    different samples give different outputs; returns the outputs."""
    model.eval()
    n = next(iter(batch.values())).shape[0]
    assert n >= 2, "give at least two samples"
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model({k: v[i : i + 1] for k, v in batch.items()}) for i in range(n)])
    scale = max(1.0, together.abs().max().item())  # float rounding grows with the outputs' size
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=atol * scale)
    assert not torch.equal(together[0], together[1]), "the output does not depend on the input"
    return together


@pytest.fixture
def samples_independent() -> Callable[..., torch.Tensor]:
    """``samples_independent(model, batch)``: see :func:`_assert_samples_independent`."""
    return _assert_samples_independent
