"""Continuous-domain Fourier operations of C-COT (Danelljan et al., ECCV 2016) as used by ECO
(Danelljan et al., CVPR 2017).

A feature map with ``N`` samples per dimension is a function on the period ``T`` (the image
sample, in sample pixels) through the interpolation operator ``J{x}(t) = sum_n x[n] b(t - t_n)``;
its Fourier coefficients are ``X[k] B(k) exp(-i 2 pi k t_0 / T)`` with ``X`` the DFT and ``B`` the
Fourier series coefficients of the cubic convolution kernel stretched to the cell size.
Coordinates here are centred on the image sample (the target's centre is ``t = 0``).

Real signals have Hermitian-symmetric coefficients, so only the half plane ``kx >= 0`` is
stored: tensors ``[..., 2 Ky + 1, Kx + 1]`` with rows ``ky = -Ky..Ky`` and columns
``kx = 0..Kx``. :func:`inner` is the real inner product of the full planes they stand for.
"""

from __future__ import annotations

import math

import torch


def cubic_kernel(x: torch.Tensor, a: float) -> torch.Tensor:
    """Keys' cubic convolution kernel with parameter ``a`` (support ``|x| < 2``)."""
    x = x.abs()
    inner = (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
    outer = a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
    return torch.where(x <= 1, inner, torch.where(x < 2, outer, torch.zeros_like(x)))


def cubic_kernel_fourier(f: torch.Tensor, a: float) -> torch.Tensor:
    """Continuous Fourier transform ``B(f) = integral b(x) exp(-i 2 pi f x) dx`` of
    :func:`cubic_kernel` (real, since ``b`` is even), in closed form."""
    f = f.to(torch.float64)
    w = 2 * math.pi * f
    safe = torch.where(f == 0, torch.ones_like(f), f)
    ws = 2 * math.pi * safe
    num = (6 * (1 - torch.cos(ws)) + 3 * a * (1 - torch.cos(2 * ws))
           - (6 + 8 * a) * (ws / 2) * torch.sin(ws) - a * ws * torch.sin(2 * ws))
    value = num / (ws ** 4 / 4)
    return torch.where(w == 0, torch.ones_like(f), value)


def frequencies(size: int) -> torch.Tensor:
    """The centred frequency indices ``-K..K`` of a dimension with ``size`` samples
    (``K = size // 2``; an even size gets its Nyquist term split between ``+-K``)."""
    half = size // 2
    return torch.arange(-half, half + 1, dtype=torch.float64)


def interpolation_coefficients(size: int, a: float, centering: bool = True) -> torch.Tensor:
    """Fourier coefficients (over ``-K..K``) of the interpolation kernel for ``size`` samples on
    the period: ``(1/N) B(k/N)``, times the phase placing sample ``n`` at the centre of its cell,
    ``t_n = (n + 1/2) T/N - T/2``, when ``centering``."""
    k = frequencies(size)
    coeff = cubic_kernel_fourier(k / size, a) / size
    offset = (0.5 if centering else 0.0) / size - 0.5      # t_0 / T
    return coeff * torch.exp(-2j * math.pi * k * offset)


def centred_dft(x: torch.Tensor) -> torch.Tensor:
    """Half-plane DFT ``[..., 2Ky+1, Kx+1]`` of real maps ``x [..., Ny, Nx]`` (rows ``-Ky..Ky``,
    columns ``0..Kx``); an even size's Nyquist term is split in two halves at ``+-K``."""
    ny, nx = x.shape[-2:]
    xf = torch.fft.rfft2(x)
    if nx % 2 == 0:
        xf = torch.cat([xf[..., :-1], xf[..., -1:] / 2], dim=-1)
    xf = torch.fft.fftshift(xf, dim=-2)
    if ny % 2 == 0:
        nyquist = xf[..., :1, :] / 2
        xf = torch.cat([nyquist, xf[..., 1:, :], nyquist], dim=-2)
    return xf


def half_weights(shape: tuple[int, int], dtype=torch.float64) -> torch.Tensor:
    """Weights turning a half-plane sum into the full-plane one: 2, and 1 on column ``kx = 0``."""
    weights = torch.full(shape, 2.0, dtype=dtype)
    weights[:, 0] = 1.0
    return weights


def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real inner product ``Re sum conj(a) b`` over the full planes that half planes ``a``, ``b``
    stand for (summed over every leading dimension)."""
    prod = (a.conj() * b).real
    return 2 * prod.sum() - prod[..., 0].sum()


def inner_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """:func:`inner` of each ``a[i]`` with ``b`` (one matrix-vector product)."""
    weighted = b * half_weights(tuple(b.shape[-2:]), b.real.dtype)
    rows = torch.view_as_real(a.contiguous()).flatten(1)
    return rows @ torch.view_as_real(weighted.contiguous()).flatten()


def full_plane(xf: torch.Tensor) -> torch.Tensor:
    """The full plane ``[..., 2Ky+1, 2Kx+1]`` of a half plane, using ``X[-k] = conj(X[k])``."""
    mirror = torch.flip(xf[..., 1:], dims=(-2, -1)).conj()
    return torch.cat([mirror, xf], dim=-1)


def pad_to(xf: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A half plane zero-padded (centred in ``ky``, at high ``kx``) to ``shape``."""
    dy = (shape[0] - xf.shape[-2]) // 2
    dx = shape[1] - xf.shape[-1]
    return torch.nn.functional.pad(xf, (0, dx, dy, dy))


def crop_to(xf: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The low-frequency part of a half plane with ``shape`` (inverse of :func:`pad_to`)."""
    dy = (xf.shape[-2] - shape[0]) // 2
    return xf[..., dy:dy + shape[0], :shape[1]]


def gaussian_label(shape: tuple[int, int], sigma: tuple[float, float],
                   period: float) -> torch.Tensor:
    """Half-plane Fourier coefficients of the periodic Gaussian label centred at ``t = 0`` with
    standard deviations ``sigma`` (y, x), on a period ``period``:
    ``sqrt(2 pi) sigma / T exp(-2 (pi sigma k / T)^2)`` per dimension."""
    ky = frequencies(shape[0])
    kx = torch.arange(shape[1], dtype=torch.float64)
    gy = math.sqrt(2 * math.pi) * sigma[0] / period * torch.exp(
        -2 * (math.pi * sigma[0] * ky / period) ** 2)
    gx = math.sqrt(2 * math.pi) * sigma[1] / period * torch.exp(
        -2 * (math.pi * sigma[1] * kx / period) ** 2)
    return (gy[:, None] * gx[None, :]).to(torch.complex128)


def shift_sample(xf: torch.Tensor, shift: tuple[float, float], period: float) -> torch.Tensor:
    """Coefficients of ``x(t + shift)`` (a translation by ``-shift``) for half planes ``xf``."""
    ky = frequencies(xf.shape[-2]).to(xf.real.dtype)
    kx = torch.arange(xf.shape[-1], dtype=xf.real.dtype)
    py = torch.exp(2j * math.pi * ky * shift[0] / period)
    px = torch.exp(2j * math.pi * kx * shift[1] / period)
    return xf * (py[:, None] * px[None, :]).to(xf.dtype)


def sample_on_grid(sf: torch.Tensor, size: int) -> torch.Tensor:
    """The real function with half-plane coefficients ``sf [..., 2K+1, K+1]`` at the points
    ``t = m T / size`` (``m = 0..size-1``) of each dimension; ``size >= 2K + 1``, odd."""
    ky_half = sf.shape[-2] // 2
    grid = torch.zeros(sf.shape[:-2] + (size, size // 2 + 1), dtype=sf.dtype)
    grid[..., :ky_half + 1, :sf.shape[-1]] = sf[..., ky_half:, :]
    grid[..., size - ky_half:, :sf.shape[-1]] = sf[..., :ky_half, :]
    return torch.fft.irfft2(grid, s=(size, size)) * (size * size)


def _value_gradient_hessian(weighted: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor,
                            t: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Value, gradient and Hessian at ``t`` of ``Re sum weighted[ky, kx] e^{i (ky ty + kx tx)}``
    (``ky``, ``kx`` in radians per unit)."""
    ey = torch.exp(1j * ky * t[0])
    ex = torch.exp(1j * kx * t[1])
    dy, dx = ey * 1j * ky, ex * 1j * kx
    value = (ey @ weighted @ ex).real
    grad = torch.stack([(dy @ weighted @ ex).real, (ey @ weighted @ dx).real])
    hyy = (dy * 1j * ky) @ weighted @ ex
    hxx = ey @ weighted @ (dx * 1j * kx)
    hxy = dy @ weighted @ dx
    hess = torch.stack([torch.stack([hyy.real, hxy.real]), torch.stack([hxy.real, hxx.real])])
    return float(value), grad, hess


def newton_maximum(sf: torch.Tensor, start: tuple[float, float], period: float,
                   iterations: int, max_offset: float = math.inf
                   ) -> tuple[tuple[float, float], float]:
    """Refine a maximum of the real trigonometric polynomial with half-plane coefficients
    ``sf [2Ky+1, Kx+1]`` by Newton's method from ``start`` (y, x) (C-COT's detection step).
    A step is taken only where the function is locally concave, raises the value and stays
    within ``max_offset`` of ``start`` (per coordinate); returns the point and its value."""
    ky = frequencies(sf.shape[-2]).to(sf.real.dtype) * (2 * math.pi / period)
    kx = torch.arange(sf.shape[-1], dtype=sf.real.dtype) * (2 * math.pi / period)
    weighted = sf * half_weights(tuple(sf.shape[-2:]), sf.real.dtype)
    origin = torch.tensor(start, dtype=sf.real.dtype)
    t = origin
    value, grad, hess = _value_gradient_hessian(weighted, ky, kx, t)
    for _ in range(iterations):
        if torch.linalg.det(hess) <= 0 or hess[0, 0] >= 0:      # not near a maximum
            break
        candidate = t - torch.linalg.solve(hess, grad)
        if float((candidate - origin).abs().max()) > max_offset:
            break
        new_value, new_grad, new_hess = _value_gradient_hessian(weighted, ky, kx, candidate)
        if new_value < value:
            break
        t, value, grad, hess = candidate, new_value, new_grad, new_hess
    return (float(t[0]), float(t[1])), value


def regularization_filter(period: int, target_size: tuple[float, float], window_min: float,
                          window_edge: float, power: int,
                          sparsity_threshold: float) -> torch.Tensor:
    """Fourier coefficients (full plane, small, real and even) of C-COT's spatial
    regularisation window ``w(t) = (edge - min) (|ty/(h/2)|^p + |tx/(w/2)|^p) + min`` over the
    sample of ``period`` pixels: coefficients below ``sparsity_threshold`` times the largest are
    dropped, and the constant term is corrected so the window's minimum stays ``min``."""
    t = torch.arange(period, dtype=torch.float64) - (period - 1) / 2
    ty = (t / (target_size[0] / 2)).abs() ** power
    tx = (t / (target_size[1] / 2)).abs() ** power
    window = (window_edge - window_min) * (ty[:, None] + tx[None, :]) + window_min
    wf = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(window))).real / period ** 2
    wf[wf.abs() < sparsity_threshold * wf.abs().max()] = 0
    spatial = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(wf))).real * period ** 2
    centre = period // 2
    wf[centre, centre] -= spatial.min() - window_min
    rows = torch.nonzero(wf.abs().sum(1)).flatten()
    cols = torch.nonzero(wf.abs().sum(0)).flatten()
    ry = int(max(centre - rows.min(), rows.max() - centre))
    rx = int(max(centre - cols.min(), cols.max() - centre))
    return wf[centre - ry:centre + ry + 1, centre - rx:centre + rx + 1].contiguous()


def hann_window(size: int) -> torch.Tensor:
    """A Hann window of ``size`` samples that is non-zero at both ends (the ``size + 2``
    window without its end points)."""
    n = torch.arange(1, size + 1, dtype=torch.float64)
    return 0.5 - 0.5 * torch.cos(2 * math.pi * n / (size + 1))
