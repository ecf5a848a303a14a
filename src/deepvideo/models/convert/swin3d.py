"""Video Swin Transformer weights -> deepvideo ``swin3d_t/s/b`` (:mod:`deepvideo.models.swin3d`).

- torchvision ``swin3d_t/s/b``: deepvideo uses the same module names, so keys map unchanged.
- The authors' release (Video-Swin-Transformer, mmaction2 checkpoints, optionally under
  ``backbone.``): ``layers.i.blocks.j`` -> ``features.(2i).j``, ``layers.i.downsample`` ->
  ``features.(2i+1)``, ``mlp.fc1/fc2`` -> ``mlp.0/3``, ``cls_head.fc_cls`` -> ``head``.

Both are handled under the ``"torchvision"`` source (the hook is in :mod:`.torchvision`).
``relative_position_index`` is a fixed buffer: a checkpoint without it (or with one for another
window) gets the model's own.
"""

from __future__ import annotations

import re

import torch
from torch import nn

_OFFICIAL = [
    (re.compile(r"^layers\.(\d+)\.blocks\.(.+)$"), lambda m: f"features.{2 * int(m[1])}.{m[2]}"),
    (re.compile(r"^layers\.(\d+)\.downsample\.(.+)$"), lambda m: f"features.{2 * int(m[1]) + 1}.{m[2]}"),
    (re.compile(r"^cls_head\.fc_cls\.(.+)$"), lambda m: f"head.{m[1]}"),
]
_MLP = {".mlp.fc1.": ".mlp.0.", ".mlp.fc2.": ".mlp.3."}


def looks_like(keys: set[str]) -> bool:
    """A torchvision ``swin3d_*`` or an official Video Swin state dict."""
    torchvision = "patch_embed.proj.weight" in keys and any(
        k.startswith("features.0.0.attn.relative_position_bias_table") for k in keys
    )
    official = any(
        k.removeprefix("backbone.").startswith("layers.0.blocks.0.attn.relative_position_bias_table")
        for k in keys
    )
    return torchvision or official


def convert(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        new = key.removeprefix("backbone.")
        for pattern, repl in _OFFICIAL:
            match = pattern.match(new)
            if match:
                new = repl(match)
                break
        for old, rep in _MLP.items():
            new = new.replace(old, rep)
        if new.endswith("relative_position_index"):
            continue
        out[new] = value
    for key, value in model.state_dict().items():
        if key.endswith("relative_position_index"):
            out[key] = value.clone()
    return out
