"""Frame pairs with known optical flow, for tests and benchmarks (deterministic by seed).

Every sample obeys the brightness-constancy relation flow methods assume:
``prev(x) = next(x + flow(x))`` wherever ``valid(x)`` (the point stays inside the image and
is not hidden by another layer in ``next``). Kinds:

- ``translation``: a random texture shifted by one sub-pixel displacement;
- ``smooth``: a texture warped by a smooth random field (sum of low-frequency noise);
- ``objects``: a textured background translating, with 2-4 textured discs and squares that
  translate, rotate and scale about their centres in front of it; occluded pixels
  (covered in ``next`` by another layer) and pixels leaving the frame are marked invalid.

Textures are multi-octave smooth noise, rendered by bilinear sampling, so the images are
band-limited and the ground truth is exact up to the final uint8 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class FlowSample:
    """One pair: ``prev``/``next`` uint8 [H,W,3], ``flow`` float32 [2,H,W], ``valid`` bool [H,W]."""

    prev: np.ndarray
    next: np.ndarray
    flow: np.ndarray
    valid: np.ndarray
    kind: str


def _texture(rng: np.random.Generator, h: int, w: int, finest: int = 3) -> torch.Tensor:
    """Colour multi-octave noise ``float32 [3,h,w]`` in 0..255."""
    out = torch.zeros(3, h, w)
    cell, amp = finest, 1.0
    while cell < max(h, w):
        gh, gw = h // cell + 2, w // cell + 2
        grid = torch.from_numpy(rng.standard_normal((1, 3, gh, gw)).astype(np.float32))
        up = F.interpolate(grid, size=(gh * cell, gw * cell), mode="bicubic", align_corners=False)
        out += amp * up[0, :, :h, :w]
        cell, amp = cell * 2, amp * 1.3
    mix = torch.from_numpy((0.6 + 0.4 * rng.random((3, 3))).astype(np.float32))  # correlated channels
    out = torch.einsum("ij,jhw->ihw", mix / mix.sum(1, keepdim=True), out)
    lo, hi = out.amin(), out.amax()
    return (out - lo) / (hi - lo) * 215.0 + 20.0


def _sample(texture: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``texture [3,h,w]`` at pixel coordinates (border clamped) -> [3,H,W]."""
    h, w = texture.shape[-2:]
    grid = torch.stack([xs * (2.0 / (w - 1)) - 1.0, ys * (2.0 / (h - 1)) - 1.0], -1)[None]
    return F.grid_sample(texture[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0]


def _to_uint8(img: torch.Tensor) -> np.ndarray:
    return img.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _smooth_field(rng: np.random.Generator, h: int, w: int, max_disp: float, cells: int = 3) -> torch.Tensor:
    grid = torch.from_numpy(rng.standard_normal((1, 2, cells, cells)).astype(np.float32))
    field = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=True)[0]
    field = field / field.abs().amax().clamp_min(1e-6) * max_disp
    return field + torch.from_numpy(rng.uniform(-0.3, 0.3, (2, 1, 1)).astype(np.float32)) * max_disp


def make_sample(kind: str = "objects", height: int = 64, width: int = 64, seed: int = 0,
                max_disp: float = 4.0) -> FlowSample:
    """One ground-truth pair of the given ``kind`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    h, w = height, width
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    if kind in ("translation", "smooth"):
        m = int(np.ceil(max_disp * 1.6)) + 2
        tex = _texture(rng, h + 2 * m, w + 2 * m)
        if kind == "translation":
            shift = rng.uniform(-max_disp, max_disp, (2, 1, 1)).astype(np.float32)
            flow = torch.from_numpy(shift).expand(2, h, w)
        else:
            flow = _smooth_field(rng, h, w, max_disp)
        nxt = _sample(tex, xs + m, ys + m)
        prev = _sample(tex, xs + flow[0] + m, ys + flow[1] + m)
        tx, ty = xs + flow[0], ys + flow[1]
        valid = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
        return FlowSample(_to_uint8(prev), _to_uint8(nxt), flow.contiguous().numpy().copy(), valid.numpy(),
                          kind)
    if kind != "objects":
        raise ValueError(f"unknown ground-truth kind {kind!r}; use 'translation', 'smooth' or 'objects'")
    return _objects(rng, h, w, max_disp, xs, ys)


def _objects(rng, h, w, max_disp, xs, ys) -> FlowSample:
    m = int(np.ceil(max_disp)) + 2
    bg_tex = _texture(rng, h + 2 * m, w + 2 * m)
    bg_t = rng.uniform(-max_disp / 2, max_disp / 2, 2).astype(np.float32)
    layers = []  # canonical coords c = R_t^-1 (y - centre_t) / s_t
    for _ in range(int(rng.integers(2, 5))):
        r = float(rng.uniform(0.12, 0.25) * min(h, w))
        centre = rng.uniform([r, r], [w - r, h - r]).astype(np.float32)
        layers.append(dict(
            tex=_texture(rng, int(2 * r) + 4, int(2 * r) + 4), r=r, disc=bool(rng.random() < 0.5),
            c0=centre, t=rng.uniform(-max_disp * 0.6, max_disp * 0.6, 2).astype(np.float32),
            angle=float(rng.uniform(-0.08, 0.08)), scale=float(rng.uniform(0.95, 1.05))))

    def render(time: int):
        img = _sample(bg_tex, xs + m + (bg_t[0] * -time), ys + m + (bg_t[1] * -time))
        ids = torch.zeros(h, w, dtype=torch.long)
        for k, lay in enumerate(layers, start=1):
            ang, s = lay["angle"] * time, lay["scale"] ** time
            cx, cy = lay["c0"] + lay["t"] * time
            dx, dy = xs - cx, ys - cy
            ca, sa = np.cos(-ang), np.sin(-ang)
            ux, uy = (ca * dx - sa * dy) / s, (sa * dx + ca * dy) / s
            inside = (ux ** 2 + uy ** 2 <= lay["r"] ** 2) if lay["disc"] else \
                (ux.abs() <= lay["r"] * 0.85) & (uy.abs() <= lay["r"] * 0.85)
            off = (lay["tex"].shape[-1] - 1) / 2
            img = torch.where(inside[None], _sample(lay["tex"], ux + off, uy + off), img)
            ids = torch.where(inside, torch.full_like(ids, k), ids)
        return img, ids

    prev, ids0 = render(0)
    nxt, ids1 = render(1)
    flow = torch.stack([torch.full((h, w), float(bg_t[0])), torch.full((h, w), float(bg_t[1]))])
    for k, lay in enumerate(layers, start=1):
        sel = ids0 == k
        cx, cy = lay["c0"]
        dx, dy = xs - cx, ys - cy
        ca, sa, s = np.cos(lay["angle"]), np.sin(lay["angle"]), lay["scale"]
        tx = cx + lay["t"][0] + s * (ca * dx - sa * dy)
        ty = cy + lay["t"][1] + s * (sa * dx + ca * dy)
        flow[0] = torch.where(sel, tx - xs, flow[0])
        flow[1] = torch.where(sel, ty - ys, flow[1])
    tx, ty = xs + flow[0], ys + flow[1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    ix = tx.round().clamp(0, w - 1).long()
    iy = ty.round().clamp(0, h - 1).long()
    visible = ids1[iy, ix] == ids0
    # a pixel next to a layer edge in either frame has a mixed colour: not a valid match either
    valid = inside & visible & ~_near_edge(ids0) & ~_near_edge(ids1)[iy, ix]
    return FlowSample(_to_uint8(prev), _to_uint8(nxt), flow.numpy().astype(np.float32), valid.numpy(),
                      "objects")


def _near_edge(ids: torch.Tensor) -> torch.Tensor:
    """Pixels whose 3x3 neighbourhood holds more than one layer."""
    x = ids[None, None].float()
    return (F.max_pool2d(x, 3, 1, 1) != -F.max_pool2d(-x, 3, 1, 1))[0, 0]


def make_dataset(n: int, height: int = 64, width: int = 64, seed: int = 0,
                 kinds: tuple[str, ...] = ("translation", "smooth", "objects"),
                 max_disp: float = 4.0) -> list[FlowSample]:
    """``n`` samples cycling through ``kinds``; sample i uses seed ``seed * 1000 + i``."""
    return [make_sample(kinds[i % len(kinds)], height, width, seed * 1000 + i, max_disp) for i in range(n)]


def stack_samples(samples: list[FlowSample]) -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """(prev uint8 [N,H,W,3], next uint8 [N,H,W,3], flow float32 [N,2,H,W], valid bool [N,H,W])."""
    return (np.stack([s.prev for s in samples]), np.stack([s.next for s in samples]),
            torch.from_numpy(np.stack([s.flow for s in samples])),
            torch.from_numpy(np.stack([s.valid for s in samples])))


def epe(flow, gt, mask=None) -> float:
    """Average end-point error ``mean ||flow - gt||₂`` over the pixels where ``mask`` is true.

    ``flow``/``gt``: [2,H,W] or [N,2,H,W] (numpy or torch); ``mask``: [H,W] or [N,H,W].
    """
    f = torch.as_tensor(np.asarray(flow) if not isinstance(flow, torch.Tensor) else flow).float().cpu()
    g = torch.as_tensor(np.asarray(gt) if not isinstance(gt, torch.Tensor) else gt).float().cpu()
    if f.shape != g.shape or f.shape[-3] != 2:
        raise ValueError(f"flow and gt must both be [..,2,H,W] of one shape, "
                         f"got {tuple(f.shape)}, {tuple(g.shape)}")
    err = torch.linalg.vector_norm(f - g, dim=-3)
    if mask is None:
        return float(err.mean())
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).bool().cpu()
    if m.shape != err.shape:
        raise ValueError(f"mask shape {tuple(m.shape)} does not match flow {tuple(err.shape)}")
    if not bool(m.any()):
        raise ValueError("mask selects no pixel")
    return float(err[m].mean())
