"""Writing a visualisation run's folder: one clip per unit (streams side by side) as mp4 / GIF /
PNG, a grid of all units (rows) over frames (columns), a JSON summary and ``report.md``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from deepvideo.io.atomic import atomic_write_json
from deepvideo.visualize.display import (
    FORMATS,
    enlarge,
    flow_frames,
    grid,
    overlay,
    side_by_side,
    write_clip,
    write_png,
    write_report,
)
from deepvideo.visualize.maximize import MaximizeResult, flow_normalization


def stream_frames(result: MaximizeResult, spec, coding: str = "mag") -> dict[str, np.ndarray]:
    """``stream -> uint8 [T, H, W', 3]``: RGB frames, flow in ``coding`` (min-max over the clip)."""
    out = {}
    if "rgb" in result.inputs:
        out["rgb"] = result.rgb_uint8(spec.mean[:3]).numpy()
    if "flow" in result.inputs:
        out["flow"] = flow_frames(result.flow_px(), coding)
    return out


def _match_frames(videos: list[np.ndarray]) -> list[np.ndarray]:
    """Repeat the frames of shorter streams so every stream has the longest one's count."""
    t = max(v.shape[0] for v in videos)
    return [v[np.minimum(np.arange(t) * v.shape[0] // t, v.shape[0] - 1)] for v in videos]


def unit_name(layer: str, channel: int) -> str:
    return f"{layer.replace('.', '_') or 'model'}_c{channel}"


def save_maximization(
    results: Sequence[MaximizeResult],
    folder: str | Path,
    spec,
    *,
    coding: str = "mag",
    formats: Sequence[str] = FORMATS,
    zoom: int = 1,
    labels: Sequence[str] | None = None,
    fps: float = 8.0,
) -> Path:
    """Write every unit's clip, ``grid.png``, ``maximize.json`` and ``report.md``; returns the report."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows, lines = [], []
    for i, r in enumerate(results):
        frames = stream_frames(r, spec, coding)
        clip = enlarge(side_by_side(*_match_frames(list(frames.values()))), zoom)
        name = unit_name(r.layer, r.channel)
        write_clip(folder / name, clip, formats, fps)
        rows.append(clip)
        label = f" ({labels[i]})" if labels else ""
        final = r.history[-1]
        lines.append(
            f"- `{r.layer}` channel {r.channel}{label}: streams {' | '.join(frames)}; "
            f"rho = {r.rho}, a_hat = {r.a_hat:.4g}, final activation term {final['activation']:.4g}, "
            f"regulariser {final['reg']:.4g}; files `{name}.*`"
        )
    write_png(folder / "grid.png", grid(rows))
    atomic_write_json(folder / "maximize.json", [r.summary() for r in results])
    o = results[0].options
    head = [
        f"Regulariser {o.reg} (kappa {o.kappa}, chi {o.chi}), B = {o.bound}, alpha = {o.alpha}, "
        f"{o.steps} steps, lr {o.lr}, window {o.window}, seed {o.seed}; flow shown as `{coding}` "
        "(min-max over the clip).",
        "",
        "Rows of grid.png: the units below; columns: frames.",
        "",
    ]
    return write_report(folder, "Activation maximisation", head + lines, ["grid.png"])


def save_heat(
    folder: str | Path,
    name: str,
    base: np.ndarray,
    heat: torch.Tensor,
    *,
    formats: Sequence[str] = FORMATS,
    zoom: int = 1,
    fps: float = 8.0,
) -> list[Path]:
    """``base`` frames ``uint8 [T, H, W, 3]`` with ``heat [T, H, W]`` overlaid, next to the plain heat."""
    h = heat.detach().cpu().numpy()
    plain = np.repeat((np.clip(h, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, -1)
    frames = enlarge(side_by_side(overlay(base, h), plain), zoom)
    return write_clip(Path(folder) / name, frames, formats, fps)


def model_view(batch: dict, stream: str, spec, coding: str = "wheel") -> np.ndarray:
    """What a batch of one holds for ``stream`` as frames ``uint8 [T, H, W, 3]`` (RGB
    de-normalised; flow in ``coding``, its u | v halves for ``uv`` averaged to one image)."""
    x = batch[stream][0].detach().float()
    if stream == "rgb":
        std = torch.tensor(spec.std[:3]).view(3, 1, 1, 1)
        mean = torch.tensor(spec.mean[:3]).view(3, 1, 1, 1)
        return ((x * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 3, 0).numpy()
    mean, std = flow_normalization(spec)
    return flow_frames((x * std + mean).transpose(0, 1), "wheel" if coding == "uv" else coding)
