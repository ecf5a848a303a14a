"""Views of a batch's modality tensors that models read: the RGB clip, and snippets stacked
as channels for 2D nets.

A batch holds ``rgb [N, 3, K*F, H, W]`` and ``flow [N, 2, K*L, H, W]`` (K snippets of F frames
or L flow fields, in temporal order); a 2D net over snippets sees ``[N*K, C, H, W]``.
"""

from __future__ import annotations

import torch


def rgb_input(batch: dict | torch.Tensor) -> torch.Tensor:
    """The ``rgb`` clip ``[N, 3, T, H, W]`` of a batch dict (a bare tensor is taken as rgb)."""
    if isinstance(batch, torch.Tensor):
        x = batch
    else:
        if "rgb" not in batch:
            raise KeyError(f"this model needs batch['rgb'] [N,3,T,H,W]; the batch has {sorted(batch)}")
        x = batch["rgb"]
    if x.dim() != 5:
        raise ValueError(f"expected rgb of shape [N, C, T, H, W], got {tuple(x.shape)}")
    return x


CAMERA_MOTION_MODELS = ("mean", "affine")


def remove_camera_motion(flow: torch.Tensor, model: str = "mean") -> torch.Tensor:
    """Subtract each flow field's global (camera) motion; ``flow [N, 2, T, H, W]`` in and out.

    ``"mean"``: the field's mean displacement vector, Simonyan & Zisserman 2014's mean flow
    subtraction (Sec. 3.1), which removes a pan. ``"affine"``: the field's least-squares affine
    motion ``u = a0 + a1*x + a2*y`` (and likewise ``v``), i.e. pan, zoom, rotation and shear of the
    whole frame, of which the mean is the constant part; what is left is motion relative to the
    frame's dominant motion, as camera-motion compensation does for dense trajectories (Wang &
    Schmid 2013, there with a homography). The affine fit is a projection onto span{1, x, y}
    over the pixels, so it is linear, exact on an affine field and cheap.
    """
    if model == "mean":
        return flow - flow.mean(dim=(-2, -1), keepdim=True)
    if model != "affine":
        raise ValueError(f"camera motion model must be one of {CAMERA_MOTION_MODELS}, got {model!r}")
    h, w = flow.shape[-2:]
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, dtype=torch.float64),
                            torch.linspace(-1, 1, w, dtype=torch.float64), indexing="ij")
    basis = torch.stack([torch.ones_like(xs), xs, ys], dim=-1).reshape(h * w, 3)
    q = torch.linalg.qr(basis).Q.to(device=flow.device, dtype=flow.dtype)  # orthonormal [HW, 3]
    fields = flow.reshape(*flow.shape[:-2], h * w)
    return (fields - (fields @ q) @ q.T).reshape(flow.shape)


def flow_to_snippets(
    flow: torch.Tensor, flow_stack: int, mean_subtraction: bool | str = False
) -> torch.Tensor:
    """``[N, 2, K*L, H, W]`` -> ``[N*K, 2L, H, W]`` with channels ``x_1, y_1, x_2, y_2, ...``.

    ``mean_subtraction``: ``True`` (or ``"mean"``) removes each field's mean displacement vector,
    ``"affine"`` its affine motion (:func:`remove_camera_motion`); ``False`` keeps the flow as is.
    """
    if flow.dim() != 5 or flow.shape[1] != 2:
        raise ValueError(f"flow must be [N, 2, K*L, H, W], got {tuple(flow.shape)}")
    n, _, t, h, w = flow.shape
    if t % flow_stack:
        raise ValueError(f"flow has {t} fields, not a multiple of flow_stack={flow_stack}")
    if mean_subtraction:
        flow = remove_camera_motion(flow, "mean" if mean_subtraction is True else mean_subtraction)
    k = t // flow_stack
    x = flow.reshape(n, 2, k, flow_stack, h, w).permute(0, 2, 3, 1, 4, 5)  # N, K, L, 2, H, W
    return x.reshape(n * k, 2 * flow_stack, h, w)


def rgb_to_snippets(rgb: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``[N, 3, K*F, H, W]`` -> ``[N*K, 3F, H, W]`` (frames of a snippet stacked as channels)."""
    if rgb.dim() != 5:
        raise ValueError(f"rgb must be [N, 3, K*F, H, W], got {tuple(rgb.shape)}")
    n, c, t, h, w = rgb.shape
    if t % num_frames:
        raise ValueError(f"rgb has {t} frames, not a multiple of num_frames={num_frames}")
    k = t // num_frames
    return (
        rgb.reshape(n, c, k, num_frames, h, w).permute(0, 2, 3, 1, 4, 5).reshape(n * k, num_frames * c, h, w)
    )


def rgbdiff_to_snippets(rgb: torch.Tensor, num_frames: int) -> torch.Tensor:
    """TSN's RGB difference: ``F`` frames per snippet -> ``F-1`` stacked differences, ``3(F-1)`` channels."""
    if num_frames < 2:
        raise ValueError("the rgbdiff modality needs num_frames >= 2 per snippet")
    n, c, t, h, w = rgb.shape
    k = t // num_frames
    x = rgb.reshape(n, c, k, num_frames, h, w)
    d = x[:, :, :, 1:] - x[:, :, :, :-1]
    return d.permute(0, 2, 3, 1, 4, 5).reshape(n * k, (num_frames - 1) * c, h, w)


def input_channels(modality: str, num_frames: int = 1, flow_stack: int = 0) -> int:
    """Channels of one snippet of ``modality`` as a 2D net sees it (``3F``, ``2L`` or ``3(F-1)``)."""
    return {"rgb": 3 * num_frames, "flow": 2 * flow_stack, "rgbdiff": 3 * (num_frames - 1)}[modality]
