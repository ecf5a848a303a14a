"""SiamFC weights of the widely used PyTorch port (github.com/huanglianghua/siamfc-pytorch).

Key table checked against the port's ``siamfc/backbones.py`` (``AlexNetV1``: five
``nn.Sequential`` blocks ``conv1..conv5``, each ``[Conv2d, BatchNorm2d, ReLU(, MaxPool2d)]``,
``conv5`` a lone ``Conv2d``), ``siamfc/heads.py`` (``SiamFC(out_scale=0.001)``: the
cross-correlation times ``out_scale``, no parameter) and ``siamfc/siamfc.py`` (``Net`` with
``backbone`` and ``head``; the checkpoint is ``Net.state_dict()``, e.g. ``siamfc_alexnet_e50.pth``):

=================================  ==========================
port                               deepvideo
=================================  ==========================
``backbone.conv1.0.*`` (conv)      ``features.0.*``
``backbone.conv1.1.*`` (BN)        ``features.1.*``
``backbone.conv2.0.* / .1.*``      ``features.4.* / .5.*``
``backbone.conv3.0.* / .1.*``      ``features.8.* / .9.*``
``backbone.conv4.0.* / .1.*``      ``features.11.* / .12.*``
``backbone.conv5.0.*``             ``features.14.*``
(none: the head has no bias)       ``bias`` = 0
=================================  ==========================

Same network, same input and same output scale: the port feeds RGB images in 0..255 as float
without normalisation (``ops.read_image`` converts OpenCV's BGR to RGB; crops are
``permute(2, 0, 1).float()``), as deepvideo's SiamFC does, and its ``out_scale`` 0.001 is
deepvideo's ``ADJUST``. One difference: the port's batch norms use ``eps = 1e-6``
(``_BatchNorm2d``), torch's default (deepvideo's) is ``1e-5``; the conversion rescales each BN
weight by ``sqrt((var + 1e-5) / (var + 1e-6))`` so that the eval-mode output is identical (and
back). deepvideo's score bias has no counterpart in the port: it must be zero to be exported.
"""

from __future__ import annotations

import torch

from deepvideo.track.convert import State, WeightLayout, register_layout
from deepvideo.track.siamfc import SiamFC

PORT_EPS = 1e-6
OUR_EPS = 1e-5
BLOCKS = {"conv1": (0, 1), "conv2": (4, 5), "conv3": (8, 9), "conv4": (11, 12), "conv5": (14, None)}
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def key_table() -> dict[str, str]:
    """Port key -> deepvideo key, for every tensor of the embedding."""
    table = {}
    for block, (conv, bn) in BLOCKS.items():
        for name in ("weight", "bias"):
            table[f"backbone.{block}.0.{name}"] = f"features.{conv}.{name}"
        if bn is not None:
            for name in BN_KEYS:
                table[f"backbone.{block}.1.{name}"] = f"features.{bn}.{name}"
    return table


def eps_factor(running_var: torch.Tensor, from_eps: float, to_eps: float) -> torch.Tensor:
    """The BN weight factor making ``γ' / sqrt(var + to_eps) == γ / sqrt(var + from_eps)``."""
    var = running_var.double()
    return ((var + to_eps) / (var + from_eps)).sqrt()


def rename(state: State, table: dict[str, str], what: str) -> State:
    missing = sorted(set(table) - set(state))
    unknown = sorted(set(state) - set(table))
    if missing or unknown:
        raise ValueError(f"{what}: missing keys {missing[:6]}; keys matching nothing {unknown[:6]}")
    return {table[k]: v.clone() for k, v in state.items()}


def rescale_bn(state: State, prefixes: list[str], from_eps: float, to_eps: float) -> State:
    for prefix in prefixes:
        var = state[f"{prefix}.running_var"]
        weight = state[f"{prefix}.weight"]
        state[f"{prefix}.weight"] = (weight.double() * eps_factor(var, from_eps, to_eps)).to(weight.dtype)
    return state


def to_deepvideo(state: State) -> State:
    """Port checkpoint -> deepvideo SiamFC state dict (BN eps difference folded into γ; a missing
    ``num_batches_tracked``, as in checkpoints of torch < 0.4.1, becomes 0)."""
    state = dict(state)
    for key in key_table():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, torch.tensor(0))
    out = rename(state, key_table(), "siamfc-pytorch checkpoint")
    out = rescale_bn(out, [f"features.{bn}" for _, bn in BLOCKS.values() if bn is not None],
                     PORT_EPS, OUR_EPS)
    out["bias"] = torch.zeros(1)
    return out


def from_deepvideo(state: State) -> State:
    """deepvideo SiamFC state dict -> the port's names (its score bias must be zero)."""
    state = dict(state)
    bias = state.pop("bias", None)
    if bias is not None and bool(bias.abs().max() > 0):
        raise ValueError(f"SiamFC score bias {float(bias.flatten()[0]):g}: the siamfc-pytorch head has "
                         "no bias, so these weights would score differently there")
    inverse = {v: k for k, v in key_table().items()}
    out = rename(state, inverse, "deepvideo SiamFC weights")
    return rescale_bn(out, [f"backbone.{block}.1" for block, (_, bn) in BLOCKS.items() if bn is not None],
                      OUR_EPS, PORT_EPS)


def looks_like(keys: set[str]) -> bool:
    return "backbone.conv1.0.weight" in keys and "backbone.conv5.0.weight" in keys


def build(state: State) -> SiamFC:
    """A SiamFC with the channel counts of a (converted) state dict."""
    return SiamFC(channels=tuple(int(state[f"features.{conv}.weight"].shape[0])
                                 for conv, _ in BLOCKS.values()))


LAYOUT = register_layout(WeightLayout(
    source="siamfc-pytorch", model="siamfc",
    reference="github.com/huanglianghua/siamfc-pytorch siamfc/backbones.py (AlexNetV1), "
              "siamfc/heads.py (SiamFC out_scale 0.001), siamfc/siamfc.py (Net)",
    looks_like=looks_like, to_deepvideo=to_deepvideo, from_deepvideo=from_deepvideo, build=build))
