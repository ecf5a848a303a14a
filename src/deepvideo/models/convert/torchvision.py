"""torchvision video models -> deepvideo (key renaming only; the arithmetic is identical).

- ``r3d_18`` / ``mc3_18`` -> ``r3d_18`` / ``mc3_18``; ``r2plus1d_18`` -> ``r2plus1d_18_tv``
  (torchvision's block-wise mid width and 45-channel stem): ``stem.i`` (a (2+1)D stem is
  ``stem.0/1/3/4``), ``layerL.B.convK.0`` (conv or (2+1)D sequence) and ``.convK.1`` (norm),
  ``downsample.0/1``, ``fc``.
- ``s3d``, ``mvit_v1_b``, ``mvit_v2_s``: deepvideo uses the same module names.
- ``swin3d_t/s/b`` (and the Video Swin authors' checkpoints): see :mod:`.swin3d`.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from deepvideo.models.convert import swin3d as _swin3d

_RULES = [
    (re.compile(r"^(layer\d+\.\d+)\.conv(\d)\.1\.(.+)$"), r"\1.norm\2.\3"),
    (re.compile(r"^(layer\d+\.\d+)\.conv(\d)\.0\.(.+)$"), r"\1.conv\2.\3"),
    (re.compile(r"^(layer\d+\.\d+)\.downsample\.0\.(.+)$"), r"\1.shortcut.conv.\2"),
    (re.compile(r"^(layer\d+\.\d+)\.downsample\.1\.(.+)$"), r"\1.shortcut.norm.\2"),
    (re.compile(r"^fc\.(.+)$"), r"head.fc.\1"),
]
_STEM_2PLUS1D = {"stem.0.": "stem.0.0.", "stem.1.": "stem.0.1.", "stem.3.": "stem.0.3.", "stem.4.": "stem.1."}


def looks_like(keys: set[str]) -> bool:
    video_resnet = (
        "stem.0.weight" in keys
        and "fc.weight" in keys
        and any(k.startswith("layer1.0.conv1.0") for k in keys)
    )
    s3d = "features.0.0.0.weight" in keys and "classifier.1.weight" in keys
    mvit = "conv_proj.weight" in keys and "pos_encoding.class_token" in keys
    return video_resnet or s3d or mvit or _swin3d.looks_like(keys)


def convert(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    if _swin3d.looks_like(set(sd)):
        return _swin3d.convert(sd, model)
    if not any(k.startswith("layer1.0.conv1.0") for k in sd):
        return sd  # s3d / mvit: same names
    stem = getattr(model, "stem", None)
    two_plus_one = stem is not None and isinstance(stem[0], nn.Sequential)
    out = {}
    for key, value in sd.items():
        new = key
        if key.startswith("stem.") and two_plus_one:
            prefix = next(p for p in _STEM_2PLUS1D if key.startswith(p))
            new = _STEM_2PLUS1D[prefix] + key[len(prefix) :]
        for pattern, repl in _RULES:
            if pattern.match(new):
                new = pattern.sub(repl, new)
                break
        out[new] = value
    return out
