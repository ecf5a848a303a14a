"""Filter learning of ECO (Danelljan et al., CVPR 2017, section 3.1) in the Fourier domain.

With the projection ``P`` fixed the filter minimises (C-COT's objective with ECO's factorized
operator)

    E(f) = sum_j alpha_j || sum_c f_c (P^T z_j)_c - y ||^2 + sum_c || w * f_c ||^2

whose normal equations ``(A^H Gamma A + W^H W) f = A^H Gamma y`` are solved by preconditioned
conjugate gradient (:func:`conjugate_gradient`, warm-started across updates, Polak-Ribiere
directions, the previous direction damped by a forgetting factor). In the first frame ``f`` and
``P`` are learned jointly by Gauss-Newton: each step linearises the bilinear residual around
``(f_i, P_i)`` and solves for ``(f, dP)`` with the extra term ``lambda ||P_i + dP||^2``
(:class:`JointSystem`). ``*`` in the Fourier domain is a convolution with the small
regularisation filter ``w``.

Vectors are lists of tensors: complex half planes (inner product :func:`fourier.inner`) and
real matrices (plain dot product).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from deepvideo.track.eco.fourier import crop_to, full_plane, half_weights, inner, pad_to

Vector = list[torch.Tensor]


def dot(u: Vector, v: Vector) -> torch.Tensor:
    """The real inner product of two vectors (lists of tensors)."""
    return sum(inner(a, b) if a.is_complex() else (a * b).sum() for a, b in zip(u, v, strict=True))


def conjugate_gradient(apply_a: Callable[[Vector], Vector], b: Vector, x: Vector,
                       precondition: Callable[[Vector], Vector], iterations: int,
                       state: tuple | None = None, forget: float = 1.0) -> tuple[Vector, tuple]:
    """``iterations`` steps of preconditioned CG on ``A x = b`` from ``x``. ``state`` (the last
    direction and its ``rho`` from a previous call) continues an earlier solve of a slowly
    changing system; its ``rho`` is divided by ``forget`` (< 1 damps the old direction).
    Returns the solution and the state to continue from."""
    p, rho_old = state if state is not None else (None, None)
    if rho_old is not None:
        rho_old = rho_old / forget
    ax = apply_a(x)
    r = [bi - ai for bi, ai in zip(b, ax, strict=True)]
    r_old = None
    for _ in range(iterations):
        z = precondition(r)
        rho = dot(r, z)
        if p is None or rho_old is None or rho_old == 0:
            p = z
        else:
            if r_old is None:                       # continuing a previous solve
                beta = rho / rho_old
            else:                                   # Polak-Ribiere
                beta = dot(z, [a - c for a, c in zip(r, r_old, strict=True)]) / rho_old
            p = [zi + max(float(beta), 0.0) * pi for zi, pi in zip(z, p, strict=True)]
        q = apply_a(p)
        denom = dot(p, q)
        if denom <= 0:
            break
        alpha = rho / denom
        x = [xi + alpha * pi for xi, pi in zip(x, p, strict=True)]
        r_old = r
        r = [ri - alpha * qi for ri, qi in zip(r, q, strict=True)]
        rho_old = rho
    return x, (p, rho_old)


class Regularization:
    """``W^H W`` for the regularisation filter ``w`` (full plane, small, real and even): a
    'same' convolution of the full plane with ``w * w``, done exactly by zero-padded FFTs."""

    def __init__(self, reg_filter: torch.Tensor):
        kernel = reg_filter[None, None]
        pad = (reg_filter.shape[0] - 1, reg_filter.shape[1] - 1)
        self.kernel = torch.nn.functional.conv2d(kernel, kernel, padding=pad)[0, 0]
        self.energy = float(self.kernel[self.kernel.shape[0] // 2, self.kernel.shape[1] // 2])
        self._spectra: dict[tuple, torch.Tensor] = {}

    def _spectrum(self, size: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
        key = (size, dtype)
        if key not in self._spectra:
            self._spectra[key] = torch.fft.fft2(self.kernel.to(dtype), s=size)
        return self._spectra[key]

    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        """``W^H W f`` for half planes ``f [C, H, W]``."""
        kx = f.shape[-1] - 1
        full = full_plane(f)
        kh, kw = self.kernel.shape
        height, width = full.shape[-2:]
        size = (height + kh - 1, width + kw - 1)
        out = torch.fft.ifft2(torch.fft.fft2(full, s=size) * self._spectrum(size, f.real.dtype))
        return out[..., kh // 2:kh // 2 + height, kw // 2 + kx:kw // 2 + width]


class FilterSystem:
    """The normal equations of ``E(f)`` for fixed projected samples (per block ``[J, C, H, W]``),
    their weights ``alpha [J]``, the label ``y`` and the regularisation operator. The data term
    is a batch of small matrix products, one per frequency."""

    def __init__(self, samples: Vector, weights: torch.Tensor, label: torch.Tensor,
                 reg: Regularization):
        self.samples = samples
        self.weights = weights.to(label.real.dtype)
        self.label = label
        self.reg = reg
        self.shape = tuple(label.shape[-2:])
        # per frequency: the samples as a [J, C] matrix, and its adjoint
        self.by_frequency = [z.permute(2, 3, 0, 1).flatten(0, 1).contiguous() for z in samples]
        self.adjoints = [m.conj().transpose(1, 2).contiguous() for m in self.by_frequency]

    def _residual(self, filters: Vector) -> torch.Tensor:
        """``alpha_j sum_blocks pad(sum_c f_c z_jc)`` as ``[H, W, J]``."""
        total = torch.zeros(self.shape + (len(self.weights),), dtype=self.label.dtype)
        for f, m in zip(filters, self.by_frequency, strict=True):
            height, width = f.shape[-2:]
            dy = (self.shape[0] - height) // 2
            scores = torch.bmm(m, f.permute(1, 2, 0).reshape(height * width, -1, 1))
            total[dy:dy + height, :width] += scores.reshape(height, width, -1)
        return total * self.weights.to(total.dtype)

    def apply(self, filters: Vector) -> Vector:
        residual = self._residual(filters)
        out = []
        for f, adjoint in zip(filters, self.adjoints, strict=True):
            channels, height, width = f.shape
            dy = (self.shape[0] - height) // 2
            r = residual[dy:dy + height, :width].reshape(height * width, -1, 1)
            data = torch.bmm(adjoint, r).reshape(height, width, channels).permute(2, 0, 1)
            out.append(data + self.reg(f))
        return out

    def rhs(self) -> Vector:
        out = []
        for z in self.samples:
            y = crop_to(self.label, tuple(z.shape[-2:]))
            weighted = (z.conj() * self.weights.to(z.dtype)[:, None, None, None]).sum(0)
            out.append(weighted * y)
        return out

    def preconditioner(self, data_param: float, reg_param: float) -> Callable[[Vector], Vector]:
        """ECO's diagonal preconditioner: the sample energy blended with its mean
        (``data_param``), mixed with the regularisation energy (``reg_param``)."""
        reg_energy = self.reg.energy
        diagonals = []
        for z in self.samples:
            energy = ((z.real ** 2 + z.imag ** 2) * self.weights[:, None, None, None]).sum(0)
            data = data_param * energy + (1 - data_param) * energy.mean()
            diagonals.append((1 - reg_param) * data + reg_param * reg_energy)
        return lambda v: [vi / d for vi, d in zip(v, diagonals, strict=True)]


class JointSystem:
    """One Gauss-Newton step of the first frame: unknowns ``[f_1..f_B, dP_1..dP_B]`` for the
    unprojected sample ``z`` (per block ``[D, H, W]``), projections ``P`` (``[D, C]``) and the
    linearisation point ``f0``."""

    def __init__(self, sample: Vector, projections: Vector, f0: Vector, label: torch.Tensor,
                 reg: Regularization, projection_reg: float):
        self.sample = sample
        self.projections = projections
        self.f0 = f0
        self.label = label
        self.reg = reg
        self.projection_reg = projection_reg
        self.shape = tuple(label.shape[-2:])
        self.projected = [project(z, p) for z, p in zip(sample, projections, strict=True)]
        self.blocks = len(sample)

    def _adjoint(self, residual: torch.Tensor) -> Vector:
        grads_f, grads_p = [], []
        for z, zp, f0 in zip(self.sample, self.projected, self.f0, strict=True):
            r = crop_to(residual, tuple(z.shape[-2:]))
            grads_f.append(zp.conj() * r)
            weighted = z.conj() * r * half_weights(tuple(z.shape[-2:]), z.real.dtype)
            grads_p.append(torch.einsum("dhw,chw->dc", weighted, f0.conj()).real)
        return grads_f + grads_p

    def apply(self, u: Vector) -> Vector:
        filters, deltas = u[:self.blocks], u[self.blocks:]
        residual = sum(pad_to((f * zp).sum(0) + (f0 * project(z, dp)).sum(0), self.shape)
                       for f, dp, z, zp, f0 in zip(filters, deltas, self.sample,
                                                   self.projected, self.f0, strict=True))
        out = self._adjoint(residual)
        for b in range(self.blocks):
            out[b] = out[b] + self.reg(filters[b])
            out[self.blocks + b] = out[self.blocks + b] + self.projection_reg * deltas[b]
        return out

    def rhs(self) -> Vector:
        out = self._adjoint(self.label)
        for b in range(self.blocks):
            out[self.blocks + b] = out[self.blocks + b] - self.projection_reg * self.projections[b]
        return out

    def preconditioner(self, data_param: float, reg_param: float) -> Callable[[Vector], Vector]:
        """The filter part as in :meth:`FilterSystem.preconditioner`; the projection part is
        the exact diagonal of its block of the normal equations."""
        reg_energy = self.reg.energy
        diagonals = []
        for zp in self.projected:
            energy = zp.abs() ** 2
            data = data_param * energy + (1 - data_param) * energy.mean()
            diagonals.append((1 - reg_param) * data + reg_param * reg_energy)
        for z, f0 in zip(self.sample, self.f0, strict=True):
            weighted = z.abs() ** 2 * half_weights(tuple(z.shape[-2:]), z.real.dtype)
            diagonals.append(torch.einsum("dhw,chw->dc", weighted, f0.abs() ** 2)
                             + self.projection_reg)
        return lambda v: [vi / d for vi, d in zip(v, diagonals, strict=True)]


def project(z: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """``P^T z`` for a sample block ``z [..., D, H, W]`` and ``P [D, C]``: ``[..., C, H, W]``."""
    flat = torch.matmul(projection.T.to(z.dtype), z.flatten(-2))
    return flat.unflatten(-1, tuple(z.shape[-2:]))


def pca_projection(features: torch.Tensor, dim: int) -> torch.Tensor:
    """ECO's initial projection: the ``dim`` leading principal directions ``[D, dim]`` of a
    feature map ``[D, H, W]`` (its channels' mean removed)."""
    if dim > features.shape[0]:
        raise ValueError(f"projection: cannot compress {features.shape[0]} channels to {dim}")
    flat = features.flatten(1)
    flat = flat - flat.mean(1, keepdim=True)
    u, _, _ = torch.linalg.svd(flat @ flat.T)
    return u[:, :dim].contiguous()
