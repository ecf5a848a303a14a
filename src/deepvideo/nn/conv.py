"""Convolution, normalization and activation builders.

Blocks receive *builders* (plain callables) instead of configuration objects, so a family
file chooses full 3D, 2D-in-3D (1×d×d), (2+1)D or channel-separated convolutions and batch
or group norm without subclassing (the pattern of torchvision's video ResNets). The same norm
kinds serve the 2D networks (``norm_builder(kind, dims=2)``: BatchNorm2d); the transformers'
channel-last tokens take theirs from :func:`resolve_token_norm` (LayerNorm, ViT's eps 1e-6).

- (2+1)D: Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition",
  CVPR 2018. A t×d×d convolution from N_{i-1} to N_i channels becomes a spatial 1×d×d
  convolution to M_i channels, norm, activation and a temporal t×1×1 convolution, with
  ``M_i = floor(t d² N_{i-1} N_i / (d² N_{i-1} + t N_i))`` so both have the same parameters.
- Group normalization: Wu & He, "Group Normalization", ECCV 2018 (G = 32 groups).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

NormBuilder = Callable[[int], nn.Module]
ActBuilder = Callable[[], nn.Module]
ConvBuilder = Callable[[int, int, tuple[int, int, int]], nn.Module]  # (in, out, stride) -> module


def triple(value: int | Sequence[int]) -> tuple[int, int, int]:
    """``3 -> (3, 3, 3)``; a 3-sequence is returned as a tuple of ints."""
    if isinstance(value, int):
        return (value, value, value)
    t = tuple(int(v) for v in value)
    if len(t) != 3:
        raise ValueError(f"expected an int or 3 values (t, h, w), got {value!r}")
    return t  # type: ignore[return-value]


def same_padding(kernel: Sequence[int]) -> tuple[int, ...]:
    """Padding that keeps the size at stride 1 for odd kernels (``k // 2``)."""
    return tuple(k // 2 for k in kernel)


def midplanes(in_channels: int, out_channels: int, t: int = 3, d: int = 3) -> int:
    """Tran et al. 2018's M_i: channels between the spatial and temporal (2+1)D convs.

    Chosen so that the factorized pair has (about) the parameters of the full t×d×d conv.
    """
    return (t * d * d * in_channels * out_channels) // (d * d * in_channels + t * out_channels)


def conv3d(
    in_channels: int,
    out_channels: int,
    kernel: int | Sequence[int] = 3,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | None = None,
    groups: int = 1,
    bias: bool = False,
) -> nn.Conv3d:
    """A Conv3d with "same" padding by default and no bias (a norm follows)."""
    k = triple(kernel)
    pad = same_padding(k) if padding is None else triple(padding)
    return nn.Conv3d(
        in_channels, out_channels, k, stride=triple(stride), padding=pad, groups=groups, bias=bias
    )


NORM_KINDS = ("bn", "gn", "none")
TOKEN_NORM_KINDS = ("ln", "none")
TOKEN_NORM_EPS = 1e-6  # ViT / ViViT / TimeSformer LayerNorm epsilon


def norm_builder(
    kind: str = "bn", groups: int = 32, eps: float = 1e-5, momentum: float = 0.1, dims: int = 3
) -> NormBuilder:
    """Norm of channel-first maps ``[N, C, ...]``: ``kind`` = "bn" (BatchNorm1d/2d/3d after
    ``dims``), "gn" (GroupNorm, ``groups`` or fewer groups) or "none". Channel-last tokens:
    :func:`resolve_token_norm`."""
    if kind == "bn":
        batch_norms = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
        if dims not in batch_norms:
            raise ValueError(f"batch norm over {dims} spatial dims: use dims 1, 2 or 3")
        return lambda c: batch_norms[dims](c, eps=eps, momentum=momentum)
    if kind == "gn":

        def group_norm(c: int) -> nn.Module:
            g = min(groups, c)
            while c % g:
                g -= 1
            return nn.GroupNorm(g, c, eps=eps)

        return group_norm
    if kind == "none":
        return lambda c: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: use one of {NORM_KINDS}")


def act_builder(kind: str = "relu") -> ActBuilder:
    """``kind`` = "relu", "swish" (SiLU), "gelu" or "none"."""
    table: dict[str, ActBuilder] = {
        "relu": lambda: nn.ReLU(inplace=True),
        "swish": nn.SiLU,
        "silu": nn.SiLU,
        "gelu": nn.GELU,
        "none": nn.Identity,
    }
    if kind not in table:
        raise ValueError(f"unknown activation {kind!r}: use one of {sorted(table)}")
    return table[kind]


def resolve_norm(norm: str | NormBuilder, **kw) -> NormBuilder:
    """A builder as is; a kind through :func:`norm_builder` (``kw``: its options, e.g. ``dims=2``)."""
    return norm_builder(norm, **kw) if isinstance(norm, str) else norm


def resolve_act(act: str | ActBuilder) -> ActBuilder:
    return act_builder(act) if isinstance(act, str) else act


def resolve_token_norm(norm: str | NormBuilder = "ln", eps: float = TOKEN_NORM_EPS) -> NormBuilder:
    """Norm of ``[..., C]`` tokens (channel last): "ln" (LayerNorm, ``eps`` 1e-6 as in ViT),
    "none" or a builder ``C -> module`` (e.g. ``nn.RMSNorm``)."""
    if not isinstance(norm, str):
        return norm
    if norm == "ln":
        return lambda c: nn.LayerNorm(c, eps=eps)
    if norm == "none":
        return norm_builder("none")
    raise ValueError(f"unknown token norm {norm!r}: tokens are channel-last, "
                     f"use one of {TOKEN_NORM_KINDS} or a builder")


class ConvNormAct(nn.Sequential):
    """conv -> norm -> activation (indices 0, 1, 2), "same" padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | Sequence[int] = 1,
        stride: int | Sequence[int] = 1,
        *,
        groups: int = 1,
        norm: NormBuilder | str = "bn",
        act: ActBuilder | str | None = "relu",
        bias: bool = False,
    ) -> None:
        layers: list[nn.Module] = [
            conv3d(in_channels, out_channels, kernel, stride, groups=groups, bias=bias),
            resolve_norm(norm)(out_channels),
        ]
        if act is not None:
            layers.append(resolve_act(act)())
        super().__init__(*layers)


class Conv2Plus1d(nn.Sequential):
    """(2+1)D convolution: spatial 1×d×d to ``mid`` channels, norm, act, temporal t×1×1.

    Submodules ``0`` (first conv), ``1`` (norm), ``2`` (act), ``3`` (second conv). With
    ``temporal_first`` the temporal conv comes first (PyTorchVideo's R(2+1)D-50 order).
    ``mid`` defaults to Tran et al.'s M_i (:func:`midplanes`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        mid: int | None = None,
        *,
        norm: NormBuilder | str = "bn",
        act: ActBuilder | str = "relu",
        temporal_first: bool = False,
        groups: int = 1,
    ) -> None:
        t, kh, kw = triple(kernel)
        st, sh, sw = triple(stride)
        if mid is None:
            mid = midplanes(in_channels, out_channels, t, kh)
        spatial_in, spatial_out = (mid, out_channels) if temporal_first else (in_channels, mid)
        temporal_in, temporal_out = (in_channels, mid) if temporal_first else (mid, out_channels)
        spatial = nn.Conv3d(
            spatial_in,
            spatial_out,
            (1, kh, kw),
            stride=(1, sh, sw),
            padding=(0, kh // 2, kw // 2),
            bias=False,
            groups=groups,
        )
        temporal = nn.Conv3d(
            temporal_in,
            temporal_out,
            (t, 1, 1),
            stride=(st, 1, 1),
            padding=(t // 2, 0, 0),
            bias=False,
            groups=groups,
        )
        first, second = (temporal, spatial) if temporal_first else (spatial, temporal)
        super().__init__(first, resolve_norm(norm)(mid), resolve_act(act)(), second)
        self.mid_channels = mid


# ---- conv builders: (in, out, stride) -> module ---------------------------------------------


def conv3x3x3_builder(kernel: int | Sequence[int] = 3, groups: int = 1) -> ConvBuilder:
    """Full 3D convolution (R3D, C3D, I3D)."""
    return lambda i, o, s: conv3d(i, o, kernel, s, groups=groups)


def conv1x3x3_builder(d: int = 3) -> ConvBuilder:
    """2D convolution applied to every frame (R2D, f-R2D, the 2D part of MC/rMC).

    A temporal stride, if given, subsamples frames (the 1-frame kernel sees no neighbours).
    """
    return lambda i, o, s: conv3d(i, o, (1, d, d), s)


def conv2plus1d_builder(
    t: int = 3,
    d: int = 3,
    norm: NormBuilder | str = "bn",
    act: ActBuilder | str = "relu",
    mid: int | Callable[[int, int], int] | None = None,
    temporal_first: bool = False,
) -> ConvBuilder:
    """(2+1)D convolution; ``mid`` is an int, a function ``(in, out) -> int`` or None for M_i."""

    def build(i: int, o: int, s: tuple[int, int, int]) -> nn.Module:
        m = mid(i, o) if callable(mid) else mid
        return Conv2Plus1d(i, o, (t, d, d), s, m, norm=norm, act=act, temporal_first=temporal_first)

    return build


def depthwise_builder(kernel: int | Sequence[int] = 3) -> ConvBuilder:
    """Channel-separated (depthwise) 3D conv: groups = channels (ir-CSN, X3D)."""

    def build(i: int, o: int, s: tuple[int, int, int]) -> nn.Module:
        if i != o:
            raise ValueError(f"a depthwise conv keeps the channels; got {i} -> {o}")
        return conv3d(i, o, kernel, s, groups=i)

    return build


def ip_csn_builder(kernel: int | Sequence[int] = 3) -> ConvBuilder:
    """Interaction-preserved channel-separated conv (ip-CSN): 1×1×1 conv then depthwise k³."""
    return lambda i, o, s: nn.Sequential(conv3d(i, o, 1), conv3d(o, o, kernel, s, groups=o))
