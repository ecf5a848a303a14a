"""The regularisers of spatiotemporal activation maximisation (Feichtenhofer, Pinz, Wildes &
Zisserman, "What have we learned from deep representations for action recognition?", CVPR
2018; thesis ch. 6), after Mahendran & Vedaldi (IJCV 2016).

Inputs are ``x [C, T, H, W]`` in 8-bit units (see :mod:`deepvideo.visualize.maximize`).

- range ``R_B(x) = sum_{t,i,j} (sum_d x_d^2)^(alpha/2)`` if every pixel norm is at most ``B``,
  else infinite (enforced by projecting onto the ball of radius ``B``; the penalty itself is
  the finite sum), ``B = 160``, ``alpha = 3``, weight ``lambda_B = 1 / (H W B^alpha)``;
- spatial total variation ``TV2D = sum ((x(i+1,j) - x(i,j))^2 + (x(i,j+1) - x(i,j))^2)^(beta/2)``;
- isotropic spatiotemporal ``TV3D(kappa)``: ``(dx_i^2 + dx_j^2 + kappa dx_t^2)^(beta/2)``;
- anisotropic ``TV2D1D(chi)``: ``(dx_i^2 + dx_j^2)^(beta/2) + chi |dx_t|^beta`` (``chi = 0``: no
  temporal constraint);
- weight ``lambda_TV = 1 / (H W V^beta)`` with ``V = B / 6.5``; the flow stream's TV weight is
  ``x10``. ``beta = 2`` (the chapter's squared differences; with ``beta = 2`` TV3D and
  TV2D1D differ only in their weights). Swept in the chapter: ``kappa`` in {10, 5, 2.5, 1},
  ``chi`` in {10, 5, 1, 0}.
"""

from __future__ import annotations

import torch

B = 160.0
ALPHA = 3.0
BETA = 2.0
V_RATIO = 6.5
FLOW_TV_FACTOR = 10.0
KAPPAS = (10.0, 5.0, 2.5, 1.0)
CHIS = (10.0, 5.0, 1.0, 0.0)
REGULARIZERS = ("tv2d", "tv3d", "tv2d1d")


def range_weight(height: int, width: int, bound: float = B, alpha: float = ALPHA) -> float:
    """``lambda_B = 1 / (H W B^alpha)``."""
    return 1.0 / (height * width * bound**alpha)


def tv_weight(height: int, width: int, bound: float = B, beta: float = BETA, flow: bool = False) -> float:
    """``lambda_TV = 1 / (H W V^beta)``, ``V = B / 6.5``; x10 for the flow stream."""
    v = bound / V_RATIO
    return (FLOW_TV_FACTOR if flow else 1.0) / (height * width * v**beta)


def range_penalty(x: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    """``R_B`` without its infinite part: ``sum (sum_d x_d^2)^(alpha/2)`` over ``x [C, T, H, W]``."""
    return (x.pow(2).sum(0) + 1e-12).pow(alpha / 2).sum()


def project_range(x: torch.Tensor, bound: float = B) -> torch.Tensor:
    """``x`` with every pixel vector (over channels, dim 0) scaled into the ball of radius ``bound``."""
    norm = x.pow(2).sum(0, keepdim=True).sqrt()
    return x * (bound / norm.clamp_min(bound))


def _diffs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared forward differences along H, W, T of ``[C, T, H, W]``, summed over channels, on
    the common ``[T-1, H-1, W-1]`` grid (``T = 1``: no temporal term)."""
    di = (x[:, :, 1:, :-1] - x[:, :, :-1, :-1]).pow(2).sum(0)
    dj = (x[:, :, :-1, 1:] - x[:, :, :-1, :-1]).pow(2).sum(0)
    dt = (x[:, 1:, :-1, :-1] - x[:, :-1, :-1, :-1]).pow(2).sum(0)
    return di, dj, dt


def tv2d(x: torch.Tensor, beta: float = BETA) -> torch.Tensor:
    di, dj, _ = _diffs(x)
    return (di + dj + 1e-12).pow(beta / 2).sum()


def tv3d(x: torch.Tensor, kappa: float, beta: float = BETA) -> torch.Tensor:
    di, dj, dt = _diffs(x)
    if x.shape[1] < 2:
        return tv2d(x, beta)
    moving = (di[:-1] + dj[:-1] + kappa * dt + 1e-12).pow(beta / 2).sum()
    return moving + (di[-1] + dj[-1] + 1e-12).pow(beta / 2).sum()  # the last frame: no dt


def tv2d1d(x: torch.Tensor, chi: float, beta: float = BETA) -> torch.Tensor:
    di, dj, dt = _diffs(x)
    spatial = (di + dj + 1e-12).pow(beta / 2).sum()
    if x.shape[1] < 2 or chi == 0:
        return spatial
    return spatial + chi * (dt + 1e-12).pow(beta / 2).sum()


def total_variation(
    x: torch.Tensor, reg: str, kappa: float = 1.0, chi: float = 1.0, beta: float = BETA
) -> torch.Tensor:
    """The TV term named ``reg`` (one of :data:`REGULARIZERS`)."""
    if reg == "tv2d":
        return tv2d(x, beta)
    if reg == "tv3d":
        return tv3d(x, kappa, beta)
    if reg == "tv2d1d":
        return tv2d1d(x, chi, beta)
    raise ValueError(f"unknown regulariser {reg!r}; choose one of {', '.join(REGULARIZERS)}")


def temporal_variation(x: torch.Tensor) -> float:
    """Mean ``|dx/dt|`` of ``[C, T, H, W]`` (0 for a single frame): how fast an input changes."""
    if x.shape[1] < 2:
        return 0.0
    return float((x[:, 1:] - x[:, :-1]).abs().mean())
