"""Video transformers.

- TimeSformer: Bertasius et al., "Is Space-Time Attention All You Need for Video
  Understanding?", ICML 2021. ViT-B/16 over 8 frames of 224², patch (tubelet 1×16×16)
  embedding, learned space and time position embeddings, and one of the attention schemes
  space (S), joint space-time (ST), divided space-time (T+S), sparse local-global (L+G),
  axial (T+W+H) — see :mod:`deepvideo.nn.attention`.
- ViViT factorized encoder: Arnab et al., "ViViT: A Video Vision Transformer", ICCV 2021
  (Model 2). Tubelet embedding (2×16×16); a spatial transformer (L_s = 12) per temporal index
  gives one class token per tubelet time; a temporal transformer (L_t = 4) over them.
- MViT: Fan et al., "Multiscale Vision Transformers", ICCV 2021, and Li et al., "MViTv2",
  CVPR 2022. Pooling attention: queries, keys and values are pooled by depthwise 3D convs
  (stride (1,2,2) for queries at stage transitions, adaptive strides for keys/values), channels
  double and resolution halves from stage to stage; v2 adds decomposed relative position
  biases, residual pooling (q added to the attention output) and the channel projection
  after attention. The published parameter and FLOP counts are in the presets' registry entries.
  The module names follow torchvision's ``mvit_v1_b`` / ``mvit_v2_s`` so weights load directly.

TimeSformer and the ViViT factorised encoder take ``norm`` (token norm: "ln", the default
LayerNorm with eps 1e-6, "none" or a builder) and ``act`` (the MLPs' activation, default "gelu")
for every block and final norm (:func:`deepvideo.nn.conv.resolve_token_norm`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from deepvideo.models.registry import register_model
from deepvideo.nn.attention import MLP, SpaceTimeBlock, TransformerBlock
from deepvideo.nn.conv import ActBuilder, NormBuilder, resolve_token_norm, triple
from deepvideo.nn.inputs import rgb_input
from deepvideo.spec import InputSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TubeletEmbed(nn.Module):
    """Non-overlapping tubelets ``t×p×p`` -> tokens ``[B, T', H', W', C]`` (a strided conv)."""

    def __init__(self, dim: int, patch: int = 16, tubelet: int = 1, in_channels: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv3d(in_channels, dim, (tubelet, patch, patch), (tubelet, patch, patch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 4, 1)


class TimeSformer(nn.Module):
    """Space-time ViT with a selectable attention scheme (``mode``)."""

    def __init__(
        self,
        num_classes: int = 400,
        *,
        mode: str = "divided",
        num_frames: int = 8,
        crop_size: int = 224,
        patch: int = 16,
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        norm: NormBuilder | str = "ln",
        act: ActBuilder | str = "gelu",
    ) -> None:
        super().__init__()
        norm = resolve_token_norm(norm)
        grid = crop_size // patch
        self.embed = TubeletEmbed(dim, patch, 1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_space = nn.Parameter(torch.zeros(1, 1, grid, grid, dim))
        self.pos_time = nn.Parameter(torch.zeros(1, num_frames, 1, 1, dim))
        self.pos_cls = nn.Parameter(torch.zeros(1, 1, dim))
        for p in (self.cls_token, self.pos_space, self.pos_time, self.pos_cls):
            nn.init.trunc_normal_(p, std=0.02)
        self.blocks = nn.ModuleList(
            [SpaceTimeBlock(dim, heads, mode, mlp_ratio, dropout, norm=norm, act=act) for _ in range(depth)]
        )
        self.norm = norm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, batch: dict | torch.Tensor) -> torch.Tensor:
        x = self.embed(rgb_input(batch))
        if x.shape[1:4] != (self.pos_time.shape[1],) + self.pos_space.shape[2:4]:
            raise ValueError(
                f"TimeSformer was built for a {self.pos_time.shape[1]}x{self.pos_space.shape[2]}x"
                f"{self.pos_space.shape[3]} token grid, got {tuple(x.shape[1:4])}"
            )
        x = x + self.pos_space + self.pos_time
        cls = (self.cls_token + self.pos_cls).expand(x.shape[0], -1, -1)
        for block in self.blocks:
            cls, x = block(cls, x)
        return self.head(self.norm(cls[:, 0]))


class ViViTFactorized(nn.Module):
    """ViViT Model 2: spatial encoder per tubelet time, temporal encoder over frame tokens."""

    def __init__(
        self,
        num_classes: int = 400,
        *,
        num_frames: int = 32,
        crop_size: int = 224,
        patch: int = 16,
        tubelet: int = 2,
        dim: int = 768,
        spatial_depth: int = 12,
        temporal_depth: int = 4,
        heads: int = 12,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        norm: NormBuilder | str = "ln",
        act: ActBuilder | str = "gelu",
    ) -> None:
        super().__init__()
        norm = resolve_token_norm(norm)
        grid, t = crop_size // patch, num_frames // tubelet
        self.embed = TubeletEmbed(dim, patch, tubelet)
        self.spatial_cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.spatial_pos = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.temporal_cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.temporal_pos = nn.Parameter(torch.zeros(1, 1 + t, dim))
        for p in (self.spatial_cls, self.spatial_pos, self.temporal_cls, self.temporal_pos):
            nn.init.trunc_normal_(p, std=0.02)
        def blocks(n: int) -> nn.Sequential:
            return nn.Sequential(*[TransformerBlock(dim, heads, mlp_ratio, dropout, norm=norm, act=act)
                                   for _ in range(n)])

        self.spatial = blocks(spatial_depth)
        self.spatial_norm = norm(dim)
        self.temporal = blocks(temporal_depth)
        self.norm = norm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, batch: dict | torch.Tensor) -> torch.Tensor:
        x = self.embed(rgb_input(batch))  # [B, T', H', W', C]
        b, t, h, w, c = x.shape
        if 1 + h * w != self.spatial_pos.shape[1] or 1 + t != self.temporal_pos.shape[1]:
            raise ValueError(
                f"ViViT was built for {self.temporal_pos.shape[1] - 1} tubelet times and "
                f"{self.spatial_pos.shape[1] - 1} patches, got {t} and {h * w}"
            )
        x = x.reshape(b * t, h * w, c)
        x = torch.cat([self.spatial_cls.expand(b * t, -1, -1), x], dim=1) + self.spatial_pos
        frames = self.spatial_norm(self.spatial(x)[:, 0]).reshape(b, t, c)
        y = torch.cat([self.temporal_cls.expand(b, -1, -1), frames], dim=1) + self.temporal_pos
        return self.head(self.norm(self.temporal(y)[:, 0]))


# ---- MViT -----------------------------------------------------------------------------------


class _Pool(nn.Module):
    """Pool the tokens of ``[B, heads, 1+THW, C]`` (class token kept aside), then norm."""

    def __init__(self, pool: nn.Module, norm: nn.Module | None) -> None:
        super().__init__()
        self.pool = pool
        self.norm_act = nn.Sequential(norm) if norm is not None else None

    def forward(
        self, x: torch.Tensor, thw: tuple[int, int, int]
    ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        b, n, _, c = x.shape
        cls, tokens = x[:, :, :1], x[:, :, 1:]
        tokens = tokens.transpose(2, 3).reshape(b * n, c, *thw)
        tokens = self.pool(tokens)
        new_thw = tuple(tokens.shape[2:])
        tokens = tokens.reshape(b, n, c, -1).transpose(2, 3)
        x = torch.cat([cls, tokens], dim=2)
        if self.norm_act is not None:
            x = self.norm_act(x)
        return x, new_thw  # type: ignore[return-value]


def relative_index(q: int, k: int) -> torch.Tensor:
    """MViTv2 relative distance index between q and k positions of possibly different sizes."""
    q_ratio, k_ratio = max(k / q, 1.0), max(q / k, 1.0)
    dist = torch.arange(q)[:, None] * q_ratio - (torch.arange(k)[None, :] + (1.0 - k)) * k_ratio
    return dist.long()


def _interp(table: torch.Tensor, size: int) -> torch.Tensor:
    if table.shape[0] == size:
        return table
    return F.interpolate(table.t().unsqueeze(0), size=size, mode="linear").squeeze(0).t()


class PoolingAttention(nn.Module):
    """Multi-head pooling attention (MViT); ``rel_pos`` and ``residual_pool`` for MViTv2."""

    def __init__(
        self,
        dim_in: int,
        dim: int,
        heads: int,
        kernel_q,
        stride_q,
        kernel_kv,
        stride_kv,
        *,
        input_size: Sequence[int],
        rel_pos: bool,
        residual_pool: bool,
        pool_norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.dim = dim
        self.scale = self.head_dim**-0.5
        self.residual_pool = residual_pool
        self.qkv = nn.Linear(dim_in, 3 * dim)
        self.project = nn.Sequential(nn.Linear(dim, dim))

        def pool(kernel, stride):
            if math.prod(kernel) == 1 and math.prod(stride) == 1:
                return None
            conv = nn.Conv3d(
                self.head_dim,
                self.head_dim,
                kernel,
                stride,
                [k // 2 for k in kernel],
                groups=self.head_dim,
                bias=False,
            )
            return _Pool(conv, nn.LayerNorm(self.head_dim, eps=pool_norm_eps))

        self.pool_q = pool(kernel_q, stride_q)
        self.pool_k = pool(kernel_kv, stride_kv)
        self.pool_v = pool(kernel_kv, stride_kv)
        self.rel_pos_h = self.rel_pos_w = self.rel_pos_t = None
        if rel_pos:
            size = max(input_size[1:])
            span = 2 * max(size // stride_q[1], size // stride_kv[1]) - 1
            self.rel_pos_h = nn.Parameter(torch.zeros(span, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(span, self.head_dim))
            self.rel_pos_t = nn.Parameter(torch.zeros(2 * input_size[0] - 1, self.head_dim))
            for p in (self.rel_pos_h, self.rel_pos_w, self.rel_pos_t):
                nn.init.trunc_normal_(p, std=0.02)

    def _with_rel_pos(self, q: torch.Tensor, k: torch.Tensor, q_thw, k_thw):
        """Queries and keys extended so that ``q' k'ᵀ = q kᵀ + bias / scale``, with MViTv2's
        decomposed relative-position bias
        ``bias[i, j] = q_i · (R_t[t_i, t_j] + R_h[h_i, h_j] + R_w[w_i, w_j])``
        (zero on class-token rows and columns).

        The bias is a sum of three terms that each depend on one key coordinate, so it is a dot
        product of per-query terms ``[q·R_t | q·R_h | q·R_w]`` with the key's one-hot
        ``[t | h | w]`` code: appended to the head dimension it rides along in the fused attention
        kernel instead of materializing a ``[Nq, Nk]`` bias per head.
        """
        (qt, qh, qw), (kt, kh, kw) = q_thw, k_thw
        rh = _interp(self.rel_pos_h, 2 * max(qh, kh) - 1)[relative_index(qh, kh)]  # [qh, kh, c]
        rw = _interp(self.rel_pos_w, 2 * max(qw, kw) - 1)[relative_index(qw, kw)]
        rt = _interp(self.rel_pos_t, 2 * max(qt, kt) - 1)[relative_index(qt, kt)]
        b, n, _, c = q.shape
        rq = q[:, :, 1:].reshape(b, n, qt, qh, qw, c) / self.scale
        terms = [
            torch.einsum("bnthwc,tkc->bnthwk", rq, rt),
            torch.einsum("bnthwc,hkc->bnthwk", rq, rh),
            torch.einsum("bnthwc,wkc->bnthwk", rq, rw),
        ]
        extra = kt + kh + kw
        rel = F.pad(torch.cat(terms, -1).reshape(b, n, qt * qh * qw, extra), (0, 0, 1, 0))
        codes = torch.cat(
            [
                F.one_hot(torch.arange(kt, device=q.device), kt)[:, None, None, :].expand(kt, kh, kw, kt),
                F.one_hot(torch.arange(kh, device=q.device), kh)[None, :, None, :].expand(kt, kh, kw, kh),
                F.one_hot(torch.arange(kw, device=q.device), kw)[None, None, :, :].expand(kt, kh, kw, kw),
            ],
            -1,
        ).reshape(kt * kh * kw, extra)
        codes = F.pad(codes, (0, 0, 1, 0)).to(k.dtype)  # class-token key: no bias
        return torch.cat([q, rel], -1), torch.cat([k, codes.expand(b, n, -1, -1)], -1)

    def forward(
        self, x: torch.Tensor, thw: tuple[int, int, int]
    ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k_thw = thw
        if self.pool_k is not None:
            k, k_thw = self.pool_k(k, thw)
        if self.pool_v is not None:
            v, _ = self.pool_v(v, thw)
        q_thw = thw
        if self.pool_q is not None:
            q, q_thw = self.pool_q(q, thw)
        if self.rel_pos_h is None:
            qb, kb, vb = q, k, v
        else:  # the fused CPU kernel wants one head size for q, k and v: v padded with zeros
            qb, kb = self._with_rel_pos(q, k, q_thw, k_thw)
            if q.device.type == "meta":  # FLOP counting (profile): the architecture's attention
                qb, kb = q, k
            vb = F.pad(v, (0, qb.shape[-1] - v.shape[-1]))
        # one fused kernel (scale, softmax, weighted sum) instead of materialized attention maps
        out = F.scaled_dot_product_attention(qb, kb, vb, scale=self.scale)[..., : v.shape[-1]]
        if self.residual_pool:  # MViTv2: add the pooled query, class token excluded
            out = torch.cat([out[:, :, :1], out[:, :, 1:] + q[:, :, 1:]], dim=2)
        out = out.transpose(1, 2).reshape(b, -1, self.dim)
        return self.project(out), q_thw


class MultiscaleBlock(nn.Module):
    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        heads: int,
        kernel_q,
        stride_q,
        kernel_kv,
        stride_kv,
        *,
        input_size: Sequence[int],
        version: int,
        drop_path: float = 0.0,
        pool_norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.proj_after_attn = version == 2
        attn_dim = dim_out if self.proj_after_attn else dim_in
        self.norm1 = nn.LayerNorm(dim_in, eps=1e-6)
        self.norm2 = nn.LayerNorm(attn_dim, eps=1e-6)
        self.attn = PoolingAttention(
            dim_in,
            attn_dim,
            heads,
            kernel_q,
            stride_q,
            kernel_kv,
            stride_kv,
            input_size=input_size,
            rel_pos=version == 2,
            residual_pool=version == 2,
            pool_norm_eps=pool_norm_eps,
        )
        self.mlp = MLP(attn_dim, 4 * attn_dim, dim_out)
        self.project = nn.Linear(dim_in, dim_out) if dim_in != dim_out else None
        self.pool_skip = None
        if math.prod(stride_q) > 1:
            kernel = [s + 1 if s > 1 else s for s in stride_q]
            self.pool_skip = _Pool(nn.MaxPool3d(kernel, stride_q, [k // 2 for k in kernel]), None)
        self.drop_path = StochasticDepth(drop_path, "row")  # Huang et al. 2016, per sample

    def _skip(self, x: torch.Tensor, thw) -> torch.Tensor:
        if self.pool_skip is None:
            return x
        return self.pool_skip(x.unsqueeze(1), thw)[0].squeeze(1)

    def forward(
        self, x: torch.Tensor, thw: tuple[int, int, int]
    ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        x_norm = self.norm1(x)
        x_attn, new_thw = self.attn(x_norm, thw)
        if self.proj_after_attn and self.project is not None:
            x = self.project(x_norm)
        x = self._skip(x, thw) + self.drop_path(x_attn)
        x_norm = self.norm2(x)
        if not self.proj_after_attn and self.project is not None:
            x = self.project(x_norm)
        return x + self.drop_path(self.mlp(x_norm)), new_thw


class _PosEncoding(nn.Module):
    def __init__(self, dim: int, grid: tuple[int, int, int], absolute: bool) -> None:
        super().__init__()
        self.grid = grid
        self.class_token = nn.Parameter(torch.zeros(dim))
        self.spatial_pos = self.temporal_pos = self.class_pos = None
        if absolute:
            self.spatial_pos = nn.Parameter(torch.zeros(grid[1] * grid[2], dim))
            self.temporal_pos = nn.Parameter(torch.zeros(grid[0], dim))
            self.class_pos = nn.Parameter(torch.zeros(dim))
        for p in self.parameters():
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.class_token.expand(x.shape[0], 1, -1), x], dim=1)
        if self.spatial_pos is not None:
            pos = (self.temporal_pos[:, None, :] + self.spatial_pos[None]).reshape(-1, x.shape[-1])
            x = x + torch.cat([self.class_pos[None], pos], dim=0)[None]
        return x


class MViT(nn.Module):
    """MViT v1 (``version=1``) or v2 (``version=2``).

    ``pool_norm_eps``: epsilon of the layer norms after pooling (torchvision 1e-6, PyTorchVideo
    1e-5). ``dim_mul_at``: block indices where channels and heads double and queries are pooled
    by (1, 2, 2); key/value strides start at ``kv_stride`` and shrink with the queries.
    """

    def __init__(
        self,
        num_classes: int = 400,
        *,
        version: int = 1,
        num_frames: int = 16,
        crop_size: int = 224,
        embed_dim: int = 96,
        heads: int = 1,
        depth: int = 16,
        dim_mul_at: Sequence[int] = (1, 3, 14),
        kv_stride: int = 8,
        dropout: float = 0.5,
        drop_path: float = 0.2,
        pool_norm_eps: float = 1e-6,
        patch_kernel=(3, 7, 7),
        patch_stride=(2, 4, 4),
        patch_padding=(1, 3, 3),
    ) -> None:
        super().__init__()
        if version not in (1, 2):
            raise ValueError(f"MViT version must be 1 or 2, got {version}")
        self.conv_proj = nn.Conv3d(3, embed_dim, patch_kernel, patch_stride, patch_padding)
        grid = [
            s // st for s, st in zip((num_frames, crop_size, crop_size), triple(patch_stride), strict=True)
        ]
        self.pos_encoding = _PosEncoding(embed_dim, tuple(grid), absolute=version == 1)
        dims = [embed_dim * 2 ** sum(1 for m in dim_mul_at if m <= i) for i in range(depth)]
        nheads = [heads * 2 ** sum(1 for m in dim_mul_at if m <= i) for i in range(depth)]
        self.blocks = nn.ModuleList()
        size, kv = list(grid), kv_stride
        for i in range(depth):
            pooled = i in dim_mul_at
            stride_q = (1, 2, 2) if pooled else (1, 1, 1)
            if pooled:
                kv = max(kv // 2, 1)
            kernel_q = (3, 3, 3) if (pooled or version == 2) else (1, 1, 1)
            if version == 1:
                d_in, d_out = dims[i], dims[i + 1] if i + 1 < depth else dims[i]
            else:
                d_in, d_out = dims[i - 1] if i > 0 else embed_dim, dims[i]
            self.blocks.append(
                MultiscaleBlock(
                    d_in,
                    d_out,
                    nheads[i],
                    kernel_q,
                    stride_q,
                    (3, 3, 3),
                    (1, kv, kv),
                    input_size=size,
                    version=version,
                    pool_norm_eps=pool_norm_eps,
                    drop_path=drop_path * i / max(depth - 1, 1),
                )
            )
            size = [s // q for s, q in zip(size, stride_q, strict=True)]
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dims[-1], num_classes))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, batch: dict | torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(rgb_input(batch))
        thw = tuple(x.shape[2:])
        if thw != self.pos_encoding.grid:
            raise ValueError(
                f"MViT was built for a {self.pos_encoding.grid} token grid, got {thw}: "
                "pass num_frames/crop_size matching the clip"
            )
        x = self.pos_encoding(x.flatten(2).transpose(1, 2))
        for block in self.blocks:
            x, thw = block(x, thw)
        return self.head(self.norm(x)[:, 0])


def timesformer(num_classes: int = 400, **kw) -> TimeSformer:
    return TimeSformer(num_classes, **kw)


def vivit_factorized(num_classes: int = 400, **kw) -> ViViTFactorized:
    return ViViTFactorized(num_classes, **kw)


def mvit(num_classes: int = 400, **kw) -> MViT:
    return MViT(num_classes, **kw)


_TS = "Bertasius et al., Is Space-Time Attention All You Need for Video Understanding?, ICML 2021"
_TS_SPEC = InputSpec(
    ("rgb",), num_frames=8, frame_stride=32, crop_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD
)
# Bertasius et al. 2021, Table 1: TFLOPs of inference over 3 test views of 8x224², per view here
_TS_DIVIDED = {"params_m": 121.4, "gflops": 196.0, "frames": 8, "crop": 224,
               "source": "Bertasius et al. 2021 (0.59 TFLOPs / 3 views)"}
@register_model(spec=_TS_SPEC, paper=_TS)
def timesformer_space(num_classes: int = 400, *, mode: str = "space", **kw) -> TimeSformer:
    """TimeSformer ViT-B/16, space-only (S) attention, 8x32"""
    return TimeSformer(num_classes, mode=mode, **kw)


@register_model(spec=_TS_SPEC, paper=_TS)
def timesformer_joint(num_classes: int = 400, *, mode: str = "joint", **kw) -> TimeSformer:
    """TimeSformer ViT-B/16, joint space-time (ST) attention, 8x32"""
    return TimeSformer(num_classes, mode=mode, **kw)


@register_model(spec=_TS_SPEC, paper=_TS, published=_TS_DIVIDED)
def timesformer_divided(num_classes: int = 400, *, mode: str = "divided", **kw) -> TimeSformer:
    """TimeSformer ViT-B/16, divided space-time (T+S) attention, 8x32"""
    return TimeSformer(num_classes, mode=mode, **kw)


@register_model(spec=_TS_SPEC, paper=_TS)
def timesformer_sparse(num_classes: int = 400, *, mode: str = "sparse", **kw) -> TimeSformer:
    """TimeSformer ViT-B/16, sparse local-global (L+G) attention, 8x32"""
    return TimeSformer(num_classes, mode=mode, **kw)


@register_model(spec=_TS_SPEC, paper=_TS)
def timesformer_axial(num_classes: int = 400, *, mode: str = "axial", **kw) -> TimeSformer:
    """TimeSformer ViT-B/16, axial (T+W+H) attention, 8x32"""
    return TimeSformer(num_classes, mode=mode, **kw)


register_model(
    "timesformer",
    timesformer,
    _TS_SPEC,
    paper=_TS,
    summary="TimeSformer ViT-B/16, divided space-time attention, 8x32",
    mode="divided",
)
register_model(
    "vivit_b_fe",
    vivit_factorized,
    InputSpec(("rgb",), num_frames=32, frame_stride=2, crop_size=224, mean=(0.5,) * 3, std=(0.5,) * 3),
    paper="Arnab et al., ViViT: A Video Vision Transformer, ICCV 2021",
    summary="ViViT-B factorized encoder (L_s=12, L_t=4), tubelet 2x16x16, 32x2",
    published={"params_m": 115.1, "gflops": 284.4, "frames": 32, "crop": 224,
               "source": "Arnab et al. 2021, Table 3 (ViViT-B, 16x2)"},
)
_MVIT = "Fan et al., Multiscale Vision Transformers, ICCV 2021; Li et al., MViTv2, CVPR 2022"
register_model(
    "mvit_v1_b",
    mvit,
    InputSpec(("rgb",), num_frames=16, frame_stride=4, crop_size=224),
    paper=_MVIT,
    summary="MViT-B 16x4 (torchvision mvit_v1_b, PyTorchVideo mvit_base_16x4)",
    published={"params_m": 36.61, "gflops": 70.80, "frames": 16, "crop": 224, "source": "PySlowFast zoo"},
    version=1,
)
register_model(
    "mvit_base_16x4",
    mvit,
    InputSpec(("rgb",), num_frames=16, frame_stride=4, crop_size=224),
    paper=_MVIT,
    summary="MViT-B 16x4 as PyTorchVideo's mvit_base_16x4 (pooling norms eps 1e-5)",
    published={"params_m": 36.61, "gflops": 70.80, "frames": 16, "crop": 224, "source": "PySlowFast zoo"},
    version=1,
    pool_norm_eps=1e-5,
)
register_model(
    "mvit_v2_s",
    mvit,
    InputSpec(("rgb",), num_frames=16, frame_stride=4, crop_size=224),
    paper=_MVIT,
    summary="MViTv2-S 16x4 (torchvision mvit_v2_s)",
    published={"params_m": 34.54, "gflops": 64.22, "frames": 16, "crop": 224, "source": "torchvision"},
    version=2,
)
