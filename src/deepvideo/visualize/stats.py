"""``a_hat_{l,c}``: the largest activation of every channel of a layer over a dataset, measured
once and cached in a JSON file (the normaliser of activation maximisation, thesis ch. 6)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from deepvideo.io.atomic import atomic_write_json
from deepvideo.visualize.hooks import frozen, layer_output


@torch.no_grad()
def max_activations(model: nn.Module, layer: str, batches: Iterable[dict]) -> torch.Tensor:
    """Per-channel maximum ``[C]`` of ``layer`` over every position of every batch."""
    best: torch.Tensor | None = None
    with frozen(model):
        for batch in batches:
            a = layer_output(model, layer, batch)
            m = a.transpose(0, 1).reshape(a.shape[1], -1).amax(1)
            best = m if best is None else torch.maximum(best, m)
    if best is None:
        raise ValueError("no batches to measure the maximum activations on")
    return best


def cached_max_activations(
    cache: str | Path, model: nn.Module, layer: str, batches: Iterable[dict] | None
) -> torch.Tensor:
    """``a_hat`` of ``layer`` from ``cache`` (a JSON ``{layer: [values]}``), measured on
    ``batches`` and added to the file when the layer is not in it yet."""
    path = Path(cache)
    table: dict = {}
    if path.is_file():
        try:
            table = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path}: line {err.lineno}: not a JSON activation-maximum cache ({err.msg}); "
                "delete it to measure again"
            ) from None
        if not isinstance(table, dict):
            raise ValueError(f"{path}: expected a JSON object {{layer: [maxima]}}")
    if layer in table:
        return torch.tensor(table[layer], dtype=torch.float32)
    if batches is None:
        raise ValueError(f"{path}: has no maxima for layer {layer!r} and no data was given to measure them")
    values = max_activations(model, layer, batches)
    table[layer] = [float(v) for v in values]
    atomic_write_json(path, table)
    return values
