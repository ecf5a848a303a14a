"""Video Swin Transformer.

Liu et al., "Video Swin Transformer", CVPR 2022. A hierarchical transformer whose
self-attention is restricted to non-overlapping 3D windows of ``P×M×M`` tokens:

- 3D patch embedding: tokens are ``2×4×4`` tubelets (a strided conv), embedded to C channels
  and layer-normalized; a 32×224² clip becomes a 16×56×56 token grid.
- Four stages of Swin blocks (pre-norm, ``x + W-MSA(LN(x))`` then ``x + MLP(LN(x))``, MLP ratio 4).
  Consecutive blocks alternate regular windows and windows shifted by ``(P/2, M/2, M/2)``
  (a cyclic roll plus an attention mask so tokens of different original regions do not mix).
- 3D relative position bias: a learned table of ``(2P-1)(2M-1)(2M-1)`` entries per head added
  to the attention logits.
- Patch merging between stages: 2×2 spatial neighbours concatenated (4C), layer-normalized and
  linearly reduced to 2C; time is never downsampled.
- Stochastic depth rising linearly from 0 to ``drop_path`` over all blocks; global average
  pooling and a linear classifier.

Variants (window 8×7×7): Swin-T C=96, depths (2, 2, 6, 2), heads (3, 6, 12, 24); Swin-S C=96,
depths (2, 2, 18, 2); Swin-B C=128, depths (2, 2, 18, 2), heads (4, 8, 16, 32); their published
parameter and FLOP counts (Kinetics-400 heads) are in the presets' registry entries. When a
stage's token grid is not larger than the window along a dimension, the window shrinks to the
grid there and is not shifted; the bias of such a shrunk window is the leading ``N×N`` block of
the full window's bias, as in the reference implementation. Module names follow torchvision's
``swin3d_t/s/b`` so their weights load unchanged (:mod:`deepvideo.models.convert.swin3d`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from deepvideo.models.registry import register_model
from deepvideo.nn.attention import MLP
from deepvideo.nn.conv import triple
from deepvideo.nn.inputs import rgb_input
from deepvideo.spec import InputSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MASK_VALUE = -100.0  # logit added between tokens of different regions of a shifted window


def fit_window(
    size: Sequence[int], window: Sequence[int], shift: Sequence[int]
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Window and shift for a ``(T, H, W)`` token grid: a dimension no larger than the window
    takes the whole grid as its window and is not shifted."""
    win, sh = [], []
    for s, w, k in zip(size, window, shift, strict=True):
        win.append(s if s <= w else w)
        sh.append(0 if s <= w else k)
    return tuple(win), tuple(sh)


def relative_position_index(window: Sequence[int]) -> torch.Tensor:
    """``[N, N]`` index into the bias table of the 3D offset between every two tokens of a window
    (offsets shifted to be non-negative, combined in mixed radix ``(2P-1, 2M-1, 2M-1)``)."""
    coords = torch.stack(torch.meshgrid(*[torch.arange(w) for w in window], indexing="ij")).flatten(1)
    offset = coords[:, :, None] - coords[:, None, :] + torch.tensor(window)[:, None, None] - 1
    radix = [2 * w - 1 for w in window]
    return (offset[0] * radix[1] + offset[1]) * radix[2] + offset[2]


def to_windows(x: torch.Tensor, window: Sequence[int]) -> torch.Tensor:
    """``[B, T, H, W, C]`` (multiples of ``window``) -> ``[B, nW, Wt*Wh*Ww, C]``."""
    b, t, h, w, c = x.shape
    wt, wh, ww = window
    x = x.reshape(b, t // wt, wt, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(b, -1, wt * wh * ww, c)


def from_windows(x: torch.Tensor, size: Sequence[int], window: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`to_windows` for a padded grid ``size``."""
    b, c = x.shape[0], x.shape[-1]
    (t, h, w), (wt, wh, ww) = size, window
    x = x.reshape(b, t // wt, h // wh, w // ww, wt, wh, ww, c).permute(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(b, t, h, w, c)


def shift_mask(size: Sequence[int], window: Sequence[int], shift: Sequence[int], device=None) -> torch.Tensor:
    """``[nW, N, N]`` additive mask of a cyclically shifted grid: 0 between tokens that came from
    the same region of the unshifted grid, :data:`MASK_VALUE` otherwise."""
    region = torch.zeros(size, dtype=torch.long, device=device)
    for dim, (s, w, k) in enumerate(zip(size, window, shift, strict=True)):
        if k == 0:
            continue
        pos = torch.arange(s, device=device)
        # three bands along each shifted axis: untouched, last window's head, wrapped-around tail
        band = (pos >= s - w).long() + (pos >= s - k).long()
        shape = [1, 1, 1]
        shape[dim] = s
        region = region * 3 + band.view(shape)
    ids = to_windows(region[None, ..., None], window)[0, ..., 0]  # [nW, N]
    same = ids[:, :, None] == ids[:, None, :]
    return torch.zeros(same.shape, device=device).masked_fill(~same, MASK_VALUE)


class WindowAttention3d(nn.Module):
    """(Shifted) window multi-head self-attention with 3D relative position bias on
    ``[B, T, H, W, C]``; the grid is zero-padded to whole windows and cropped back."""

    def __init__(
        self,
        dim: int,
        window_size: Sequence[int],
        shift_size: Sequence[int],
        num_heads: int,
        qkv_bias: bool = True,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.window_size = triple(window_size)
        self.shift_size = triple(shift_size)
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)
        table = math.prod(2 * w - 1 for w in self.window_size)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(self.window_size))

    def position_bias(self, window: Sequence[int]) -> torch.Tensor:
        n = math.prod(window)
        index = self.relative_position_index[:n, :n].reshape(-1)
        return self.relative_position_bias_table[index].reshape(n, n, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = x.shape
        window, shift = fit_window((t, h, w), self.window_size, self.shift_size)
        pad = [(-s) % k for s, k in zip((t, h, w), window, strict=True)]
        x = F.pad(x, (0, 0, 0, pad[2], 0, pad[1], 0, pad[0]))
        size = x.shape[1:4]
        shifted = any(shift)
        if shifted:
            x = torch.roll(x, shifts=[-k for k in shift], dims=(1, 2, 3))
        tokens = to_windows(x, window)  # [B, nW, N, C]
        nw, n = tokens.shape[1:3]
        q, k, v = self.qkv(tokens).reshape(b, nw, n, 3, self.num_heads, -1).permute(3, 0, 1, 4, 2, 5)
        bias = self.position_bias(window)[None]  # [1, heads, N, N]
        if shifted:
            bias = bias + shift_mask(size, window, shift, x.device)[:, None]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=self.attention_dropout if self.training else 0.0
        )
        out = self.proj_drop(self.proj(out.transpose(2, 3).reshape(b, nw, n, c)))
        x = from_windows(out, size, window)
        if shifted:
            x = torch.roll(x, shifts=list(shift), dims=(1, 2, 3))
        return x[:, :t, :h, :w]


class SwinBlock3d(nn.Module):
    """Pre-norm Swin block on ``[B, T, H, W, C]``: (shifted) window attention, then an MLP."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: Sequence[int],
        shift_size: Sequence[int],
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3d(
            dim, window_size, shift_size, num_heads, attention_dropout=attention_dropout, dropout=dropout
        )
        self.drop_path = StochasticDepth(drop_path, "row")  # Huang et al. 2016, per sample
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """``[..., H, W, C]`` -> ``[..., ⌈H/2⌉, ⌈W/2⌉, 2C]``: each 2×2 spatial group concatenated
    (order (0,0), (1,0), (0,1), (1,1) in (h, w)), layer-normalized and linearly reduced."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, h, w, c = x.shape
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        h2, w2 = (h + 1) // 2, (w + 1) // 2
        x = x.reshape(-1, h2, 2, w2, 2, c).permute(0, 1, 3, 4, 2, 5)  # [., h2, w2, w offset, h offset, c]
        x = x.reshape(*lead, h2, w2, 4 * c)
        return self.reduction(self.norm(x))


class PatchEmbed3d(nn.Module):
    """Clip ``[B, 3, T, H, W]`` -> tokens ``[B, T', H', W', C]`` from non-overlapping tubelets
    (zero-padded to whole tubelets), layer-normalized."""

    def __init__(self, patch_size: Sequence[int], embed_dim: int, in_channels: int = 3) -> None:
        super().__init__()
        self.patch_size = triple(patch_size)
        self.proj = nn.Conv3d(in_channels, embed_dim, self.patch_size, self.patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = [(-s) % p for s, p in zip(x.shape[2:], self.patch_size, strict=True)]
        x = F.pad(x, (0, pad[2], 0, pad[1], 0, pad[0]))
        return self.norm(self.proj(x).permute(0, 2, 3, 4, 1))


class SwinTransformer3d(nn.Module):
    """Video Swin Transformer. ``features`` alternates stages (``nn.Sequential`` of
    :class:`SwinBlock3d`) and :class:`PatchMerging` layers, as torchvision lays them out."""

    def __init__(
        self,
        num_classes: int = 400,
        *,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        patch_size: Sequence[int] = (2, 4, 4),
        window_size: Sequence[int] = (8, 7, 7),
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.1,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {tuple(depths)} and num_heads {tuple(num_heads)} differ in length")
        window_size = triple(window_size)
        shift = tuple(w // 2 for w in window_size)
        self.patch_embed = PatchEmbed3d(patch_size, embed_dim, in_channels)
        self.pos_drop = nn.Dropout(dropout)
        total, index = sum(depths), 0
        layers: list[nn.Module] = []
        for stage, (depth, heads) in enumerate(zip(depths, num_heads, strict=True)):
            dim = embed_dim * 2**stage
            blocks = []
            for i in range(depth):
                blocks.append(
                    SwinBlock3d(
                        dim,
                        heads,
                        window_size,
                        (0, 0, 0) if i % 2 == 0 else shift,
                        mlp_ratio,
                        dropout,
                        attention_dropout,
                        drop_path * index / max(total - 1, 1),
                    )
                )
                index += 1
            layers.append(nn.Sequential(*blocks))
            if stage < len(depths) - 1:
                layers.append(PatchMerging(dim))
        self.features = nn.Sequential(*layers)
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, batch: dict | torch.Tensor) -> torch.Tensor:
        """Final token grid ``[N, T', H', W', C]`` (after the last layer norm)."""
        x = self.pos_drop(self.patch_embed(rgb_input(batch)))
        return self.norm(self.features(x))

    def forward(self, batch: dict | torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(batch).mean(dim=(1, 2, 3)))


def swin3d(num_classes: int = 400, **kw) -> SwinTransformer3d:
    """A Video Swin Transformer; the presets below fix width, depths and heads."""
    return SwinTransformer3d(num_classes, **kw)


_PAPER = "Liu et al., Video Swin Transformer, CVPR 2022"
_SPEC = InputSpec(
    ("rgb",), num_frames=32, frame_stride=2, crop_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD
)
_LIU = "Liu et al. 2022"  # parameters (M) and GFLOPs per 32x224² view: Table 1


@register_model(
    spec=_SPEC,
    paper=_PAPER,
    summary="Video Swin-T, patch 2x4x4, window 8x7x7, 32x2 (torchvision swin3d_t)",
    published={"params_m": 28.2, "gflops": 88.0, "frames": 32, "crop": 224, "source": _LIU},
)
def swin3d_t(num_classes: int = 400, **kw) -> SwinTransformer3d:
    """Swin-T: C = 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24)."""
    sizes = {"embed_dim": 96, "depths": (2, 2, 6, 2), "num_heads": (3, 6, 12, 24)}
    return swin3d(num_classes, **{**sizes, **kw})


@register_model(
    spec=_SPEC,
    paper=_PAPER,
    summary="Video Swin-S, patch 2x4x4, window 8x7x7, 32x2 (torchvision swin3d_s)",
    published={"params_m": 49.8, "gflops": 166.0, "frames": 32, "crop": 224, "source": _LIU},
)
def swin3d_s(num_classes: int = 400, **kw) -> SwinTransformer3d:
    """Swin-S: C = 96, depths (2, 2, 18, 2), heads (3, 6, 12, 24)."""
    sizes = {"embed_dim": 96, "depths": (2, 2, 18, 2), "num_heads": (3, 6, 12, 24)}
    return swin3d(num_classes, **{**sizes, **kw})


@register_model(
    spec=_SPEC,
    paper=_PAPER,
    summary="Video Swin-B, patch 2x4x4, window 8x7x7, 32x2 (torchvision swin3d_b)",
    published={"params_m": 88.0, "gflops": 282.0, "frames": 32, "crop": 224, "source": _LIU},
)
def swin3d_b(num_classes: int = 400, **kw) -> SwinTransformer3d:
    """Swin-B: C = 128, depths (2, 2, 18, 2), heads (4, 8, 16, 32)."""
    sizes = {"embed_dim": 128, "depths": (2, 2, 18, 2), "num_heads": (4, 8, 16, 32)}
    return swin3d(num_classes, **{**sizes, **kw})
