"""Spatiotemporal activation maximisation of any layer and channel of a video model, for every
input stream at once (Feichtenhofer, Pinz, Wildes & Zisserman, "What have we learned from deep
representations for action recognition?", CVPR 2018; Feichtenhofer's thesis, ch. 6).

From random noise, the inputs ``x`` of all streams (RGB ``[3, T, H, W]`` and/or flow
``[2, T, H, W]``) are optimised with the model's weights fixed to maximise

    ``<a_l(x), e_c> / (rho_l^2 a_hat_{l,c})  -  sum_streams (lambda_B R_B(x) + lambda_TV TV(x))``

``<a_l(x), e_c>`` is channel ``c`` of layer ``l`` summed over its positions (the class score
for ``"logits"``), ``rho_l`` the layer's receptive field size (:mod:`.receptive`), ``a_hat``
the channel's maximum over a dataset (:mod:`.stats`; 1 when not given), and the regularisers,
their weights and constants are those of :mod:`.regularizers` (``B = 160``, ``alpha = 3``,
``V = B / 6.5``, flow TV weight x10).

Units: the optimised ``x`` is in 8-bit image units as in the chapter (where ``B = 160`` is
meant): RGB as mean-subtracted pixel values (0..255 scale), flow as the two-stream JPEG
quantisation (``127.5`` units = ``deepvideo.flow.store.DEFAULT_BOUND`` = 20 px). The model
receives them normalised as the data pipeline would: ``(x / 255) / std`` for RGB and
``(x * 20 / 127.5) / std`` px for flow.

Optimiser: the chapter's AdaGrad-like ascent with the squared gradients aggregated over a
window of recent iterations (an AdaDelta-like window instead of AdaGrad's whole history):
``x += lr_k g / sqrt(mean_{last W} g^2)``, then every pixel is projected into the ``B`` ball
(``R_B``'s infinite part). Step size ``lr`` (8-bit units per step) decays by a cosine to
``lr / 10``. The step size, window, step count and noise level are not stated in our digest of
the chapter; ours (:class:`MaximizeOptions`) are CPU-sized and documented in docs/visualize.md.

Jitter (``jitter > 0``; not in the chapter, a common addition to activation maximisation): at
every step the model sees the inputs translated by a random offset of up to ``jitter`` pixels,
the uncovered border zero-filled, so a pattern only pays off if it works wherever the frame's
borders fall. Without it, the zero-mean field a mean-subtracting motion stream leaves the
optimiser (the gradient through the subtraction has zero mean) can park the counter-motion
that balances the class motion at a fixed border, where the network weighs it least. The shift
is not circular: a wrap-around shift would make the optimum a periodic texture, whose total
curl is zero, and rotation could not show.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from deepvideo.flow.store import DEFAULT_BOUND
from deepvideo.spec import FLOW_SCALE
from deepvideo.visualize import regularizers as R
from deepvideo.visualize.hooks import LOGITS, capture, channel_response, frozen, logits_of
from deepvideo.visualize.receptive import receptive_field

FLOW_UNITS_PER_PX = 127.5 / DEFAULT_BOUND  # 8-bit flow units per pixel of displacement
STREAMS = ("rgb", "flow")


@dataclass
class MaximizeOptions:
    """Settings of one maximisation (defaults: CPU-sized)."""

    reg: str = "tv3d"  # tv2d | tv3d | tv2d1d
    kappa: float = 1.0  # TV3D temporal weight
    chi: float = 1.0  # TV2D1D temporal weight (0: no temporal constraint)
    steps: int = 200
    lr: float = 4.0  # 8-bit units per step at the start
    window: int = 10  # iterations whose squared gradients normalise a step
    noise: float = 10.0  # std of the initial noise, 8-bit units
    per_pixel: bool = False  # normalise each pixel's step (AdaGrad) instead of the stream's RMS
    weight: float = 1.0  # C: trade-off constant on the activation term (Mahendran & Vedaldi)
    jitter: int = 0  # each step the model sees the inputs shifted by up to this many pixels
    bound: float = R.B
    alpha: float = R.ALPHA
    beta: float = R.BETA
    seed: int = 0
    size: int | None = None  # frame side; default: the model's crop size

    def __post_init__(self) -> None:
        if self.reg not in R.REGULARIZERS:
            raise ValueError(f"unknown regulariser {self.reg!r}; choose one of {', '.join(R.REGULARIZERS)}")
        if self.kappa < 0 or self.chi < 0:
            raise ValueError(f"kappa and chi must be >= 0, got kappa={self.kappa}, chi={self.chi}")
        if self.steps < 1 or self.window < 1 or self.lr <= 0:
            raise ValueError("steps and window must be >= 1 and lr > 0")
        if self.jitter < 0:
            raise ValueError(f"jitter must be >= 0 pixels, got {self.jitter}")


@dataclass
class MaximizeResult:
    """Optimised inputs per stream (8-bit units ``[C, T, H, W]``) and how the run went."""

    inputs: dict[str, torch.Tensor]
    layer: str
    channel: int
    rho: int
    a_hat: float
    options: MaximizeOptions
    history: list[dict] = field(default_factory=list)

    def flow_px(self) -> torch.Tensor:
        """The flow input in pixels of displacement ``[T, 2, H, W]`` (as :mod:`deepvideo.flow` takes)."""
        return (self.inputs["flow"] / FLOW_UNITS_PER_PX).transpose(0, 1)

    def rgb_uint8(self, mean: tuple[float, ...]) -> torch.Tensor:
        """The RGB input as frames ``uint8 [T, H, W, 3]`` (the mean added back, clipped)."""
        m = torch.tensor(mean).view(3, 1, 1, 1) * 255.0
        return (self.inputs["rgb"] + m).clamp(0, 255).round().to(torch.uint8).permute(1, 2, 3, 0)

    def summary(self) -> dict:
        return {
            "layer": self.layer,
            "channel": self.channel,
            "rho": self.rho,
            "a_hat": self.a_hat,
            "options": asdict(self.options),
            "final": self.history[-1] if self.history else {},
        }


def input_shapes(spec, size: int | None = None) -> dict[str, tuple[int, ...]]:
    """``stream -> [C, T, H, W]`` of one sample for a model's ``InputSpec``."""
    side = size or spec.crop_size
    shapes = {}
    if "rgb" in spec.batch_keys:
        shapes["rgb"] = (3, spec.num_segments * spec.num_frames, side, side)
    if "flow" in spec.batch_keys:
        shapes["flow"] = (2, spec.num_segments * spec.flow_stack, side, side)
    return shapes


def flow_normalization(spec) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` ``[2, 1, 1, 1]`` in px the data pipeline applies to flow for ``spec``: a
    flow-only spec with 2-entry statistics states its own, otherwise ``flow / FLOW_SCALE``
    (:class:`deepvideo.data.transforms.Normalize`)."""
    if len(spec.std) == 2:
        return torch.tensor(spec.mean).view(2, 1, 1, 1), torch.tensor(spec.std).view(2, 1, 1, 1)
    return torch.zeros(2, 1, 1, 1), torch.full((2, 1, 1, 1), FLOW_SCALE)


def to_model_units(inputs: dict[str, torch.Tensor], spec) -> dict[str, torch.Tensor]:
    """8-bit-unit inputs ``[C, T, H, W]`` -> a batch of one, normalised as the data pipeline does."""
    batch = {}
    for key, x in inputs.items():
        if key == "rgb":
            std = torch.tensor(spec.std[:3], dtype=x.dtype, device=x.device).view(3, 1, 1, 1)
            batch[key] = (x / 255.0 / std)[None]
        else:
            mean, std = (t.to(x) for t in flow_normalization(spec))
            batch[key] = ((x / FLOW_UNITS_PER_PX - mean) / std)[None]
    return batch


def regularization(x: torch.Tensor, key: str, opts: MaximizeOptions) -> torch.Tensor:
    """``lambda_B R_B(x) + lambda_TV TV(x)`` of one stream's ``[C, T, H, W]``."""
    h, w = x.shape[-2:]
    lam_b = R.range_weight(h, w, opts.bound, opts.alpha)
    lam_tv = R.tv_weight(h, w, opts.bound, opts.beta, flow=key == "flow")
    tv = R.total_variation(x, opts.reg, opts.kappa, opts.chi, opts.beta)
    return lam_b * R.range_penalty(x, opts.alpha) + lam_tv * tv


def unit_score(model: nn.Module, layer: str, channel: int, batch: dict) -> torch.Tensor:
    """``<a_l(x), e_c>`` of a batch of one (the class logit for ``"logits"``)."""
    with capture(model, layer) as cap:
        out = model(batch)
    act = logits_of(out) if layer == LOGITS else cap.get()
    return channel_response(act, channel)[0]


def jittered(inputs: dict[str, torch.Tensor], jitter: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """The inputs ``[C, T, H, W]`` translated by one random offset of at most ``jitter`` pixels
    along H and W (the same for every stream), the uncovered border zero (no wrap-around);
    unchanged for ``jitter = 0``."""
    if jitter <= 0:
        return inputs
    dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=g))
    out = {}
    for key, x in inputs.items():
        h, w = x.shape[-2:]
        shifted = torch.zeros_like(x)
        shifted[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
            ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
        ]
        out[key] = shifted
    return out


def _step_size(opts: MaximizeOptions, k: int) -> float:
    return opts.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / max(opts.steps - 1, 1))))


def maximize(
    model: nn.Module,
    layer: str,
    channel: int,
    options: MaximizeOptions | None = None,
    *,
    a_hat: float | None = None,
    on_step: Callable[[int, dict], None] | None = None,
) -> MaximizeResult:
    """Optimise the inputs of every stream of ``model`` to excite ``channel`` of ``layer``."""
    opts = options or MaximizeOptions()
    spec = model.input_spec
    g = torch.Generator().manual_seed(opts.seed)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    inputs = {
        k: (torch.randn(s, generator=g) * opts.noise).to(device)
        for k, s in input_shapes(spec, opts.size).items()
    }
    scale = 1.0 if a_hat is None else float(a_hat)
    if not scale > 0:
        raise ValueError(
            f"a_hat of {layer}[{channel}] is {scale}: the unit never fires on the dataset "
            "it was measured on; pick another unit"
        )
    history: list[dict] = []
    with frozen(model):
        rho = receptive_field(model, layer, to_model_units(inputs, spec))
        windows = {k: deque(maxlen=opts.window) for k in inputs}
        for k in range(opts.steps):
            xs = {key: x.clone().requires_grad_(True) for key, x in inputs.items()}
            seen = to_model_units(jittered(xs, opts.jitter, g), spec)
            act = opts.weight * unit_score(model, layer, channel, seen) / (rho**2 * scale)
            reg = sum(regularization(x, key, opts) for key, x in xs.items())
            objective = act - reg
            grads = torch.autograd.grad(objective, list(xs.values()))
            lr = _step_size(opts, k)
            for (key, x), grad in zip(inputs.items(), grads, strict=True):
                windows[key].append(grad.pow(2) if opts.per_pixel else grad.pow(2).mean())
                denom = torch.stack(list(windows[key])).mean(0).sqrt() + 1e-12
                inputs[key] = R.project_range(x + lr * grad / denom, opts.bound)
            record = {
                "step": k,
                "objective": float(objective.detach()),
                "activation": float(act.detach()),
                "reg": float(reg.detach()),
            }
            history.append(record)
            if on_step is not None:
                on_step(k, record)
    inputs = {k: v.detach().cpu() for k, v in inputs.items()}
    return MaximizeResult(inputs, layer, channel, rho, scale, opts, history)
