"""CPU inference for the video models: an eval-only copy with folded norms and faster kernels.

:func:`optimize_for_inference` returns an eval-mode copy of a model with

- batch norm folded into the preceding convolution (``w' = w γ/σ``, ``b' = (b - μ) γ/σ + β``,
  σ = sqrt(running_var + eps)), which removes one pass over every activation;
- weights and inputs in ``channels_last_3d`` layout, which oneDNN's 3D convolutions prefer;
- fp32 linear layers computed by oneDNN as 1×1 convolutions (:class:`OneDNNLinear`): on AMD
  CPUs MKL's sgemm, behind ``nn.Linear``, runs its AVX2 path rather than AVX-512;
- fp32 convolutions with a temporal kernel of 3 computed with Winograd's minimal filtering
  F(4, 3) along time (:class:`TemporalWinogradConv3d`): half the multiply-adds;
- optionally bfloat16 weights and activations (on CPUs with AVX512-BF16 / AMX, see
  :func:`bf16_supported`): the whole network is cast once, not per call as autocast would (which
  also converts activations back and forth around its fp32 ops); 3D max pooling and the RGB stem
  convolution stay in fp32, whose bf16 CPU kernels are slower (:func:`keep_fp32_where_faster`);
  norms, softmax and reductions accumulate in fp32 inside their bf16 CPU kernels;
- optionally ``torch.compile`` with inductor freezing (prepacked oneDNN weights, conv +
  pointwise fusion); the first call compiles, which takes long on a small CPU.

Outputs in fp32 equal the original model's within float rounding (tests check 1e-4).
"""

from __future__ import annotations

import copy
import threading

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.nn.norm import norm_scale_shift

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def bf16_supported() -> bool:
    """True when the CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _last_conv(module: nn.Module) -> nn.Module | None:
    if isinstance(module, _CONVS):
        return module
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], _CONVS):
        return module[-1]
    return None


@torch.no_grad()
def _fold(conv: nn.Module, bn: nn.Module) -> None:
    scale, shift = norm_scale_shift(bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps)
    conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
    if conv.bias is None:
        conv.bias = nn.Parameter(shift.clone())
    else:
        conv.bias.copy_(conv.bias * scale + shift)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every eval-mode batch norm that directly follows a conv into it (in place).

    A pair is two consecutive children of one module, in registration order (which is the
    order of the forward pass in deepvideo's blocks): a conv (or a sequence ending in one)
    followed by a batch norm with running statistics. Returns the number folded.
    """
    folded = 0
    for parent in list(model.modules()):
        children = list(parent.named_children())
        for (_, a), (name_b, b) in zip(children, children[1:], strict=False):
            conv = _last_conv(a)
            if conv is None or not isinstance(b, _BNS) or b.running_mean is None:
                continue
            if b.num_features != conv.out_channels:
                continue
            _fold(conv, b)
            setattr(parent, name_b, nn.Identity())
            folded += 1
    return folded


class OneDNNLinear(nn.Module):
    """``nn.Linear`` computed as a 1×1 convolution on CPU in fp32, i.e. by oneDNN's GEMM.

    PyTorch sends fp32 ``nn.Linear`` to MKL's sgemm, which on AMD CPUs runs its AVX2 path while
    oneDNN uses its AVX-512 kernels. Viewing the ``[M, K]`` input as a channels-last ``[1, K, M, 1]``
    image makes it a 1×1 convolution, which PyTorch gives to oneDNN, with no copy. Small ``M`` (class
    heads), other dtypes and other devices keep ``F.linear``; the result equals it within rounding.
    """

    MIN_ROWS = 64

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // max(self.in_features, 1)
        if x.device.type != "cpu" or x.dtype != torch.float32 or rows < self.MIN_ROWS:
            return F.linear(x, self.weight, self.bias)
        flat = x.reshape(rows, self.in_features)
        image = flat.view(1, rows, 1, self.in_features).permute(0, 3, 1, 2)  # channels-last, no copy
        w = self.weight.view(self.out_features, self.in_features, 1, 1)
        y = F.conv2d(image, w, self.bias)  # [1, out, rows, 1], channels-last
        return y.permute(0, 2, 3, 1).reshape(*x.shape[:-1], self.out_features)


def _wrap_children(model: nn.Module, wrapper: type[nn.Module], applies) -> int:
    """Replace, in place, every submodule for which ``applies(module)`` by ``wrapper(module)``
    (not inside an existing ``wrapper``: idempotent). Returns the count."""
    wrapped = 0
    for parent in list(model.modules()):
        if isinstance(parent, wrapper):
            continue
        for name, child in list(parent.named_children()):
            if applies(child):
                setattr(parent, name, wrapper(child))
                wrapped += 1
    return wrapped


def linears_to_onednn(model: nn.Module) -> int:
    """Replace every ``nn.Linear`` by :class:`OneDNNLinear` (same parameters); in place."""
    return _wrap_children(model, OneDNNLinear, lambda m: type(m) is nn.Linear)


# Winograd F(4, 3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016),
# interpolation points 0, 1, -1, 2, -2, inf: y = Aᵀ[(G g) ⊙ (Bᵀ d)] for 4 outputs of a 3-tap filter g
# over 6 inputs d. Bᵀ and Aᵀ are applied in TemporalWinogradConv3d.forward as fused adds.
_WINOGRAD_G = [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
]
_scratch = threading.local()  # per-thread reusable workspace of TemporalWinogradConv3d


def _workspace(numel: int, like: torch.Tensor) -> torch.Tensor:
    """A flat scratch tensor, reused across layers and calls (fresh pages cost as much as the adds)."""
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.numel() < numel or buf.dtype != like.dtype or buf.device != like.device:
        buf = _scratch.buf = torch.empty(numel, dtype=like.dtype, device=like.device)
    return buf[:numel]


def _channels_last(flat: torch.Tensor, n: int, c: int, t: int, h: int, w: int) -> torch.Tensor:
    return flat.view(n, t, h, w, c).permute(0, 4, 1, 2, 3)


class TemporalWinogradConv3d(nn.Module):
    """A 3D convolution with temporal kernel 3 (stride 1, padding 1) computed by Winograd's F(4, 3)
    along time: every 4 output frames take 6 convolutions with spatial-only kernels over
    transformed input frames instead of 12 over the originals, i.e. half the multiply-adds
    (the spatial part stays oneDNN's direct convolution). Inference in fp32 on CPU with at least
    4 frames; otherwise (and under autograd) the wrapped convolution runs. Outputs equal it within
    fp32 rounding. The padded and transformed inputs live in a per-thread workspace, kept between
    calls: ``4⌈T/4⌉ + 2`` padded frames plus ``6⌈T/4⌉`` transformed ones for ``T`` input frames.
    """

    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        self.conv = conv
        g = torch.tensor(_WINOGRAD_G, dtype=torch.float64)
        u = torch.einsum("ik,ockhw->iohwc", g, conv.weight.detach().double())  # [6, out, kh, kw, in]
        self.register_buffer("u", u.float().unsqueeze(2).contiguous(), persistent=False)  # [6,o,1,kh,kw,i]
        self.spatial = {
            "stride": (1, *conv.stride[1:]),
            "padding": (0, *conv.padding[1:]),
            "dilation": (1, *conv.dilation[1:]),
        }

    @staticmethod
    def applies(conv: nn.Module) -> bool:
        """Dense 3D convs with a spatial extent (GEMM-efficient 2D parts) and temporal kernel 3, stride 1,
        padding 1; at least 16 input channels (the RGB stem stays direct)."""
        return (
            type(conv) is nn.Conv3d
            and conv.kernel_size[0] == 3
            and conv.kernel_size[1] * conv.kernel_size[2] > 1
            and (conv.stride[0], conv.padding[0], conv.dilation[0], conv.groups) == (1, 1, 1, 1)
            and conv.padding_mode == "zeros"
            and conv.in_channels >= 16
        )

    @torch.compiler.disable  # in-place writes into strided views: runs eagerly inside compiled models
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = x.shape
        if t < 4 or x.dtype != torch.float32 or x.device.type != "cpu" or torch.is_grad_enabled():
            return self.conv(x)
        tiles = -(-t // 4)
        tp = 4 * tiles + 2
        frame = n * h * w * c
        space = _workspace(frame * (tp + 6 * tiles), x)
        xp = _channels_last(space[: frame * tp], n, c, tp, h, w)  # zero-padded in time
        xp[:, :, 0].zero_()
        xp[:, :, t + 1 :].zero_()
        xp[:, :, 1 : t + 1] = x
        d = [xp[:, :, k : k + 4 * tiles : 4] for k in range(6)]  # the 6 input frames of every tile
        starts = [frame * (tp + i * tiles) for i in range(6)]
        v = [_channels_last(space[s : s + frame * tiles], n, c, tiles, h, w) for s in starts]
        # Bᵀ d:  v0 = 4d0 - 5d2 + d4,  v1,2 = (d4 - 4d2) ± (d3 - 4d1),  v3,4 = (d4 - d2) ± 2(d3 - d1),
        #        v5 = 4d1 - 5d3 + d5
        torch.add(d[4], d[2], alpha=-5, out=v[0]).add_(d[0], alpha=4)
        torch.add(d[4], d[2], alpha=-4, out=v[1])
        torch.add(d[3], d[1], alpha=-4, out=v[2])
        v[1].add_(v[2])
        torch.sub(v[1], v[2], alpha=2, out=v[2])
        torch.sub(d[4], d[2], out=v[3])
        torch.sub(d[3], d[1], out=v[4])
        v[3].add_(v[4], alpha=2)
        torch.sub(v[3], v[4], alpha=4, out=v[4])
        torch.add(d[5], d[3], alpha=-5, out=v[5]).add_(d[1], alpha=4)
        u = self.u.permute(0, 1, 5, 2, 3, 4)  # [6, out, in, 1, kh, kw], channels-last weights
        bias = self.conv.bias  # Aᵀ's column 1 is all ones: the bias rides on m1
        m = [F.conv3d(vi, u[i], bias if i == 1 else None, **self.spatial) for i, vi in enumerate(v)]
        o, ho, wo = m[0].shape[1], m[0].shape[3], m[0].shape[4]
        out = torch.empty(n, 4 * tiles, ho, wo, o, dtype=x.dtype).permute(0, 4, 1, 2, 3)
        # Aᵀ m:  y0 = m0 + a + c,  y1 = b + 2e,  y2 = a + 4c,  y3 = b + 8e + m5
        #        with a, b = m1 ± m2 and c, e = m3 ± m4 (computed in place)
        m[1].add_(m[2])
        torch.sub(m[1], m[2], alpha=2, out=m[2])
        m[3].add_(m[4])
        torch.sub(m[3], m[4], alpha=2, out=m[4])
        torch.add(m[0], m[1], out=out[:, :, 0::4]).add_(m[3])
        torch.add(m[2], m[4], alpha=2, out=out[:, :, 1::4])
        torch.add(m[1], m[3], alpha=4, out=out[:, :, 2::4])
        torch.add(m[2], m[4], alpha=8, out=out[:, :, 3::4]).add_(m[5])
        return out if t == 4 * tiles else out[:, :, :t]


def winograd_temporal(model: nn.Module) -> int:
    """Wrap every conv that :meth:`TemporalWinogradConv3d.applies` to; in place. Returns the count."""
    return _wrap_children(model, TemporalWinogradConv3d, TemporalWinogradConv3d.applies)


class Float32Island(nn.Module):
    """Runs ``module`` in fp32 inside a bf16 network, returning the input's dtype.

    On CPU the bf16 kernels of some ops are slower than fp32 ones: 3D max pooling
    (no channels-last bf16 kernel: a layout copy plus a scalar loop) and the stem convolution
    over the 3 input channels (too few channels for the bf16 dot-product instructions).
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False):
            return self.module(x.float()).to(x.dtype)


def keep_fp32_where_faster(model: nn.Module) -> int:
    """Wrap the ops that bf16 slows down on CPU (see :class:`Float32Island`); in place."""

    def slower_in_bf16(m: nn.Module) -> bool:  # AvgPool3d: no bf16 CPU kernel at all
        stem = isinstance(m, nn.Conv3d) and m.in_channels <= 4
        return stem or isinstance(m, (nn.MaxPool3d, nn.AvgPool3d))

    return _wrap_children(model, Float32Island, slower_in_bf16)


class InferenceModel(nn.Module):
    """Wraps an optimized model: converts inputs to channels-last (and bf16); returns fp32 scores."""

    def __init__(self, model: nn.Module, channels_last: bool, bf16: bool) -> None:
        super().__init__()
        self.model = model
        self.channels_last = channels_last
        self.bf16 = bf16
        self.input_spec = getattr(model, "input_spec", None)
        self.model_name = getattr(model, "model_name", type(model).__name__)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        if self.bf16 and x.is_floating_point():
            x = x.to(torch.bfloat16)
        if self.channels_last and x.dim() == 5:
            return x.contiguous(memory_format=torch.channels_last_3d)
        return x

    def forward(self, batch):
        if isinstance(batch, torch.Tensor):
            batch = self._prep(batch)
        else:
            batch = {k: self._prep(v) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        with torch.inference_mode():
            out = self.model(batch)
        return out.float()


def optimize_for_inference(
    model: nn.Module,
    *,
    fold_bn: bool = True,
    channels_last: bool = True,
    bf16: bool = False,
    compile: bool = False,
    winograd: bool = True,
    inplace: bool = False,
) -> InferenceModel:
    """An eval-mode, inference-only version of ``model`` (a copy unless ``inplace``)."""
    if bf16 and not bf16_supported():
        raise RuntimeError("bf16=True needs a CPU with AVX512-BF16 or AMX; use bf16=False on this machine")
    m = model if inplace else copy.deepcopy(model)
    m.eval()
    if fold_bn:
        fold_batchnorm(m)
    has_conv3d = any(isinstance(x, nn.Conv3d) for x in m.modules())
    channels_last = channels_last and has_conv3d
    if channels_last:
        m = m.to(memory_format=torch.channels_last_3d)
    if bf16:
        keep_fp32_where_faster(m)
        m.to(torch.bfloat16)
        for w in m.modules():
            if isinstance(w, Float32Island):
                w.module.float()
    else:
        linears_to_onednn(m)
        if winograd:
            winograd_temporal(m)
    for p in m.parameters():
        p.requires_grad_(False)
    if compile:
        # inductor with freezing: weights become constants, prepacked for oneDNN, and
        # conv + ReLU / add are fused
        m = torch.compile(m, dynamic=False, options={"freezing": True})
    return InferenceModel(m, channels_last, bf16)
