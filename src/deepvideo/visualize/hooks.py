"""Reading a model's intermediate activations by module path (forward hooks).

A layer is named by its module path in ``model.named_modules()`` (``"backbone.layer3"``,
``"temporal.backbone.conv1"``), or ``"logits"`` for the model's output (the class scores:
a tensor, or the ``logits`` entry of a dict output). Activations are ``[N, C, ...]``
(channels second: ``[N, C, H, W]`` for 2D nets, ``[N, C, T, H, W]`` for 3D nets, ``[N, C]``
for linear layers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

LOGITS = "logits"


def logits_of(out) -> torch.Tensor:
    """The class scores of a model output (a tensor, or a dict with ``logits``)."""
    if isinstance(out, dict):
        if "logits" not in out:
            raise ValueError(f"the model returned a dict without 'logits' (keys: {sorted(out)})")
        out = out["logits"]
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"the model returned {type(out).__name__}, not a tensor of logits")
    return out


def find_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at ``path``; a clear error listing similar names when there is none."""
    modules = dict(model.named_modules())
    if path in modules and path:
        return modules[path]
    names = [n for n in modules if n]
    near = [n for n in names if path.split(".")[-1] in n][:8] or names[:8]
    raise KeyError(
        f"the model has no layer {path!r}; layers look like: {', '.join(near)} "
        f"(`deepvideo visualize layers RUN` lists them all; 'logits' is the output)"
    )


def conv_layers(model: nn.Module) -> list[str]:
    """Module paths of the model's convolutions, in registration order."""
    return [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]


class Capture:
    """The output of one module during the last forward pass (``.value``)."""

    def __init__(self) -> None:
        self.value: torch.Tensor | None = None

    def get(self) -> torch.Tensor:
        if self.value is None:
            raise RuntimeError("the layer did not run in the forward pass (is it used by this input?)")
        return self.value


@contextmanager
def capture(model: nn.Module, path: str) -> Iterator[Capture]:
    """Record ``path``'s output on every forward pass inside the block (``"logits"``: the caller
    takes the model output itself; the capture then stays empty)."""
    cap = Capture()
    if path == LOGITS:
        yield cap
        return
    module = find_module(model, path)

    def hook(_module, _inputs, output):
        out = output[0] if isinstance(output, (tuple, list)) else output
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"layer {path!r} returns {type(out).__name__}, not a tensor")
        cap.value = out

    handle = module.register_forward_hook(hook)
    try:
        yield cap
    finally:
        handle.remove()


def layer_output(model: nn.Module, path: str, batch: dict) -> torch.Tensor:
    """``path``'s activation ``[N, C, ...]`` for ``batch`` (``"logits"``: the class scores)."""
    with capture(model, path) as cap:
        out = model(batch)
    return logits_of(out) if path == LOGITS else cap.get()


def channel_response(activation: torch.Tensor, channel: int) -> torch.Tensor:
    """``<a_l(x), e_c>`` per sample: channel ``c`` of ``[N, C, ...]`` summed over its positions."""
    if not 0 <= channel < activation.shape[1]:
        raise IndexError(f"channel {channel} out of range: the layer has {activation.shape[1]} channels")
    return activation[:, channel].reshape(activation.shape[0], -1).sum(1)


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode with ``requires_grad`` off for every weight; restored after."""
    flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, f in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(f)
        model.train(was_training)
