"""Receptive field size ``rho_l`` of a layer, from the module graph (for the normalisation of
activation maximisation, Feichtenhofer et al. CVPR 2018 / thesis ch. 6, after Mahendran &
Vedaldi 2016).

Approximation (stated, not exact for every graph): one forward pass records every
convolution and pooling module whose output is an ancestor (in the autograd graph) of the
layer's output; each adds ``(k - 1) * dilation * j`` to the size, where ``j`` is the spatial
stride of its input relative to the model input (measured from the tensor sizes, so strides
of parallel paths are never counted twice). This is exact for chains of convolutions and
poolings (VGG/CNN-M-like nets, the residual main path of ResNets, whose 1x1 shortcuts add
nothing) and an upper bound for nets with parallel branches of different kernels
(Inception): their kernels are summed. The result is capped at the input size (a unit cannot
see more than the whole frame). Only the spatial extent is used (``rho_l^2`` is an area).
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.visualize.hooks import LOGITS, capture, frozen, logits_of

_KERNEL_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool2d, nn.AvgPool3d)


def _last(v) -> int:
    return int(v[-1]) if isinstance(v, (tuple, list)) else int(v)


def _ancestors(output: torch.Tensor) -> set:
    seen, stack = set(), [output.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        stack.extend(nxt for nxt, _ in fn.next_functions)
    return seen


def receptive_field(model: nn.Module, layer: str, batch: dict) -> int:
    """Spatial receptive field size (pixels) of a unit of ``layer`` for inputs shaped like
    ``batch`` (the frame width bounds it; ``"logits"`` gives the whole frame)."""
    batch = {
        k: (v.detach().clone().requires_grad_(True) if v.is_floating_point() else v)
        for k, v in batch.items()
        if isinstance(v, torch.Tensor)
    }
    width = max(int(v.shape[-1]) for v in batch.values() if v.dim() >= 4)
    if layer == LOGITS:
        return width
    records: list[tuple[nn.Module, int, torch.Tensor]] = []

    def hook(module, inputs, output):
        records.append((module, int(inputs[0].shape[-1]), output))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _KERNEL_TYPES)]
    try:
        with torch.enable_grad(), frozen(model), capture(model, layer) as cap:
            out = model(batch)
            target = logits_of(out) if layer == LOGITS else cap.get()
    finally:
        for h in handles:
            h.remove()
    if target.grad_fn is None:
        raise ValueError(f"layer {layer!r} does not depend on the model input")
    graph = _ancestors(target)
    size = 1.0
    for module, in_width, output in records:
        if output.grad_fn not in graph:
            continue
        k = _last(module.kernel_size)
        dilation = _last(getattr(module, "dilation", 1))
        size += (k - 1) * dilation * width / max(in_width, 1)
    return int(min(round(size), width))
