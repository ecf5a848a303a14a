"""py-MDNet and RT-MDNet checkpoints -> :class:`deepvideo.track.mdnet.MDNet`.

Key tables read from the repositories' source:

- py-MDNet (github.com/hyeonseobnam/py-MDNet, ``modules/model.py``): ``MDNet.layers`` is an
  ``nn.Sequential`` of ``conv1`` = (Conv2d, ReLU, LocalResponseNorm(2), MaxPool2d),
  ``conv2`` = (Conv2d, ReLU, LocalResponseNorm(2), MaxPool2d), ``conv3`` = (Conv2d, ReLU),
  ``fc4`` = (Linear, ReLU), ``fc5`` = (Dropout, Linear, ReLU); ``branches`` a ModuleList of
  (Dropout, Linear(512, 2)). ``pretrain/train_mdnet.py`` saves ``{'shared_layers':
  model.layers.state_dict()}`` (keys ``conv1.0.weight`` ... ``fc5.1.bias``); a whole model's
  state dict has ``layers.`` in front and ``branches.K.1.weight``.
- RT-MDNet (github.com/IlchaeJung/RT-MDNet, ``modules/model.py``; ``train_mrcnn.py`` saves the
  same ``shared_layers``): the same names (conv2 without its max-pool, conv3 dilated by 3, its
  ``LRN`` module without parameters).

deepvideo names: ``convs.conv1..3.{weight,bias}``, ``fc4.*``, ``fc5.*``, ``fc6.K.*`` and the
``architecture`` buffer (variant and LRN: py-MDNet ``(2, 1e-4, 0.75, 1)``, RT-MDNet
``(1, 1e-4, 0.75, 2)``). A checkpoint of the shared layers only (what both repositories save)
gets one new fc6 branch initialised as the paper (``N(0, 0.01)``, zero bias); the trackers
replace fc6 on every sequence anyway.

The checkpoints keep the shared layers under ``'shared_layers'``; ``deepvideo convert`` reads
them once :func:`deepvideo.models.convert.read_state_dict` unwraps that key (see the tracking
docs); :func:`unwrap` does it for files loaded by hand.
"""

from __future__ import annotations

import re

import torch

from deepvideo.track.convert import State, WeightLayout, register_layout
from deepvideo.track.mdnet import PYMDNET_LRN, RTMDNET_LRN, MDNet, from_state_dict, init_branch

SHARED = {"conv1.0": "convs.conv1", "conv2.0": "convs.conv2", "conv3.0": "convs.conv3",
          "fc4.0": "fc4", "fc5.1": "fc5"}
BRANCH = re.compile(r"^branches\.(\d+)\.1\.(weight|bias)$")
FC6 = re.compile(r"^fc6\.(\d+)\.(weight|bias)$")


def unwrap(checkpoint: dict) -> State:
    """The state dict inside a py-MDNet / RT-MDNet checkpoint (``{'shared_layers': ...}``)."""
    inner = checkpoint.get("shared_layers", checkpoint)
    return dict(inner)


def looks_like(keys: set[str]) -> bool:
    bare = {k.removeprefix("layers.") for k in keys}
    return "conv1.0.weight" in bare and "fc5.1.weight" in bare


def foreign_to_deepvideo(state: State, roi_align: bool, lrn: tuple) -> State:
    out: State = {}
    for key, value in state.items():
        bare = key.removeprefix("layers.")
        layer, _, kind = bare.rpartition(".")
        branch = BRANCH.match(key)
        if layer in SHARED:
            out[f"{SHARED[layer]}.{kind}"] = value
        elif branch:
            out[f"fc6.{branch.group(1)}.{branch.group(2)}"] = value
        else:
            raise KeyError(f"MDNet checkpoint key {key!r} matches nothing in the py-MDNet layout")
    if not any(FC6.match(k) for k in out):
        fc = out["fc5.weight"].shape[0]
        new = init_branch(torch.nn.Linear(fc, 2))
        out["fc6.0.weight"], out["fc6.0.bias"] = new.weight.detach(), new.bias.detach()
    out["architecture"] = torch.tensor([float(roi_align), *map(float, lrn)], dtype=torch.float64)
    return out


def deepvideo_to_foreign(state: State) -> State:
    inverse = {v: k for k, v in SHARED.items()}
    out: State = {}
    for key, value in state.items():
        if key == "architecture":
            continue
        layer, _, kind = key.rpartition(".")
        fc6 = FC6.match(key)
        if layer in inverse:
            out[f"layers.{inverse[layer]}.{kind}"] = value
        elif fc6:
            out[f"branches.{fc6.group(1)}.1.{fc6.group(2)}"] = value
        else:
            raise KeyError(f"deepvideo MDNet key {key!r} has no py-MDNet name")
    return out


def build(state: State) -> MDNet:
    """An MDNet shaped by ``state`` (weights loaded)."""
    return from_state_dict(state, source="converted MDNet weights")


register_layout(WeightLayout(
    source="py-mdnet", model="mdnet",
    reference="hyeonseobnam/py-MDNet: modules/model.py, pretrain/train_mdnet.py",
    looks_like=looks_like,
    to_deepvideo=lambda state: foreign_to_deepvideo(unwrap(state), False, PYMDNET_LRN),
    from_deepvideo=deepvideo_to_foreign,
    build=build))

register_layout(WeightLayout(
    source="rt-mdnet", model="rtmdnet",
    reference="IlchaeJung/RT-MDNet: modules/model.py, train_mrcnn.py",
    looks_like=looks_like,
    to_deepvideo=lambda state: foreign_to_deepvideo(unwrap(state), True, RTMDNET_LRN),
    from_deepvideo=deepvideo_to_foreign,
    build=build))
