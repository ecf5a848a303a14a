"""D3S segmentation network weights of the authors' pytracking fork (``SegmNet.pth.tar``).

Key table checked against github.com/alanlukezic/d3s, ``ltr/models/segm/segm.py`` (``SegmNet``:
``feature_extractor`` = pytracking's ResNet with torchvision names, ``segm_predictor``) and
``ltr/models/segm/segm_net.py`` (``segment0``/``segment1``, ``mixer``, ``s3``..``s0``,
``f2``..``f0``, ``post2``..``post0``, each ``Sequential(Conv2d, BatchNorm2d[, ReLU])``):

- ``feature_extractor.<resnet key>`` <-> ``backbone.<resnet key>`` for ``conv1``, ``bn1``,
  ``layer1``..``layer3``; the checkpoint's ``layer4`` and ``fc`` are unused by the network
  (it reads conv1..layer3) and are dropped on import;
- ``segm_predictor.<name>`` <-> ``<name>`` (same module structure).

pytracking saves a checkpoint dict whose ``net`` entry is the state dict, beside pickled objects
of its ``ltr`` package: those are read as inert stand-ins (``inert_modules``), never run.
"""

from __future__ import annotations

from deepvideo.track.convert import State, WeightLayout, register_layout
from deepvideo.track.d3s import d3s_for_state

BACKBONE, HEAD = "feature_extractor.", "segm_predictor."
UNUSED = ("feature_extractor.layer4.", "feature_extractor.fc.")


def looks_like(keys: set[str]) -> bool:
    return f"{HEAD}segment0.0.weight" in keys and f"{BACKBONE}conv1.weight" in keys


def to_deepvideo(state: State) -> State:
    out: State = {}
    for key, value in state.items():
        if key.startswith(UNUSED):
            continue
        if key.startswith(BACKBONE):
            out["backbone." + key[len(BACKBONE):]] = value
        elif key.startswith(HEAD):
            out[key[len(HEAD):]] = value
        else:
            out[key] = value   # left for the load report to name as unexpected
    return out


def from_deepvideo(state: State) -> State:
    return {(BACKBONE + key[len("backbone."):] if key.startswith("backbone.") else HEAD + key): value
            for key, value in state.items()}


register_layout(WeightLayout(
    source="pytracking", model="d3s",
    reference="github.com/alanlukezic/d3s ltr/models/segm/segm.py, ltr/models/segm/segm_net.py",
    looks_like=looks_like, to_deepvideo=to_deepvideo, from_deepvideo=from_deepvideo,
    build=d3s_for_state, inert_modules=("ltr.",)))
