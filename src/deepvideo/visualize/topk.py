"""The clips of a dataset that most excite one unit (channel ``c`` of layer ``l``), with the
unit's spatiotemporal heat map on each (Grad-CAM of the unit at its own layer: ``ReLU(A_c)``
upsampled over the clip, :mod:`deepvideo.visualize.gradcam`).

A clip's excitation is the channel's mean over its positions (the class score for
``"logits"``). Batches are dicts of model inputs ``[N, C, T, H, W]`` plus an optional
``index`` ``[N]`` naming each clip (its position in the dataset); only the current top ``k``
clips are kept in memory.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from deepvideo.visualize.gradcam import gradcam
from deepvideo.visualize.hooks import LOGITS, frozen, layer_output


@dataclass
class TopClip:
    """One of the top clips: dataset index, excitation, its inputs (a batch of one) and heat."""

    index: int
    score: float
    batch: dict
    heat: torch.Tensor | None = None  # [T, H, W] in [0, 1]


def unit_excitation(act: torch.Tensor, channel: int) -> torch.Tensor:
    """Per-sample mean of ``channel`` over its positions (any ``[N, C, ...]`` activation)."""
    if not 0 <= channel < act.shape[1]:
        raise IndexError(f"channel {channel} out of range: the layer has {act.shape[1]} channels")
    return act[:, channel].reshape(act.shape[0], -1).mean(1)


@torch.no_grad()
def top_clips(
    model: nn.Module,
    layer: str,
    channel: int,
    batches: Iterable[dict],
    k: int = 5,
    on_batch: Callable[[int], None] | None = None,
) -> list[TopClip]:
    """The ``k`` clips with the highest excitation of the unit, best first."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    heap: list[tuple[float, int, TopClip]] = []
    seen = 0
    with frozen(model):
        for batch in batches:
            inputs = {key: v for key, v in batch.items() if key in ("rgb", "flow")}
            if not inputs:
                raise ValueError(f"a batch holds no model inputs (rgb/flow); keys: {sorted(batch)}")
            n = next(iter(inputs.values())).shape[0]
            act = layer_output(model, layer, inputs)
            if layer != LOGITS and act.shape[0] != n:  # 2D snippet nets: [N*K, C, ...]
                act = act.reshape(n, -1, *act.shape[2:]).transpose(1, 2)
            scores = unit_excitation(act, channel)
            index = batch.get("index", torch.arange(seen, seen + n))
            for i in range(n):
                clip = TopClip(
                    int(index[i]), float(scores[i]), {key: v[i : i + 1].clone() for key, v in inputs.items()}
                )
                item = (clip.score, -clip.index, clip)
                if len(heap) < k:
                    heapq.heappush(heap, item)
                elif item[:2] > heap[0][:2]:
                    heapq.heapreplace(heap, item)
            seen += n
            if on_batch is not None:
                on_batch(n)
    if not heap:
        raise ValueError("no clips to rank: the dataset gave no batches")
    return [c for _, _, c in sorted(heap, key=lambda t: t[:2], reverse=True)]


def add_heat(
    model: nn.Module,
    layer: str,
    channel: int,
    clips: list[TopClip],
    stream: str,
    cam_layer: str | None = None,
) -> None:
    """Fill each clip's ``heat`` ``[T, H, W]`` over ``stream``'s frames: the unit's own map, or
    for ``"logits"`` the class Grad-CAM of class ``channel`` at the conv layer ``cam_layer``."""
    if layer == LOGITS and cam_layer is None:
        raise ValueError("heat maps of a class unit ('logits') need a conv layer: give cam_layer")
    for clip in clips:
        if stream not in clip.batch:
            raise KeyError(f"the clips hold no {stream!r} input (they have {sorted(clip.batch)})")
        size = tuple(clip.batch[stream].shape[2:])
        if layer == LOGITS:
            heat, _ = gradcam(model, clip.batch, cam_layer, channel, size=size)
        else:
            heat, _ = gradcam(model, clip.batch, layer, ("channel", channel), size=size)
        clip.heat = heat[0]
