"""Non-local blocks for space-time feature maps.

Wang et al., "Non-local Neural Networks", CVPR 2018: ``y_i = 1/C(x) Σ_j f(x_i, x_j) g(x_j)``
and ``z = W_z y + x``. θ, φ, g are 1×1×1 convs to half the channels; φ and g may be max-pooled
spatially (the paper's subsampling trick). Pairwise functions:

- ``"embedded_gaussian"``: ``f = exp(θ(x_i)ᵀ φ(x_j))``, normalized by a softmax over j;
- ``"dot_product"``: ``f = θ(x_i)ᵀ φ(x_j)``, normalized by N, the number of positions j.

W_z is followed by a norm whose scale starts at zero, so a new block is the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.nn.conv import NormBuilder, norm_builder


class NonLocal3d(nn.Module):
    def __init__(
        self,
        channels: int,
        inner: int | None = None,
        mode: str = "embedded_gaussian",
        pool: tuple[int, int, int] | None = (1, 2, 2),
        norm: NormBuilder | None = None,
        scale: bool = True,
    ) -> None:
        super().__init__()
        if mode not in ("embedded_gaussian", "dot_product"):
            raise ValueError(f"unknown non-local mode {mode!r}: use 'embedded_gaussian' or 'dot_product'")
        inner = inner or channels // 2
        self.mode = mode
        self.scale = scale
        self.theta = nn.Conv3d(channels, inner, 1)
        self.phi = nn.Conv3d(channels, inner, 1)
        self.g = nn.Conv3d(channels, inner, 1)
        self.pool = nn.MaxPool3d(pool, pool) if pool and pool != (1, 1, 1) else nn.Identity()
        self.out = nn.Conv3d(inner, channels, 1)
        self.norm = (norm or norm_builder("bn"))(channels)
        if hasattr(self.norm, "weight") and self.norm.weight is not None:
            nn.init.zeros_(self.norm.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = x.shape
        theta = self.theta(x).flatten(2)  # [N, C', THW]
        phi = self.phi(self.pool(x)).flatten(2)  # [N, C', T'H'W']
        g = self.g(self.pool(x)).flatten(2)
        f = torch.matmul(theta.transpose(1, 2), phi)  # [N, THW, T'H'W']
        if self.mode == "embedded_gaussian":
            if self.scale:
                f = f * theta.shape[1] ** -0.5
            f = f.softmax(dim=-1)
        else:
            f = f / phi.shape[-1]
        y = torch.matmul(f, g.transpose(1, 2)).transpose(1, 2).reshape(n, -1, t, h, w)
        return x + self.norm(self.out(y))
