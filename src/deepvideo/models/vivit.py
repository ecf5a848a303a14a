"""ViViT Models 1, 3 and 4 (Arnab et al., "ViViT: A Video Vision Transformer", ICCV 2021).

A clip ``[B, 3, T, H, W]`` becomes ``n_t × n_h × n_w`` tokens by tubelet embedding (Sec. 3.2:
a 3D conv with kernel and stride ``t × h × w``, ViViT-B/16×2: ``2 × 16 × 16``), plus learned
position embeddings. The models differ in how the tokens attend (Sec. 3.3):

- Model 1, spatio-temporal attention: every token attends to every token, a ViT over all
  ``n_t·n_h·n_w`` tokens and a classification token.
- Model 2, factorised encoder: :class:`deepvideo.models.transformer.ViViTFactorized`.
- Model 3, factorised self-attention: in each block self-attention over space (tokens of one
  temporal index), then over time (tokens of one spatial position), then the MLP:
  ``y_s = MSA(LN(z_s)) + z_s``, ``y_t = MSA(LN(y_s)) + y_s``, ``z = MLP(LN(y_t)) + y_t``. As the
  paper says, no classification token (it would be ambiguous between the two reshapes): the
  final tokens are averaged.
- Model 4, factorised dot-product attention: one multi-head attention whose first half of the
  heads attends over space (keys and values of the same temporal index) and the second half
  over time (keys and values of the same spatial position); the heads are concatenated and
  projected, so the model has Model 1's parameters. Also classified from averaged tokens.

Tubelet embedding initialisation from a 2D patch embedding (Sec. 3.4): "central frame" — the
2D filter at the central temporal position ``⌊t/2⌋`` and zeros elsewhere
(:func:`tubelet_from_patch_embed`); "filter inflation" (replicate and divide by ``t``) is the
``init="mean"`` of :func:`deepvideo.nn.inflate.inflate_conv2d`.

The published figures (Table 3: ViViT-B, tubelet 16×2, 32 frames of 224², Kinetics-400 heads;
FLOPs ×10⁹ per view) are in the presets' registry entries.

``norm`` (token norm: "ln", the default LayerNorm with eps 1e-6, "none" or a builder ``C -> module``)
and ``act`` (the MLPs' activation: "gelu", the default, "silu", ... or a builder) are injected into
every block and the final norm, as the CNN families take theirs (:mod:`deepvideo.nn.conv`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.models.transformer import TubeletEmbed
from deepvideo.nn.attention import MLP, MultiHeadSelfAttention, TransformerBlock, group_tokens, ungroup_tokens
from deepvideo.nn.conv import ActBuilder, NormBuilder, resolve_token_norm
from deepvideo.nn.inflate import inflate_conv2d
from deepvideo.nn.inputs import rgb_input
from deepvideo.spec import InputSpec

PAPER = "Arnab et al., ViViT: A Video Vision Transformer, ICCV 2021"
VIVIT_MODELS = (1, 3, 4)


def tubelet_from_patch_embed(conv: nn.Conv2d, tubelet: int, init: str = "center") -> nn.Conv3d:
    """A ``tubelet × p × p`` tubelet embedding (stride = kernel) from a ViT's ``p × p`` patch
    embedding: ``init="center"`` is ViViT's central-frame initialisation, ``"mean"`` filter
    inflation."""
    if tuple(conv.stride) != tuple(conv.kernel_size):
        raise ValueError(f"a patch embedding has stride = kernel, got {conv.stride} vs {conv.kernel_size}")
    return inflate_conv2d(conv, tubelet, init, time_stride=tubelet, time_padding=0)


class FactorisedSelfAttentionBlock(nn.Module):
    """Model 3 block on ``[B, T, H, W, C]``: spatial MSA, temporal MSA, MLP (each pre-norm)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        *,
        norm: NormBuilder | str = "ln",
        act: ActBuilder | str = "gelu",
    ) -> None:
        super().__init__()
        norm = resolve_token_norm(norm)
        self.norm_space = norm(dim)
        self.attn_space = MultiHeadSelfAttention(dim, heads)
        self.norm_time = norm(dim)
        self.attn_time = MultiHeadSelfAttention(dim, heads)
        self.norm_mlp = norm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout=dropout, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = ((self.norm_space, self.attn_space, "space"), (self.norm_time, self.attn_time, "time"))
        for norm, attn, how in steps:
            groups, info = group_tokens(norm(x), how)
            x = x + ungroup_tokens(attn(groups), info)
        return x + self.mlp(self.norm_mlp(x))


class FactorisedDotProductAttention(nn.Module):
    """Model 4 attention on ``[B, T, H, W, C]``: heads ``[0, n/2)`` attend within the frame,
    heads ``[n/2, n)`` along time at the same position; concatenated, then projected."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if heads % 2 or dim % heads:
            raise ValueError(f"factorised dot-product attention needs an even head count dividing dim, got "
                             f"{heads} heads for dim {dim}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = x.shape
        half, d = self.heads // 2, c // self.heads
        q, k, v = self.qkv(x).reshape(b, t, h * w, 3, self.heads, d).permute(3, 0, 4, 1, 2, 5)  # [B,n,T,S,d]
        space = F.scaled_dot_product_attention(q[:, :half], k[:, :half], v[:, :half])  # over S per T
        tq, tk, tv = (z[:, half:].transpose(2, 3) for z in (q, k, v))  # [B, n/2, S, T, d]
        time = F.scaled_dot_product_attention(tq, tk, tv).transpose(2, 3)  # over T per S
        out = torch.cat([space, time], dim=1).permute(0, 2, 3, 1, 4).reshape(b, t, h, w, c)
        return self.proj(out)


class FactorisedDotProductBlock(nn.Module):
    """Model 4 block: ``x + FDPA(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        *,
        norm: NormBuilder | str = "ln",
        act: ActBuilder | str = "gelu",
    ) -> None:
        super().__init__()
        norm = resolve_token_norm(norm)
        self.norm1 = norm(dim)
        self.attn = FactorisedDotProductAttention(dim, heads)
        self.norm2 = norm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout=dropout, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViViT(nn.Module):
    """ViViT Model 1 (``model=1``), 3 or 4 over tubelet tokens (see the module docstring)."""

    def __init__(
        self,
        num_classes: int = 400,
        *,
        model: int = 1,
        num_frames: int = 32,
        crop_size: int = 224,
        patch: int = 16,
        tubelet: int = 2,
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        norm: NormBuilder | str = "ln",
        act: ActBuilder | str = "gelu",
    ) -> None:
        super().__init__()
        if model not in VIVIT_MODELS:
            raise ValueError(
                f"ViViT model must be one of {VIVIT_MODELS} (Model 2 is vivit_b_fe), got {model}"
            )
        if num_frames % tubelet or crop_size % patch:
            raise ValueError(
                f"{num_frames} frames of {crop_size}² do not split into {tubelet}x{patch}x{patch} tubelets"
            )
        self.model = model
        self.grid = (num_frames // tubelet, crop_size // patch, crop_size // patch)
        self.embed = TubeletEmbed(dim, patch, tubelet)
        n = self.grid[0] * self.grid[1] * self.grid[2]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if model == 1 else None
        self.pos_embed = nn.Parameter(torch.zeros(1, n + (model == 1), dim))
        for p in (self.cls_token, self.pos_embed):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)
        block = {1: TransformerBlock, 3: FactorisedSelfAttentionBlock, 4: FactorisedDotProductBlock}[model]
        norm = resolve_token_norm(norm)
        self.blocks = nn.Sequential(
            *[block(dim, heads, mlp_ratio, dropout, norm=norm, act=act) for _ in range(depth)]
        )
        self.norm = norm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, batch: dict | torch.Tensor) -> torch.Tensor:
        x = self.embed(rgb_input(batch))  # [B, T', H', W', C]
        if tuple(x.shape[1:4]) != self.grid:
            raise ValueError(f"ViViT was built for a {self.grid} token grid, got {tuple(x.shape[1:4])}: "
                             "pass num_frames/crop_size matching the clip")
        b, t, h, w, c = x.shape
        if self.cls_token is not None:  # Model 1: one sequence, classification token first
            tokens = torch.cat([self.cls_token.expand(b, -1, -1), x.reshape(b, -1, c)], 1) + self.pos_embed
            return self.head(self.norm(self.blocks(tokens))[:, 0])
        x = x + self.pos_embed.reshape(1, t, h, w, c)
        return self.head(self.norm(self.blocks(x)).mean(dim=(1, 2, 3)))


_SPEC = InputSpec(("rgb",), num_frames=32, frame_stride=2, crop_size=224, mean=(0.5,) * 3, std=(0.5,) * 3)
_SMALL = _SPEC.replace(num_frames=8, crop_size=112)
_SMALL_ARGS = {"num_frames": 8, "crop_size": 112, "dim": 96, "depth": 4, "heads": 4}


def _table3(params_m: float, gflops: float) -> dict:
    return {"params_m": params_m, "gflops": gflops, "frames": 32, "crop": 224,
            "source": "Arnab et al. 2021, Table 3 (ViViT-B, 16x2)"}


@register_model(spec=_SPEC, paper=PAPER, published=_table3(88.9, 455.2))
def vivit_b_16x2_joint(num_classes: int = 400, **kw) -> ViViT:
    """ViViT-B/16x2 Model 1: joint spatio-temporal attention over 16x14x14 tubelet tokens, 32x2"""
    return ViViT(num_classes, **{"model": 1, **kw})


@register_model(spec=_SPEC, paper=PAPER, published=_table3(117.3, 372.3))
def vivit_b_16x2_fsa(num_classes: int = 400, **kw) -> ViViT:
    """ViViT-B/16x2 Model 3: factorised self-attention (space, then time, in each block), 32x2"""
    return ViViT(num_classes, **{"model": 3, **kw})


@register_model(spec=_SPEC, paper=PAPER, published=_table3(88.9, 277.1))
def vivit_b_16x2_fdp(num_classes: int = 400, **kw) -> ViViT:
    """ViViT-B/16x2 Model 4: factorised dot-product attention (half the heads space, half time), 32x2"""
    return ViViT(num_classes, **{"model": 4, **kw})


@register_model(spec=_SMALL, paper=PAPER)
def vivit_joint_small(num_classes: int = 400, **kw) -> ViViT:
    """CPU ViViT Model 1: width 96, 4 blocks, 4 heads, 8 frames of 112², tubelet 2x16x16"""
    return ViViT(num_classes, **{"model": 1, **_SMALL_ARGS, **kw})


@register_model(spec=_SMALL, paper=PAPER)
def vivit_fsa_small(num_classes: int = 400, **kw) -> ViViT:
    """CPU ViViT Model 3: width 96, 4 blocks, 4 heads, 8 frames of 112², tubelet 2x16x16"""
    return ViViT(num_classes, **{"model": 3, **_SMALL_ARGS, **kw})


@register_model(spec=_SMALL, paper=PAPER)
def vivit_fdp_small(num_classes: int = 400, **kw) -> ViViT:
    """CPU ViViT Model 4: width 96, 4 blocks, 4 heads, 8 frames of 112², tubelet 2x16x16"""
    return ViViT(num_classes, **{"model": 4, **_SMALL_ARGS, **kw})
