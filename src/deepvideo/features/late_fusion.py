"""The "+ IDT" rows: late fusion of ConvNet and hand-crafted scores.

As in the two-stream + IDT tables (e.g. Feichtenhofer et al. 2016; Wang, Qiao & Tang 2015):
each model's class scores are L2-normalised per video and averaged with weights; the weights
are chosen on a validation split (grid search for the best accuracy, the first best in grid
order, so ties keep the smaller weights of the later models) and then applied to the test split.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def l2_rows(scores: np.ndarray) -> np.ndarray:
    """Every row divided by its L2 norm (zero rows stay zero)."""
    s = np.asarray(scores, np.float64)
    norm = np.linalg.norm(s, axis=1, keepdims=True)
    return s / np.where(norm > 0, norm, 1.0)


def l2_average(score_arrays: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted average of the L2-normalised ``[N, K]`` score arrays."""
    w = [1.0] * len(score_arrays) if weights is None else [float(x) for x in weights]
    if len(w) != len(score_arrays) or not score_arrays:
        raise ValueError(f"{len(w)} weights for {len(score_arrays)} score arrays")
    if min(w) < 0 or sum(w) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {w}")
    return sum(x * l2_rows(s) for x, s in zip(w, score_arrays, strict=True)) / sum(w)


def choose_weights(val_arrays: Sequence[np.ndarray], labels: np.ndarray,
                   grid: Sequence[float] = WEIGHT_GRID) -> tuple[list[float], float]:
    """Weights (the first model's fixed at 1) maximising validation accuracy; (weights, accuracy)."""
    labels = np.asarray(labels)
    best: tuple[list[float], float] = ([1.0] * len(val_arrays), -1.0)
    for rest in itertools.product(grid, repeat=len(val_arrays) - 1):
        w = [1.0, *rest]
        acc = float((l2_average(val_arrays, w).argmax(axis=1) == labels).mean())
        if acc > best[1]:
            best = (w, acc)
    return best
