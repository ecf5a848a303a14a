"""SlowFast: Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019.

A Slow pathway at a low frame rate (stride τ) and a Fast pathway at α times the frame rate
with β = 1/8 of the channels and no temporal downsampling. After the stem and res2-res4 a
lateral connection (a k×1×1 conv with 2βC output channels and temporal stride α, norm, ReLU)
is concatenated into the Slow pathway. R50: Slow conv1 1×7², 64; Fast conv1 5×7², 8;
bottlenecks [1×1² (3×1² in Fast and in Slow res4-5), 1×3², 1×1²] × [3, 4, 6, 3]; global
pooling of both pathways, concatenation, fc.

The model takes the Fast clip ``rgb [N,3,αT,H,W]`` and subsamples the Slow pathway internally
(T indices evenly spaced, as PySlowFast's ``pack_pathway_output``). The presets follow the
PySlowFast zoo (Kinetics-400): R50 4×16 (α=8, k=5), R50 8×8 (α=4, k=7), R101 8×8; their
parameter and FLOP counts are the presets' published figures in the registry.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.blocks3d import Bottleneck3d, residual_stage
from deepvideo.nn.conv import NormBuilder, conv1x3x3_builder, conv3d, resolve_act, resolve_norm
from deepvideo.nn.inputs import rgb_input
from deepvideo.nn.stems import stem3d
from deepvideo.nn.video_resnet import BOTTLENECK_DEPTHS
from deepvideo.spec import InputSpec

StageHook = Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class FastToSlow(nn.Module):
    """Lateral connection: time-strided k×1×1 conv of the Fast features, concatenated to Slow."""

    def __init__(
        self,
        fast_channels: int,
        alpha: int,
        kernel: int = 5,
        ratio: int = 2,
        norm: NormBuilder | str = "bn",
        act="relu",
    ) -> None:
        super().__init__()
        self.conv = conv3d(fast_channels, fast_channels * ratio, (kernel, 1, 1), (alpha, 1, 1))
        self.norm = resolve_norm(norm)(fast_channels * ratio)
        self.act = resolve_act(act)()

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        lateral = self.act(self.norm(self.conv(fast)))
        if lateral.shape[2] != slow.shape[2]:
            raise ValueError(
                f"SlowFast: the Fast pathway has {fast.shape[2]} frames, {lateral.shape[2]} after "
                f"the lateral stride, but Slow has {slow.shape[2]}; use alpha*T frames"
            )
        return torch.cat([slow, lateral], dim=1)


class SlowFast(nn.Module):
    def __init__(
        self,
        num_classes: int = 400,
        *,
        depth: int = 50,
        alpha: int = 8,
        beta_inv: int = 8,
        fusion_kernel: int = 5,
        fusion_ratio: int = 2,
        norm: NormBuilder | str = "bn",
        act="relu",
        width: int = 64,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if depth not in BOTTLENECK_DEPTHS:
            raise ValueError(f"depth must be one of {sorted(BOTTLENECK_DEPTHS)}, got {depth}")
        norm_b = resolve_norm(norm)
        self.alpha = alpha
        fw = width // beta_inv
        self.slow_stem = stem3d(width, (1, 7, 7), norm=norm_b, act=act, pool=True)
        self.fast_stem = stem3d(fw, (5, 7, 7), norm=norm_b, act=act, pool=True)
        self.fuse0 = FastToSlow(fw, alpha, fusion_kernel, fusion_ratio, norm_b, act)
        slow_in, fast_in = width + fw * fusion_ratio, fw
        for s, blocks in enumerate(BOTTLENECK_DEPTHS[depth]):
            s_inner, f_inner = width * 2**s, fw * 2**s
            for name, inner, c_in, kt in (
                ("slow", s_inner, slow_in, 1 if s < 2 else 3),
                ("fast", f_inner, fast_in, 3),
            ):

                def block(i, o, stride, b, inner=inner, kt=kt):
                    return Bottleneck3d(
                        i, inner, o, stride, conv_b=conv1x3x3_builder(), temporal_kernel=kt,
                        norm=norm_b, act=act,
                    )

                stride = (1, 1 if s == 0 else 2, 1 if s == 0 else 2)
                stage = residual_stage(block, c_in, 4 * inner, blocks, stride)
                self.add_module(f"{name}_layer{s + 1}", stage)
            if s < 3:
                self.add_module(
                    f"fuse{s + 1}", FastToSlow(4 * f_inner, alpha, fusion_kernel, fusion_ratio, norm_b, act)
                )
            slow_in, fast_in = 4 * s_inner + 4 * f_inner * fusion_ratio, 4 * f_inner
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(4 * s_inner + 4 * f_inner, num_classes)

    def pathways(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(slow, fast) inputs from the Fast-rate clip: T // alpha evenly spaced frames for Slow."""
        t = x.shape[2]
        if t < self.alpha:
            raise ValueError(f"SlowFast needs at least alpha={self.alpha} frames, got {t}")
        idx = torch.linspace(0, t - 1, t // self.alpha, device=x.device).long()
        return x.index_select(2, idx), x

    def forward(self, batch: dict | torch.Tensor) -> torch.Tensor:
        slow, fast = self.pathways(rgb_input(batch))
        return self.forward_pathways(slow, fast)

    def features(self, slow: torch.Tensor, fast: torch.Tensor,
                 after_stage: StageHook | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The Slow and Fast res5 feature maps. ``after_stage(s, slow, fast) -> (slow, fast)``, if
        given, is called after stage ``s`` = 1..3 (res2..res4) and its Fast→Slow lateral: the
        place where a subclass adds its own laterals (e.g. the audio ones of AVSlowFast)."""
        slow, fast = self.slow_stem(slow), self.fast_stem(fast)
        slow = self.fuse0(slow, fast)
        for s in range(1, 5):
            slow = getattr(self, f"slow_layer{s}")(slow)
            fast = getattr(self, f"fast_layer{s}")(fast)
            if s < 4:
                slow = getattr(self, f"fuse{s}")(slow, fast)
                if after_stage is not None:
                    slow, fast = after_stage(s, slow, fast)
        return slow, fast

    def forward_pathways(self, slow: torch.Tensor, fast: torch.Tensor, after_stage: StageHook | None = None,
                         extra_features: torch.Tensor | None = None) -> torch.Tensor:
        """Class scores from the two pathways' inputs: :meth:`features`, global average pooling,
        concatenation (``[slow, fast, extra_features]``: a subclass's own pooled features
        ``[N, C]``, matching its wider ``fc``), dropout, ``fc``."""
        slow, fast = self.features(slow, fast, after_stage)
        pooled = [slow.mean(dim=(2, 3, 4)), fast.mean(dim=(2, 3, 4))]
        if extra_features is not None:
            pooled.append(extra_features)
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))

_SF = "Feichtenhofer et al., SlowFast Networks for Video Recognition, ICCV 2019"
_FAST_CLIP = InputSpec(("rgb",), num_frames=32, frame_stride=2, crop_size=224)
_ZOO = "PySlowFast zoo"


@register_model(
    spec=_FAST_CLIP,
    paper=_SF,
    summary="SlowFast R50 4x16 (alpha=8, fusion 5x1x1); input is the Fast clip",
    published={"params_m": 34.48, "gflops": 36.69, "frames": 32, "crop": 256, "source": _ZOO},
)
def slowfast_r50_4x16(num_classes: int = 400, **kw) -> SlowFast:
    """SlowFast R50 4×16: α = 8, 5×1×1 lateral convs."""
    return SlowFast(num_classes, **{"alpha": 8, "fusion_kernel": 5, **kw})


@register_model(
    spec=_FAST_CLIP,
    paper=_SF,
    summary="SlowFast R50 8x8 (alpha=4, fusion 7x1x1; PyTorchVideo's slowfast_r50)",
    published={"params_m": 34.57, "gflops": 65.71, "frames": 32, "crop": 256, "source": _ZOO},
)
def slowfast_r50(num_classes: int = 400, **kw) -> SlowFast:
    """SlowFast R50 8×8: α = 4, 7×1×1 lateral convs (PyTorchVideo's ``slowfast_r50``)."""
    return SlowFast(num_classes, **{"alpha": 4, "fusion_kernel": 7, **kw})


@register_model(
    spec=_FAST_CLIP,
    paper=_SF,
    summary="SlowFast R101 8x8 (alpha=4, fusion 5x1x1)",
    published={"params_m": 62.83, "gflops": 127.20, "frames": 32, "crop": 256, "source": _ZOO},
)
def slowfast_r101(num_classes: int = 400, **kw) -> SlowFast:
    """SlowFast R101 8×8: α = 4, 5×1×1 lateral convs."""
    return SlowFast(num_classes, **{"alpha": 4, "fusion_kernel": 5, "depth": 101, **kw})
