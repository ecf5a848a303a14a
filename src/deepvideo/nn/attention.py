"""Self-attention over space-time tokens.

- Vaswani et al. 2017 / Dosovitskiy et al. 2021 (ViT): pre-norm blocks
  ``x + MHSA(LN(x))`` then ``x + MLP(LN(x))``.
- Bertasius et al., "Is Space-Time Attention All You Need for Video Understanding?"
  (TimeSformer), ICML 2021: attention schemes over a clip of T×H×W patch tokens and a
  class token —

  * ``"space"`` (S): each frame attends within itself;
  * ``"joint"`` (ST): all T·H·W tokens attend to each other;
  * ``"divided"`` (T+S): temporal attention (same patch position across frames), then
    spatial attention (within the frame), each with its own weights;
  * ``"sparse"`` (L+G): local attention within spatial windows of H/2 × W/2 over all frames,
    then global attention among patches taken with stride 2 over the whole clip;
  * ``"axial"`` (T+W+H): attention along time, then along width, then along height.

  In every factorized step the class token joins each group of tokens and its outputs are
  averaged over the groups.

The blocks take a token ``norm`` (default LayerNorm with eps 1e-6, see
:func:`deepvideo.nn.conv.resolve_token_norm`) and the MLP's ``act`` (default GELU) as a kind
name or a builder, as the CNN blocks take theirs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.nn.conv import ActBuilder, NormBuilder, resolve_act, resolve_token_norm

ATTENTION_MODES = ("space", "joint", "divided", "sparse", "axial")


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention on ``[B, N, C]`` with a fused qkv projection."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class MLP(nn.Sequential):
    """Linear -> act (GELU) -> dropout -> Linear -> dropout (indices 0 and 3 are the linears)."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        out: int | None = None,
        dropout: float = 0.0,
        *,
        act: ActBuilder | str = nn.GELU,
    ) -> None:
        super().__init__(
            nn.Linear(dim, hidden),
            resolve_act(act)(),
            nn.Dropout(dropout),
            nn.Linear(hidden, out or dim),
            nn.Dropout(dropout),
        )


class TransformerBlock(nn.Module):
    """Pre-norm ViT block on ``[B, N, C]``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        *,
        norm: NormBuilder | str = "ln",
        act: ActBuilder | str = "gelu",
    ) -> None:
        super().__init__()
        norm = resolve_token_norm(norm)
        self.norm1 = norm(dim)
        self.attn = MultiHeadSelfAttention(dim, num_heads)
        self.norm2 = norm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout=dropout, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def group_tokens(x: torch.Tensor, how: str) -> tuple[torch.Tensor, tuple]:
    """Split ``[B, T, H, W, C]`` tokens into attention groups ``[B*G, L, C]``; returns the
    grouped tokens and what :func:`ungroup_tokens` needs to restore the layout."""
    b, t, h, w, c = x.shape
    if how == "joint":
        return x.reshape(b, t * h * w, c), (how, x.shape)
    if how == "time":
        return x.permute(0, 2, 3, 1, 4).reshape(b * h * w, t, c), (how, x.shape)
    if how == "space":
        return x.reshape(b * t, h * w, c), (how, x.shape)
    if how == "width":
        return x.reshape(b * t * h, w, c), (how, x.shape)
    if how == "height":
        return x.permute(0, 1, 3, 2, 4).reshape(b * t * w, h, c), (how, x.shape)
    if h % 2 or w % 2:
        raise ValueError(f"sparse local-global attention needs an even patch grid, got {h}x{w}")
    if how == "local":  # 2x2 windows of (H/2, W/2) patches over all frames
        y = x.reshape(b, t, 2, h // 2, 2, w // 2, c).permute(0, 2, 4, 1, 3, 5, 6)
        return y.reshape(b * 4, t * (h // 2) * (w // 2), c), (how, x.shape)
    if how == "global":  # patches with the same (h mod 2, w mod 2): stride-2 sampling of the clip
        y = x.reshape(b, t, h // 2, 2, w // 2, 2, c).permute(0, 3, 5, 1, 2, 4, 6)
        return y.reshape(b * 4, t * (h // 2) * (w // 2), c), (how, x.shape)
    raise ValueError(f"unknown token grouping {how!r}")


def ungroup_tokens(y: torch.Tensor, info: tuple) -> torch.Tensor:
    how, (b, t, h, w, c) = info
    if how == "joint":
        return y.reshape(b, t, h, w, c)
    if how == "time":
        return y.reshape(b, h, w, t, c).permute(0, 3, 1, 2, 4)
    if how in ("space", "width"):
        return y.reshape(b, t, h, w, c)
    if how == "height":
        return y.reshape(b, t, w, h, c).permute(0, 1, 3, 2, 4)
    if how == "local":
        return y.reshape(b, 2, 2, t, h // 2, w // 2, c).permute(0, 3, 1, 4, 2, 5, 6).reshape(b, t, h, w, c)
    return y.reshape(b, 2, 2, t, h // 2, w // 2, c).permute(0, 3, 4, 1, 5, 2, 6).reshape(b, t, h, w, c)


class GroupedAttention(nn.Module):
    """Pre-norm attention within token groups (see :func:`group_tokens`), class token shared."""

    def __init__(
        self, dim: int, num_heads: int, how: str, out_proj: bool = False, *, norm: NormBuilder | str = "ln"
    ) -> None:
        super().__init__()
        self.how = how
        self.norm = resolve_token_norm(norm)(dim)
        self.attn = MultiHeadSelfAttention(dim, num_heads)
        # TimeSformer's temporal_fc after the temporal attention, zero-initialized
        self.out = nn.Linear(dim, dim) if out_proj else None
        if self.out is not None:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, cls: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``cls [B, 1, C]``, ``x [B, T, H, W, C]`` -> residual updates of both."""
        groups, info = group_tokens(x, self.how)
        g = groups.shape[0] // x.shape[0]
        tokens = torch.cat([cls.repeat_interleave(g, dim=0), groups], dim=1)
        out = self.attn(self.norm(tokens))
        if self.out is not None:
            out = self.out(out)
        cls_out = out[:, :1].reshape(x.shape[0], g, 1, -1).mean(dim=1)
        return cls + cls_out, x + ungroup_tokens(out[:, 1:], info)


_STEPS = {
    "space": ("space",),
    "joint": ("joint",),
    "divided": ("time", "space"),
    "sparse": ("local", "global"),
    "axial": ("time", "width", "height"),
}


class SpaceTimeBlock(nn.Module):
    """A TimeSformer block: the attention steps of ``mode`` then a pre-norm MLP."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mode: str = "divided",
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        *,
        norm: NormBuilder | str = "ln",
        act: ActBuilder | str = "gelu",
    ) -> None:
        super().__init__()
        if mode not in _STEPS:
            raise ValueError(f"unknown attention mode {mode!r}: use one of {ATTENTION_MODES}")
        self.mode = mode
        norm = resolve_token_norm(norm)
        self.steps = nn.ModuleList(
            [GroupedAttention(dim, num_heads, how, out_proj=how == "time", norm=norm) for how in _STEPS[mode]]
        )
        self.norm2 = norm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout=dropout, act=act)

    def forward(self, cls: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for step in self.steps:
            cls, x = step(cls, x)
        b, t, h, w, c = x.shape
        tokens = torch.cat([cls, x.reshape(b, t * h * w, c)], dim=1)
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens[:, :1], tokens[:, 1:].reshape(b, t, h, w, c)
