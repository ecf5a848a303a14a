"""First-layer filters as pictures: 2D RGB kernels, flow-stack kernels (``2L`` input channels
ordered ``u_1, v_1, u_2, v_2, ...``, shown as L flow fields over time) and 3D kernels
``[O, C, kt, kh, kw]`` (shown as kt frames). Each filter is min-max scaled on its own; a grid
has one row per filter and one column per time step (as in the thesis' filter figures, ch. 3/6).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepvideo.visualize.display import flow_frames


def first_conv(model: nn.Module) -> tuple[str, nn.Module]:
    """The first convolution registered in ``model`` (its module path and the module)."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            return name, m
    raise ValueError("the model has no Conv2d/Conv3d layer to show")


def kernel_kind(weight: torch.Tensor, modality: str) -> str:
    """``"rgb"`` (3 input channels per frame) or ``"flow"`` (2 per field) of a kernel."""
    c = weight.shape[1]
    if modality == "flow" and c % 2 == 0:
        return "flow"
    if c % 3 == 0:
        return "rgb"
    raise ValueError(
        f"cannot show a kernel with {c} input channels as {modality} "
        "(expected a multiple of 3 for RGB or of 2 for flow)"
    )


def as_frames(weight: torch.Tensor, kind: str) -> torch.Tensor:
    """Kernels ``[O, C, (kt,) kh, kw]`` -> ``[O, T, c, kh, kw]`` with ``c`` 3 (RGB) or 2 (flow)."""
    w = weight.detach().float().cpu()
    c = 3 if kind == "rgb" else 2
    if w.dim() == 5:  # 3D: [O, C, kt, kh, kw], C = c (or a multiple: stacked inputs)
        o, ch, kt, kh, kw = w.shape
        return w.reshape(o, ch // c, c, kt, kh, kw).permute(0, 1, 3, 2, 4, 5).reshape(o, -1, c, kh, kw)
    o, ch, kh, kw = w.shape
    return w.reshape(o, ch // c, c, kh, kw)


def filter_rows(
    weight: torch.Tensor, modality: str = "rgb", coding: str = "mag", count: int | None = None
) -> list[np.ndarray]:
    """One ``uint8 [T, kh, kw', 3]`` row per filter (the first ``count``)."""
    kind = kernel_kind(weight, modality)
    frames = as_frames(weight, kind)[:count]
    rows = []
    for f in frames:  # [T, c, kh, kw]
        if kind == "flow":
            rows.append(flow_frames(f, coding))
        else:
            lo, hi = float(f.min()), float(f.max())
            img = (f - lo) / max(hi - lo, 1e-12)
            rows.append((img.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
    return rows
