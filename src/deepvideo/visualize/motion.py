"""What a flow input shows, as the model sees it: its preprocessing applied (the temporal
stream's mean-displacement subtraction, Simonyan & Zisserman 2014), then the dominant
direction over the pixels of largest motion and the rotation (curl).

Image coordinates: ``u`` to the right, ``v`` down. The curl ``dv/dx - du/dy`` is positive for a
clockwise rotation on screen (at the right of the centre the motion points down) and
negative for a counter-clockwise one.
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.nn.inputs import remove_camera_motion
from deepvideo.nn.snippet_net import SnippetNet


def flow_preprocessing(model: nn.Module) -> str | None:
    """The camera-motion removal the model applies to its flow input (``"mean"``, ``"affine"``
    or None), read from its flow :class:`~deepvideo.nn.snippet_net.SnippetNet`."""
    for m in model.modules():
        if isinstance(m, SnippetNet) and m.modality == "flow" and m.mean_subtraction:
            return "mean" if m.mean_subtraction is True else str(m.mean_subtraction)
    return None


def seen_flow(model: nn.Module, flow: torch.Tensor) -> torch.Tensor:
    """``flow [T, 2, H, W]`` after the model's own preprocessing (unchanged when it has none)."""
    how = flow_preprocessing(model)
    if how is None:
        return flow
    return remove_camera_motion(flow.transpose(0, 1)[None], how)[0].transpose(0, 1)


def dominant_motion(flow: torch.Tensor, fraction: float = 0.1) -> tuple[float, float]:
    """Mean ``(u, v)`` of ``flow [T, 2, H, W]`` over the ``fraction`` of pixels (all fields) with
    the largest magnitude."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    u, v = flow[:, 0].reshape(-1), flow[:, 1].reshape(-1)
    mag = (u * u + v * v).sqrt()
    k = max(1, int(round(fraction * mag.numel())))
    top = mag.topk(k).indices
    return float(u[top].mean()), float(v[top].mean())


def mean_curl(flow: torch.Tensor, fraction: float = 1.0) -> float:
    """Mean curl ``dv/dx - du/dy`` of ``flow [T, 2, H, W]`` (central differences, interior
    pixels), over the ``fraction`` of them with the largest flow magnitude (1: all)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    dv_dx = (flow[:, 1, 1:-1, 2:] - flow[:, 1, 1:-1, :-2]) / 2
    du_dy = (flow[:, 0, 2:, 1:-1] - flow[:, 0, :-2, 1:-1]) / 2
    curl = (dv_dx - du_dy).reshape(-1)
    mag = flow[:, :, 1:-1, 1:-1].pow(2).sum(1).sqrt().reshape(-1)
    k = max(1, int(round(fraction * mag.numel())))
    return float(curl[mag.topk(k).indices].mean())
