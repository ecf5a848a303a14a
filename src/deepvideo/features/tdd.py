"""Trajectory-pooled deep-convolutional descriptors (TDD).

Wang, Qiao & Tang, "Action recognition with trajectory-pooled deep-convolutional descriptors",
CVPR 2015. Convolutional feature maps of a two-stream net — spatial conv4 and conv5, temporal
conv3 and conv4 — are computed for every frame (the temporal net sees the stack of L flow
fields starting at that frame), normalised, and summed along each improved trajectory:

    TDD(T, C̃) = Σ_p C̃(round(r·x_p), round(r·y_p), t_p)

with r the ratio of the map's size to the frame's. Normalisations: spatiotemporal (each channel
divided by its maximum over the video's frames and positions) and channel (each position's
vector divided by its maximum over channels); each gives one descriptor per layer. Encoding is
the same PCA + Fisher vector as for the hand-crafted descriptors (:mod:`.encoding`).

Feature maps are taken with forward hooks by module path; the forward pass stops at the last
hooked layer. Default layers (:func:`stream_layers`): the paper's ``conv<k>`` is ``backbone.relu<k>``
of the CNN-M-2048 / VGG two-stream nets (VGG-16 through its ``relu<k>`` aliases, e.g.
``relu5_3``) and the ``conv<k>_x`` stage of a ResNet backbone (``backbone.layer<k-1>`` in
torchvision's names, as in the CPU-sized ``two_stream_*_small`` nets).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

SPATIAL_LAYERS = ("backbone.relu4", "backbone.relu5")     # conv4, conv5 of CNN-M-2048
TEMPORAL_LAYERS = ("backbone.relu3", "backbone.relu4")    # conv3, conv4
NORMALISATIONS = ("spatiotemporal", "channel")
PAPER_STAGES = {"spatial": (4, 5), "temporal": (3, 4)}   # conv<k> pooled per stream (Wang et al. 2015)


class _Captured(Exception):
    """Raised by the hook of the last wanted layer: the rest of the forward pass is skipped."""


@torch.no_grad()
def feature_maps(model: nn.Module, inputs, layers: tuple[str, ...] | list[str]) -> dict[str, torch.Tensor]:
    """Outputs ``[N, C, h, w]`` of the modules at ``layers`` (paths in ``model.named_modules()``)
    when ``model(inputs)`` runs; stops after the last of them."""
    modules = dict(model.named_modules())
    missing = [p for p in layers if p not in modules]
    if missing:
        raise KeyError(f"no module {missing[0]!r} in the model; e.g. {[n for n in modules if n][:8]}")
    out: dict[str, torch.Tensor] = {}

    def hook(name):
        def grab(_module, _inp, output):
            out[name] = output.detach()
            if len(out) == len(layers):
                raise _Captured
        return grab

    handles = [modules[p].register_forward_hook(hook(p)) for p in layers]
    try:
        with contextlib.suppress(_Captured):  # the last wanted layer ends the forward pass
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    if len(out) != len(layers):
        raise RuntimeError(f"layers {sorted(set(layers) - set(out))} did not run in the forward pass")
    return out


def _stage_module(modules: dict, backbone: nn.Module | None, k: int) -> str | None:
    """Module path of conv<k> (its ReLU, or the whole ResNet stage conv<k>_x) or None."""
    relu = getattr(backbone, "aliases", {}).get(f"relu{k}", f"relu{k}")
    for path in (f"backbone.{relu}", f"backbone.layer{k - 1}"):
        if path in modules:
            return path
    return None


def stream_layers(model: nn.Module | None, layers, stream: str, where: str = "") -> tuple[str, ...] | None:
    """The module paths to pool for ``stream`` (``"spatial"``/``"temporal"``) of ``model``: ``layers``
    checked to exist, or by default the paper's conv layers (module docstring); None without a model."""
    if model is None:
        return None
    modules = dict(model.named_modules())
    if layers:
        missing = [p for p in layers if p not in modules]
        if missing:
            raise ValueError(f"{where}{stream} net: no module {missing[0]!r}; its modules include "
                             f"{[n for n in modules if n.count('.') == 1][:12]}")
        return tuple(layers)
    found = {k: _stage_module(modules, modules.get("backbone"), k) for k in PAPER_STAGES[stream]}
    absent = [k for k, path in found.items() if path is None]
    if absent:
        raise ValueError(f"{where}{stream} net: no conv{absent[0]} layer (backbone.relu{absent[0]} or the "
                         f"ResNet stage backbone.layer{absent[0] - 1}); name the layers to pool explicitly")
    return tuple(found.values())


def normalise_maps(maps: np.ndarray, mode: str) -> np.ndarray:
    """``[T, C, h, w]`` maps normalised by ``mode`` (see the module docstring); zeros stay zeros."""
    maps = np.asarray(maps, np.float32)
    if mode == "spatiotemporal":
        peak = maps.max(axis=(0, 2, 3), keepdims=True)
    elif mode == "channel":
        peak = maps.max(axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown normalisation {mode!r}; choose one of {NORMALISATIONS}")
    return maps / np.where(peak > 0, peak, 1.0)


def pool_trajectories(maps: np.ndarray, points: np.ndarray, end_frames: np.ndarray,
                      frame_size: tuple[int, int]) -> np.ndarray:
    """Sum of ``maps [T, C, h, w]`` along trajectories ``points [N, P, 2]`` (frame pixels) whose
    last point is at frame ``end_frames [N]`` -> ``[N, C]``."""
    t, _, mh, mw = maps.shape
    n, p, _ = points.shape
    if n == 0:
        return np.zeros((0, maps.shape[1]), np.float32)
    rx, ry = mw / frame_size[1], mh / frame_size[0]
    frames = np.asarray(end_frames, np.int64)[:, None] - (p - 1) + np.arange(p)[None]
    if frames.min() < 0 or frames.max() >= t:
        raise ValueError(f"trajectory frames {frames.min()}..{frames.max()} are outside the {t} "
                         "feature-map frames")
    xs = np.clip(np.rint(points[..., 0] * rx).astype(np.int64), 0, mw - 1)
    ys = np.clip(np.rint(points[..., 1] * ry).astype(np.int64), 0, mh - 1)
    return maps[frames, :, ys, xs].sum(axis=1).astype(np.float32)


def tdd_descriptors(stream_maps: dict[str, np.ndarray], points: np.ndarray, end_frames: np.ndarray,
                    frame_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """``{"<layer>/<normalisation>": [N, C]}`` for every map of ``stream_maps`` (``[T, C, h, w]``)."""
    return {f"{name}/{mode}": pool_trajectories(normalise_maps(maps, mode), points, end_frames, frame_size)
            for name, maps in stream_maps.items() for mode in NORMALISATIONS}


def video_maps(model: nn.Module, modality: str, clip: torch.Tensor, layers, batch: int = 8
               ) -> dict[str, np.ndarray]:
    """Per-frame maps of a snippet net: ``clip`` is ``[T, 3, H, W]`` normalised RGB
    (``modality="rgb"``) or ``[T, 2, L, H, W]`` flow stacks (``"flow"``)."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {p: [] for p in layers}
    for start in range(0, len(clip), batch):
        x = clip[start:start + batch]
        x = x.unsqueeze(2) if modality == "rgb" else x
        for p, m in feature_maps(model, {modality: x}, layers).items():
            parts[p].append(m.float().cpu().numpy())
    return {p: np.concatenate(v) for p, v in parts.items()}


def flow_stacks(flow: torch.Tensor, num_frames: int, stack: int) -> torch.Tensor:
    """``[T, 2, L, H, W]``: for frame t the flow fields t .. t+L-1 (start clamped at the end)."""
    if len(flow) < stack:
        raise ValueError(f"{len(flow)} flow fields cannot make a stack of {stack}")
    starts = np.clip(np.arange(num_frames), 0, len(flow) - stack)
    return torch.stack([flow[s:s + stack].permute(1, 0, 2, 3) for s in starts])


def _rgb_inputs(frames: np.ndarray, spec) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    if spec is not None:
        mean = torch.tensor(spec.mean[:3]).view(1, 3, 1, 1)
        std = torch.tensor(spec.std[:3]).view(1, 3, 1, 1)
        x = (x - mean) / std
    return x


def extract_tdd(frames: np.ndarray, spatial: nn.Module | None, temporal: nn.Module | None,
                trajectories, spatial_layers=SPATIAL_LAYERS, temporal_layers=TEMPORAL_LAYERS,
                flow: torch.Tensor | None = None, flow_method: str = "farneback") -> dict[str, np.ndarray]:
    """TDDs ``{"spatial/<layer>/<norm>" | "temporal/<layer>/<norm>": [N, C]}`` of a video.

    ``frames``: uint8 RGB ``[T, H, W, 3]``; ``trajectories``: a
    :class:`~deepvideo.features.trajectories.Trajectories` of these frames (with ``points``);
    ``spatial`` / ``temporal``: snippet nets (RGB, flow; either may be None); ``flow``:
    ``[T-1, 2, H, W]`` if already computed. Inputs are normalised by each net's
    ``input_spec`` when it has one.
    """
    if trajectories.points is None:
        raise ValueError("TDD needs the trajectories' points: extract them with extract_trajectories")
    size = frames.shape[1:3]
    end = trajectories.info[:, 0].astype(np.int64)
    out: dict[str, np.ndarray] = {}
    if spatial is not None:
        maps = video_maps(spatial, "rgb", _rgb_inputs(frames, getattr(spatial, "input_spec", None)),
                          spatial_layers)
        pooled = tdd_descriptors(maps, trajectories.points, end, size)
        out.update({f"spatial/{k}": v for k, v in pooled.items()})
    if temporal is not None:
        if flow is None:
            from deepvideo.flow.api import compute_flow

            flow = compute_flow(frames, method=flow_method)
        spec = getattr(temporal, "input_spec", None)
        if spec is not None:
            flow = (flow - spec.mean[0]) / spec.std[0]
        stacks = flow_stacks(flow, len(frames), int(getattr(temporal, "flow_stack", 1)))
        maps = video_maps(temporal, "flow", stacks, temporal_layers)
        pooled = tdd_descriptors(maps, trajectories.points, end, size)
        out.update({f"temporal/{k}": v for k, v in pooled.items()})
    return out
