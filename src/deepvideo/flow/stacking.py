"""Inputs of a temporal (motion) stream built from L flow fields (Simonyan & Zisserman 2014).

For a snippet starting at frame τ with fields ``d_τ .. d_{τ+L-1}`` (``[L,2,H,W]``, field t =
frame t -> t+1, (u, v) = (d^x, d^y)) the paper's inputs of ``2L`` channels are:

- optical-flow stacking: ``I(u,v,2k-1) = d^x_{τ+k-1}(u,v)``, ``I(u,v,2k) = d^y_{τ+k-1}(u,v)``
  (k = 1..L, 1-based channels): the displacement at the same pixel in every field;
- trajectory stacking: the displacement sampled along the motion trajectory from
  ``p_1 = (u,v)``: ``p_k = p_{k-1} + d_{τ+k-2}(p_{k-1})``, ``I(u,v,2k-1) = d^x_{τ+k-1}(p_k)``
  (bilinear sampling, border values outside the frame);
- bidirectional stacking: L/2 forward fields followed by L/2 backward fields. Here the
  backward fields are given by the caller, or computed by :func:`backward_flow` as the flow
  from frame t+1 to frame t (the same method run on the swapped pair); the paper takes the
  forward fields for frames τ..τ+L/2 and backward ones for frames τ-L/2..τ;
- mean flow subtraction: subtracting the mean displacement (a crude camera-motion
  compensation), per field or over the whole stack.

All functions accept leading batch dimensions: ``[..., L, 2, H, W]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(fields: torch.Tensor) -> torch.Tensor:
    fields = torch.as_tensor(fields)
    if fields.ndim < 4 or fields.shape[-3] != 2:
        raise ValueError(f"flow fields must be [..., L, 2, H, W], got shape {tuple(fields.shape)}")
    return fields


def stack_flow(fields: torch.Tensor) -> torch.Tensor:
    """Optical-flow stacking ``[..., L, 2, H, W]`` -> ``[..., 2L, H, W]`` (u_1, v_1, u_2, v_2, ...)."""
    fields = _check(fields)
    return fields.reshape(*fields.shape[:-4], 2 * fields.shape[-4], *fields.shape[-2:])


def _bilinear(field: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Sample ``field [B,2,H,W]`` at pixel positions ``xs, ys [B,H,W]`` -> [B,2,H,W]."""
    h, w = field.shape[-2:]
    grid = torch.stack([xs * (2.0 / max(w - 1, 1)) - 1.0, ys * (2.0 / max(h - 1, 1)) - 1.0], -1)
    return F.grid_sample(field, grid, mode="bilinear", padding_mode="border", align_corners=True)


def trajectory_stack(fields: torch.Tensor) -> torch.Tensor:
    """Trajectory stacking ``[..., L, 2, H, W]`` -> ``[..., 2L, H, W]`` (see the module docstring)."""
    fields = _check(fields).float()
    lead, (n_fields, _, h, w) = fields.shape[:-4], fields.shape[-4:]
    f = fields.reshape(-1, n_fields, 2, h, w)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=f.dtype, device=f.device),
                            torch.arange(w, dtype=f.dtype, device=f.device), indexing="ij")
    px, py = xs.expand(f.shape[0], h, w), ys.expand(f.shape[0], h, w)
    out = []
    for k in range(n_fields):
        d = _bilinear(f[:, k], px, py)
        out.append(d)
        px, py = px + d[:, 0], py + d[:, 1]
    return torch.stack(out, 1).reshape(*lead, 2 * n_fields, h, w)


def bidirectional_stack(forward: torch.Tensor, backward: torch.Tensor,
                        trajectory: bool = False) -> torch.Tensor:
    """L/2 forward and L/2 backward fields -> ``[..., 2L, H, W]``: forward channels first.

    ``backward[j]`` is the flow from frame τ-j to frame τ-j-1 (j = 0..L/2-1), e.g. fields of
    :func:`backward_flow` taken in reverse order. ``trajectory=True`` stacks each half along
    its trajectories.
    """
    forward, backward = _check(forward), _check(backward)
    if forward.shape != backward.shape:
        raise ValueError(f"forward and backward fields differ in shape: {tuple(forward.shape)} vs "
                         f"{tuple(backward.shape)} (bidirectional stacking takes L/2 of each)")
    stack = trajectory_stack if trajectory else stack_flow
    return torch.cat([stack(forward), stack(backward)], -3)


def backward_flow(frames, method: str = "dis", device: str = "cpu", **params) -> torch.Tensor:
    """Backward fields ``[T-1,2,H,W]`` of frames ``[T,H,W,3]``: field t is frame t+1 -> frame t."""
    from deepvideo.flow.api import compute_flow

    return compute_flow((frames[1:], frames[:-1]), method=method, device=device, **params)


def subtract_mean_flow(fields: torch.Tensor, per: str = "field") -> torch.Tensor:
    """Mean flow subtraction: remove the mean (u, v) of each field (``per="field"``) or of the
    whole stack of L fields (``per="stack"``); ``[..., L, 2, H, W]`` in and out."""
    fields = _check(fields)
    if per == "field":
        return fields - fields.mean((-2, -1), keepdim=True)
    if per == "stack":
        return fields - fields.mean((-4, -2, -1), keepdim=True)
    raise ValueError(f"per must be 'field' or 'stack', got {per!r}")
