"""Parameters and FLOPs of a model for one view (one clip at one crop).

One multiply-add counts as one FLOP, as fvcore and the published model zoos do. Operators
are counted with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions, linear layers,
``mm``/``addmm``/``bmm``/``matmul``/``einsum`` and scaled-dot-product attention; it reports
two FLOPs per multiply-add, so its totals are halved). With ``count_norms=True`` forward hooks
on normalization modules add fvcore's training-mode cost of batch/group/layer norm (5 FLOPs
per element with an affine transform, 4 without) — the convention of the PySlowFast zoo
table, whose figures the registry's presets carry (``ModelInfo.published``).

The model is built on the ``meta`` device by default, so counting allocates no memory for
weights or activations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deepvideo.spec import InputSpec


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """q kᵀ and attn v of fused CPU attention (2 per multiply-add, FlopCounterMode's unit)."""
    b, h, q, d = query_shape
    k, dv = key_shape[-2], value_shape[-1]
    return 2 * b * h * q * k * (d + dv)


# fused attention kernels FlopCounterMode does not know on CPU
_EXTRA = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flops}

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


@dataclass
class Profile:
    """Size and cost of one model at one input size (FLOPs = multiply-adds, per view)."""

    name: str
    params: int
    flops: int
    input_shape: dict[str, tuple[int, ...]]
    by_operator: dict[str, int] = field(default_factory=dict)
    by_module: dict[str, int] = field(default_factory=dict)

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def mparams(self) -> float:
        return self.params / 1e6


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def input_shapes(
    spec: InputSpec, batch: int = 1, frames: int | None = None, crop: int | None = None
) -> dict[str, tuple[int, ...]]:
    """Batch shapes a model with ``spec`` eats: ``{"rgb": (N,3,T,H,W), "flow": (N,2,L,H,W),
    "audio": (N,1,Ta,F)}``."""
    size = crop or spec.crop_size
    shapes = {}
    if "rgb" in spec.modalities or "rgbdiff" in spec.modalities:
        t = frames or spec.num_segments * spec.num_frames
        shapes["rgb"] = (batch, 3, t, size, size)
    if "flow" in spec.modalities:
        t = frames or spec.num_segments * spec.flow_stack
        shapes["flow"] = (batch, 2, t, size, size)
    if "audio" in spec.modalities:  # log-mel spectrogram of the clip
        shapes["audio"] = (batch, 1, spec.audio_frames, spec.audio_mels)
    return shapes


def count_flops(
    model: nn.Module, inputs: dict[str, torch.Tensor] | torch.Tensor, *, count_norms: bool = False
) -> tuple[int, dict[str, int], dict[str, int]]:
    """Multiply-adds of one forward pass: ``(total, by_operator, by_top_level_module)``.

    ``inputs`` may live on the meta device (then the model must too).
    """
    norm_flops: dict[str, int] = {}
    handles = []
    if count_norms:
        for name, m in model.named_modules():
            if isinstance(m, _NORMS):
                affine = getattr(m, "affine", None)
                if affine is None:
                    affine = getattr(m, "elementwise_affine", True)
                per = 5 if affine else 4

                def hook(mod, args, out, _name=name, _per=per):
                    norm_flops[_name] = norm_flops.get(_name, 0) + args[0].numel() * _per

                handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_EXTRA) as counter:
            model(inputs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    counts = counter.get_flop_counts()
    by_op = {str(k).replace("aten.", ""): int(v) // 2 for k, v in counts.get("Global", {}).items()}
    by_module: dict[str, int] = {}
    top = {n for n, _ in model.named_children()}
    depth2: dict[str, int] = {}
    for mod_name, ops in counts.items():
        parts = mod_name.split(".")[1:]  # drop the root class name
        flops = sum(int(v) // 2 for v in ops.values())
        if len(parts) == 1 and parts[0] in top:
            by_module[parts[0]] = flops
        elif len(parts) == 2 and parts[0] in top:  # children of containers that are never called
            depth2[parts[0]] = depth2.get(parts[0], 0) + flops
    for name, flops in depth2.items():
        by_module.setdefault(name, flops)
    if norm_flops:
        by_op["norm"] = sum(norm_flops.values())
        for name, v in norm_flops.items():
            key = name.split(".", 1)[0]
            if key in by_module or key in top:
                by_module[key] = by_module.get(key, 0) + v
    return sum(by_op.values()), by_op, by_module


def profile_model(
    name_or_model: str | nn.Module,
    *,
    num_classes: int = 400,
    frames: int | None = None,
    crop: int | None = None,
    batch: int = 1,
    device: str | torch.device = "meta",
    count_norms: bool = False,
    **overrides,
) -> Profile:
    """Parameters and FLOPs of a registered model (built on ``device``) or of a module.

    ``frames`` / ``crop`` replace the spec's clip length and crop size (e.g. the test crop of
    a zoo table); FLOPs are reported per clip (divided by ``batch``).
    """
    if isinstance(name_or_model, str):
        from deepvideo.models.registry import create_model

        with torch.device(device):
            model = create_model(name_or_model, num_classes=num_classes, **overrides)
        name = name_or_model
    else:
        model, name = name_or_model, type(name_or_model).__name__
        device = next(model.parameters()).device
    spec: InputSpec = getattr(model, "input_spec", None) or InputSpec(("rgb",), num_frames=8, crop_size=224)
    shapes = input_shapes(spec, batch, frames, crop)
    inputs = {k: torch.zeros(s, device=device) for k, s in shapes.items()}
    total, by_op, by_module = count_flops(model, inputs, count_norms=count_norms)
    return Profile(
        name,
        count_parameters(model),
        total // batch,
        shapes,
        {k: v // batch for k, v in by_op.items()},
        {k: v // batch for k, v in by_module.items()},
    )
