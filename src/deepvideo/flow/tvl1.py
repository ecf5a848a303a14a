"""TV-L1 optical flow in PyTorch, batched over frame pairs, on CPU or CUDA.

The model of Zach, Pock & Bischof, "A Duality Based Approach for Realtime TV-L1 Optical
Flow" (DAGM 2007), solved with the scheme of Wedel, Pock, Zach, Bischof & Cremers, "An
Improved Algorithm for TV-L1 Optical Flow" (2009), as documented for OpenCV's
``DualTVL1OpticalFlow`` (the peer we measure against; no code was taken from it):

- coarse-to-fine pyramid (``scales`` levels, ``scale_step`` 0.8 per level, bilinear resize;
  the flow is upsampled and divided by ``scale_step`` between levels);
- ``warps`` re-linearizations per level: the second image and its centred-difference
  gradient are warped by the current flow (bicubic, zero outside the image, where the data
  term then vanishes), ``rho_c = I1w - ∇I1w·u0 - I0``;
- per iteration: the thresholding step ``v = u + clamp(-rho/|∇I1w|², ±λθ) ∇I1w`` (the
  three cases of the point-wise L1 data term), the primal update ``u = v + θ div p`` and
  the dual update ``p = (p + τ/θ ∇u) / (1 + τ/θ |∇u|)`` (forward differences, backward
  divergence, its adjoint);
- a ``median_filtering`` x ``median_filtering`` median filter of the flow before each of the
  ``outer_iterations`` blocks of ``inner_iterations`` per warp;
- stop a warp when the mean squared flow change of one iteration drops below ``epsilon²``.

Default preset = OpenCV's defaults: tau 0.25, lambda 0.15, theta 0.3, 5 scales, 5 warps,
epsilon 0.01, 30 inner x 10 outer iterations (a cap of 300), scale step 0.8, median 5x5,
gamma 0 (the illumination term of OpenCV's ``gamma`` is not implemented). The ``fast``
preset trades accuracy for speed: 3 scales (step 0.5), 3 warps, 3 outer x 20 inner
iterations (bilinear warping).

Speed, per design: the pairs of a batch run together as one tensor (a pair that has
converged leaves the batch, so batched and single-pair results agree), float32 luma only,
and the convergence test is done every ``check_every`` iterations (not every one; that
may add up to ``check_every - 1`` iterations to a warp). Images are 0..255 floats as in
OpenCV, so lambda has the same meaning. ``compile=None`` (auto) runs the iterations and the
median through ``torch.compile`` (dynamic shapes, fused loops; eager if compiling fails)
for batches of at least :data:`COMPILE_MIN_PIXELS` pixels, where the one-off compile time
pays; ``compile=True/False`` forces it. Speed and EPE against OpenCV: ``docs/benchmarks.md``
("Optical flow", ``benchmarks/bench_flow.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class TVL1Params:
    """Parameters of :func:`tvl1_flow`; names follow OpenCV's DualTVL1 setters."""

    tau: float = 0.25
    lam: float = 0.15
    theta: float = 0.3
    scales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    median_filtering: int = 5
    interpolation: str = "bicubic"
    check_every: int = 5
    min_size: int = 16
    compile: bool | None = None


PRESETS = {
    "default": TVL1Params(),
    "fast": TVL1Params(scales=3, scale_step=0.5, warps=3, inner_iterations=20, outer_iterations=3,
                       interpolation="bilinear"),
}


def gray_float(frames, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 RGB ``[N,H,W,3]`` or gray ``[N,H,W]`` (numpy/torch) -> float32 luma 0..255 ``[N,H,W]``."""
    x = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.asarray(frames))
    x = x.to(device)
    if x.ndim == 4:
        if x.shape[-1] != 3:
            raise ValueError(f"frames must be [N,H,W,3] RGB or [N,H,W] gray, got shape {tuple(x.shape)}")
        w = torch.tensor(LUMA, dtype=torch.float32, device=x.device)
        return (x.to(torch.float32) * w).sum(-1)
    if x.ndim != 3:
        raise ValueError(f"frames must be [N,H,W,3] RGB or [N,H,W] gray, got shape {tuple(x.shape)}")
    return x.to(torch.float32)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _centred_gradient(img: torch.Tensor) -> torch.Tensor:
    """[B,1,H,W] -> [B,2,H,W] (d/dx, d/dy), central differences, one-sided at the border."""
    p = F.pad(img, (1, 1, 1, 1), mode="replicate")
    gx = (p[:, :, 1:-1, 2:] - p[:, :, 1:-1, :-2]) * 0.5
    gy = (p[:, :, 2:, 1:-1] - p[:, :, :-2, 1:-1]) * 0.5
    return torch.cat([gx, gy], 1)


def _warp(img: torch.Tensor, flow: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample ``img [B,C,H,W]`` at x + flow (pixels), zero outside the image."""
    b, _, h, w = flow.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], -1)
    return F.grid_sample(img, grid, mode=mode, padding_mode="zeros", align_corners=True)


def _batcher_network(n: int) -> list[tuple[int, int]]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for ``n`` inputs."""
    size = 1 << (n - 1).bit_length()
    comps, p = [], 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        comps.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return [(a, b) for a, b in comps if b < n]  # missing inputs act as +inf: never swapped


def _selection_network(n: int, rank: int, column: int | None = None) -> list[tuple[int, int, bool, bool]]:
    """Comparators giving the ``rank``-th smallest of ``n`` inputs: (i, j, need_min, need_max).

    With ``column=k`` the inputs are ``n/k`` columns of ``k`` values, input ``c*k + r`` the
    r-th smallest of column c (columns sorted beforehand): comparators that never swap for
    such inputs are dropped. By the 0-1 principle it is enough to check every sorted 0-1
    column pattern ((k+1)^(n/k) inputs), since thresholding keeps columns sorted.
    """
    comps = _batcher_network(n)
    if column:
        patterns = np.array([[0] * (column - j) + [1] * j for j in range(column + 1)], np.uint8)
        grid = np.stack(np.meshgrid(*[np.arange(column + 1)] * (n // column), indexing="ij"), -1)
        vals = patterns[grid.reshape(-1, n // column)].reshape(-1, n)
        swapping = []
        for a, b in comps:
            if (vals[:, a] > vals[:, b]).any():
                swapping.append((a, b))
                lo, hi = np.minimum(vals[:, a], vals[:, b]), np.maximum(vals[:, a], vals[:, b])
                vals[:, a], vals[:, b] = lo, hi
        comps = swapping
    need, kept = {rank}, []
    for a, b in reversed(comps):
        if a in need or b in need:
            kept.append((a, b, a in need, b in need))
            need |= {a, b}
    return kept[::-1]


_MEDIAN_NETWORKS: dict[int, tuple[list, list]] = {}


def _median_core(p: torch.Tensor, k: int) -> torch.Tensor:
    """k x k median of the replicate-padded ``p [..., H+k-1, W+k-1]`` -> ``[..., H, W]``.

    Each column of k pixels is sorted once (shared by the k windows that contain it), then a
    pruned selection network over the k sorted columns of a window gives the median. Only
    min/max on shifted views: exact, and one fused loop under ``torch.compile``.
    """
    sort_k, select = _MEDIAN_NETWORKS[k]
    h, w = p.shape[-2] - k + 1, p.shape[-1] - k + 1
    cols = [p[..., dy:dy + h, :] for dy in range(k)]
    for a, b in sort_k:
        cols[a], cols[b] = torch.minimum(cols[a], cols[b]), torch.maximum(cols[a], cols[b])
    vals: list = [cols[r][..., dx:dx + w] for dx in range(k) for r in range(k)]
    for a, b, need_min, need_max in select:
        lo = torch.minimum(vals[a], vals[b]) if need_min else None
        hi = torch.maximum(vals[a], vals[b]) if need_max else None
        vals[a], vals[b] = lo, hi
    return vals[k * k // 2]


def _pad_for_median(x: torch.Tensor, k: int) -> torch.Tensor:
    """Replicate-pad by k//2 (and build the networks for k, outside any compiled region)."""
    if k not in _MEDIAN_NETWORKS:
        _MEDIAN_NETWORKS[k] = (_batcher_network(k), _selection_network(k * k, k * k // 2, column=k))
    r = k // 2
    return F.pad(x, (r, r, r, r), mode="replicate")


def median_filter(x: torch.Tensor, k: int) -> torch.Tensor:
    """k x k median (k = 3 or 5) of each channel of ``[B,C,H,W]``, border replicated (as
    cv2.medianBlur); other odd k use ``torch.median`` over unfolded patches."""
    if k in (3, 5):
        return _median_core(_pad_for_median(x, k), k)
    return median_unfold(x, k)


def median_unfold(x: torch.Tensor, k: int) -> torch.Tensor:
    """Reference k x k median: ``torch.median`` over unfolded patches (slower, any odd k)."""
    b, c, h, w = x.shape
    r = k // 2
    p = F.pad(x.reshape(b * c, 1, h, w), (r, r, r, r), mode="replicate")
    patches = p.unfold(2, k, 1).unfold(3, k, 1).reshape(b * c, h, w, k * k)
    return patches.median(-1).values.reshape(b, c, h, w)


def _iteration(u, p, grad_i, rho_c, neg_inv_grad, lt: float, theta: float, taut: float):
    """One thresholding + primal + dual step; returns (u_new, p_new).

    u [B,2,H,W] (u1, u2); p [B,4,H,W] = (p11, p21, p12, p22), the x then y duals of each
    flow component. Written as whole-tensor ops (no in-place slicing) so that
    ``torch.compile`` fuses the step into a few loops.
    """
    rho = rho_c + (grad_i * u).sum(1, keepdim=True)
    v = u + (rho * neg_inv_grad).clamp(-lt, lt) * grad_i
    px, py = p[:, :2], p[:, 2:]
    div = px - F.pad(px[..., :-1], (1, 0)) + py - F.pad(py[..., :-1, :], (0, 0, 1, 0))
    u_new = v + theta * div
    gx = F.pad(u_new[..., 1:] - u_new[..., :-1], (0, 1))
    gy = F.pad(u_new[..., 1:, :] - u_new[..., :-1, :], (0, 0, 0, 1))
    ng = 1.0 + taut * torch.sqrt(gx * gx + gy * gy)
    p_new = torch.cat([(px + taut * gx) / ng, (py + taut * gy) / ng], 1)
    return u_new, p_new


def _block(u, p, grad_i, rho_c, neg_inv_grad, lt: float, theta: float, taut: float, steps: int):
    """``steps`` iterations; returns (u, p, per-pair squared change of the last iteration)."""
    u_prev = u
    for _ in range(steps):
        u_prev = u
        u, p = _iteration(u, p, grad_i, rho_c, neg_inv_grad, lt, theta, taut)
    d = u - u_prev
    return u, p, (d * d).sum((1, 2, 3))


def _block_inplace(u, p, grad_i, rho_c, neg_inv_grad, lt: float, theta: float, taut: float, steps: int):
    """:func:`_block` in eager mode without temporaries: the same arithmetic written into
    preallocated buffers (fresh multi-megabyte tensors cost page faults on the CPU). ``p`` is
    updated in place."""
    un = torch.empty_like(u)
    t2 = torch.empty_like(u)
    rho = torch.empty_like(rho_c)
    gx, gy = torch.zeros_like(u), torch.zeros_like(u)  # the last column / row stays 0
    ng = torch.empty_like(u)
    px, py = p[:, :2], p[:, 2:]
    for _ in range(steps):
        torch.mul(grad_i, u, out=t2)
        torch.sum(t2, 1, keepdim=True, out=rho)
        rho.add_(rho_c).mul_(neg_inv_grad).clamp_(-lt, lt)
        torch.addcmul(u, rho, grad_i, out=un)  # v, the thresholding step
        un.add_(px, alpha=theta)  # + theta div p
        un[..., 1:].sub_(px[..., :-1], alpha=theta)
        un.add_(py, alpha=theta)
        un[..., 1:, :].sub_(py[..., :-1, :], alpha=theta)
        torch.sub(un[..., 1:], un[..., :-1], out=gx[..., :-1])
        torch.sub(un[..., 1:, :], un[..., :-1, :], out=gy[..., :-1, :])
        torch.hypot(gx, gy, out=ng)
        ng.mul_(taut).add_(1.0)
        px.add_(gx, alpha=taut).div_(ng)
        py.add_(gy, alpha=taut).div_(ng)
        u, un = un, u
    torch.sub(u, un, out=t2)
    return u, p, t2.mul_(t2).sum((1, 2, 3))


COMPILE_MIN_PIXELS = 1_000_000  # compile="auto": batches of at least this many pixels (N*H*W)
_COMPILED: dict[str, object] = {}


def _with_fallback(name: str, compiled, eager):
    """Call ``compiled``; if compiling fails (no C++ toolchain, unsupported backend), use
    ``eager`` from then on."""
    def call(*args):
        if _COMPILED.get("failed"):
            return eager(*args)
        try:
            return compiled(*args)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: stay correct, run eager
            import warnings

            warnings.warn(f"torch.compile of TV-L1 {name} failed ({type(exc).__name__}); running eager",
                          RuntimeWarning, stacklevel=2)
            _COMPILED["failed"] = True
            return eager(*args)
    return call


def _kernels(compile_step: bool):
    """(block, median) functions: eager, or ``torch.compile``-d with dynamic shapes.

    Compiled, the step is one function without temporaries to manage (inductor fuses it);
    eager, the step writes into preallocated buffers. The median is the same exact selection
    network either way; the steps differ only by float rounding order.
    """
    if not compile_step:
        return _block_inplace, median_filter
    if "block" not in _COMPILED:
        _COMPILED["block"] = _with_fallback("iteration", torch.compile(_block, dynamic=True), _block_inplace)
        core = _with_fallback("median", torch.compile(_median_core, dynamic=True), _median_core)

        def median(x: torch.Tensor, k: int) -> torch.Tensor:
            return core(_pad_for_median(x, k), k) if k in (3, 5) else median_unfold(x, k)

        _COMPILED["median"] = median
    return _COMPILED["block"], _COMPILED["median"]


def _solve_warp(i0, i1, gi1, u, p, prm: TVL1Params, block, median):
    """All iterations of one warp for a batch; converged pairs leave the batch."""
    i1w = _warp(torch.cat([i1, gi1], 1), u, prm.interpolation)
    i1w, grad_i = i1w[:, :1], i1w[:, 1:].contiguous()
    grad2 = (grad_i * grad_i).sum(1, keepdim=True)
    neg_inv_grad = torch.where(grad2 > 1e-10, -1.0 / grad2.clamp_min(1e-10), torch.zeros_like(grad2))
    rho_c = i1w - (grad_i * u).sum(1, keepdim=True) - i0
    lt, taut = prm.lam * prm.theta, prm.tau / prm.theta
    limit = prm.epsilon ** 2 * u.shape[-1] * u.shape[-2]
    active = torch.arange(u.shape[0], device=u.device)
    u_out, p_out = u.clone(), p.clone()
    for _ in range(prm.outer_iterations):
        if active.numel() == 0:
            break
        if prm.median_filtering > 1:
            u = median(u, prm.median_filtering)
        n = 0
        while n < prm.inner_iterations and active.numel():
            steps = min(prm.check_every, prm.inner_iterations - n)
            u, p, err = block(u, p, grad_i, rho_c, neg_inv_grad, lt, prm.theta, taut, steps)
            n += steps
            done = err <= limit
            if bool(done.any()):
                idx = active[done]
                u_out[idx], p_out[idx] = u[done], p[done]
                keep = ~done
                active = active[keep]
                u, p, grad_i, rho_c, neg_inv_grad = (u[keep], p[keep], grad_i[keep], rho_c[keep],
                                                     neg_inv_grad[keep])
    if active.numel():
        u_out[active], p_out[active] = u, p
    return u_out, p_out


def tvl1_flow(prev, nxt, preset: str = "default", device: str | torch.device | None = None,
              batch_size: int | None = None, **params) -> torch.Tensor:
    """TV-L1 flow ``float32 [N,2,H,W]`` from ``prev`` to ``nxt`` (each gray float/uint8 or RGB uint8).

    ``preset`` picks :data:`PRESETS`; ``params`` override single fields of
    :class:`TVL1Params` (``lam``, ``warps``, ...). ``batch_size`` bounds how many pairs are
    solved together (all by default). Runs on ``device`` (default: where the input is).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown tvl1 preset {preset!r}; choose one of {sorted(PRESETS)}")
    unknown = set(params) - set(TVL1Params.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown tvl1 parameters {sorted(unknown)}; "
                         f"known: {sorted(TVL1Params.__dataclass_fields__)}")
    prm = replace(PRESETS[preset], **params)
    if device is None:
        device = prev.device if isinstance(prev, torch.Tensor) else "cpu"
    i0_all, i1_all = gray_float(prev, device), gray_float(nxt, device)
    if i0_all.shape != i1_all.shape:
        raise ValueError(f"prev and next differ in shape: {tuple(i0_all.shape)} vs {tuple(i1_all.shape)}")
    n = i0_all.shape[0]
    bs = n if not batch_size else batch_size
    outs = [_tvl1_batch(i0_all[s:s + bs], i1_all[s:s + bs], prm) for s in range(0, n, max(bs, 1))]
    if not outs:
        return torch.zeros((0, 2, *i0_all.shape[1:]), dtype=torch.float32, device=i0_all.device)
    return torch.cat(outs)


@torch.no_grad()
def _tvl1_batch(i0: torch.Tensor, i1: torch.Tensor, prm: TVL1Params) -> torch.Tensor:
    compile_step = prm.compile
    if compile_step is None:  # auto: worth the one-off compile time only for large batches
        compile_step = i0.numel() >= COMPILE_MIN_PIXELS
    block, median = _kernels(compile_step)
    pyr0, pyr1 = [i0[:, None]], [i1[:, None]]
    for _s in range(1, prm.scales):
        size = (round(pyr0[-1].shape[-2] * prm.scale_step), round(pyr0[-1].shape[-1] * prm.scale_step))
        if min(size) < prm.min_size:
            break
        pyr0.append(_resize(pyr0[-1], size))
        pyr1.append(_resize(pyr1[-1], size))
    u = None
    for level in range(len(pyr0) - 1, -1, -1):
        a, b = pyr0[level], pyr1[level]
        size = a.shape[-2:]
        if u is None:
            u = a.new_zeros((a.shape[0], 2, *size))
        else:
            u = _resize(u, tuple(size)) / prm.scale_step
        p = a.new_zeros((a.shape[0], 4, *size))
        gb = _centred_gradient(b)
        for _w in range(prm.warps):
            u, p = _solve_warp(a, b, gb, u, p, prm, block, median)
    return u.contiguous()
