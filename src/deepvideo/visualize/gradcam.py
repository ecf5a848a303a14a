"""Grad-CAM for video (Selvaraju et al., ICCV 2017, extended over time): a spatiotemporal heat
map of where and when a conv layer's evidence for a class (or for one of its own channels) lies.

For the layer's activation ``A`` (``[N, C, T', H', W']`` for 3D nets; ``[N*K, C, H', W']`` for
2D nets applied to K snippets, whose snippets are its time axis) and the target score ``y``:
``alpha_c = mean over positions of dy/dA_c`` and ``cam = ReLU(sum_c alpha_c A_c)``, upsampled
(trilinearly) over the input clip's ``T x H x W`` and scaled to ``[0, 1]`` by its maximum.
A unit target ``("channel", c)`` gives ``ReLU(A_c)`` itself (``dy/dA`` is one-hot in ``c``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.visualize.hooks import capture, frozen, logits_of


def _snippet_time(act: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Activations -> ``[N, C, T', H', W']`` (2D snippet activations: snippets as time)."""
    if act.dim() == 5:
        return act
    if act.dim() != 4:
        raise ValueError(
            f"Grad-CAM needs a conv layer (activations [N,C,H,W] or [N,C,T,H,W]), got "
            f"shape {tuple(act.shape)}"
        )
    nk, c, h, w = act.shape
    if nk % batch_size:
        raise ValueError(f"the layer's batch {nk} is not a multiple of the input batch {batch_size}")
    return act.reshape(batch_size, nk // batch_size, c, h, w).transpose(1, 2)


def gradcam(
    model: nn.Module,
    batch: dict,
    layer: str,
    target: int | tuple[str, int] | None = None,
    size: tuple[int, int, int] | None = None,
) -> tuple[torch.Tensor, int]:
    """Heat maps ``[N, T, H, W]`` in ``[0, 1]`` and the class (or channel) explained.

    ``target``: a class index, None for each sample's top class (the first sample's is
    returned), or ``("channel", c)`` for channel ``c`` of ``layer``. ``size``: ``(T, H, W)``
    to upsample to (default: the layer's own grid).
    """
    n = next(v.shape[0] for v in batch.values() if isinstance(v, torch.Tensor))
    batch = {
        k: v.detach().clone().requires_grad_(True)
        if isinstance(v, torch.Tensor) and v.is_floating_point()
        else v
        for k, v in batch.items()
    }  # the weights are frozen: the graph starts at the input
    with frozen(model), torch.enable_grad(), capture(model, layer) as cap:
        out = logits_of(model(batch))
        act = cap.get()
        if isinstance(target, tuple):
            kind, index = target
            if kind != "channel" or not 0 <= index < act.shape[1]:
                raise ValueError(f"unit target must be ('channel', 0..{act.shape[1] - 1}), got {target}")
            cam = _snippet_time(act.detach(), n)[:, index].relu()
        else:
            classes = out.argmax(1) if target is None else torch.full((n,), int(target))
            if not 0 <= int(classes.max()) < out.shape[1]:
                raise ValueError(f"class {target} out of range: the model has {out.shape[1]} classes")
            score = out.gather(1, classes[:, None]).sum()
            grad = torch.autograd.grad(score, act)[0]
            a, g = _snippet_time(act.detach(), n), _snippet_time(grad, n)
            alpha = g.mean(dim=(2, 3, 4), keepdim=True)
            cam = (alpha * a).sum(1).relu()
            index = int(classes[0])
    if size is not None:
        cam = F.interpolate(cam[:, None], size=size, mode="trilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(1).clamp_min(1e-12).view(-1, *([1] * (cam.dim() - 1)))
    return cam / peak, index


def mask_contrast(heat: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean heat inside a boolean ``mask`` divided by the mean outside it (same shapes)."""
    if heat.shape != mask.shape:
        raise ValueError(f"heat {tuple(heat.shape)} and mask {tuple(mask.shape)} differ in shape")
    inside, outside = heat[mask], heat[~mask]
    if inside.numel() == 0 or outside.numel() == 0:
        raise ValueError("the mask must cover some but not all pixels")
    return float(inside.mean() / outside.mean().clamp_min(1e-12))
