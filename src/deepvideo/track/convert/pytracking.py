"""pytracking's ATOM and DiMP checkpoints (``atom_default.pth``, ``dimp18.pth``, ``dimp50.pth``).

Key tables checked against github.com/visionml/pytracking: ``ltr/models/bbreg/atom_iou_net.py``
(``AtomIoUNet``: ``conv3_1r``, ``conv3_1t``, ``conv3_2t``, ``fc3_1r``, ``conv4_1r``,
``conv4_1t``, ``conv4_2t``, ``fc34_3r``, ``fc34_4r`` as conv-BN-ReLU sequences ``.0`` / ``.1``;
``fc3_rt``, ``fc4_rt`` as ``LinearBlock`` with ``.linear`` / ``.bn``; ``iou_predictor``),
``ltr/models/backbone/resnet.py`` (torchvision names), ``ltr/models/tracking/dimpnet.py``
(``feature_extractor``, ``classifier``, ``bb_regressor``), ``ltr/models/target_classifier/
{linear_filter,initializer,optimizer,features}.py`` (``classifier.feature_extractor`` a
sequence of a ``BasicBlock`` (ResNet-18 only) and a 3×3 conv; ``classifier.filter_initializer.
filter_conv``; ``classifier.filter_optimizer.{log_step_length, filter_reg,
label_map_predictor.weight, target_mask_predictor.0.weight, spatial_weight_predictor.weight}``).

ATOM's checkpoint holds ``feature_extractor.*`` and ``bb_regressor.*``; DiMP's also
``classifier.*``. The backbone's ``layer4`` and ImageNet classifier ``fc`` (present in the
checkpoints, unused by both trackers) are left out: deepvideo's networks stop at ``layer3``.

pytracking saves ``{'net': state_dict, 'constructor': ..., ...}`` pickles: ``deepvideo convert``
takes them as they are (``'net'`` unwrapped; the pickled ``ltr.*`` objects read as inert stand-ins
by :func:`deepvideo.models.convert.files.read_torch_file`, never imported or run).
"""

from __future__ import annotations

from deepvideo.track.atom import atom_from_state
from deepvideo.track.convert import State, WeightLayout, register_layout
from deepvideo.track.dimp import dimp_from_state

REFERENCE_ATOM = ("github.com/visionml/pytracking ltr/models/bbreg/atom_iou_net.py, "
                  "ltr/models/backbone/resnet.py")
REFERENCE_DIMP = ("github.com/visionml/pytracking ltr/models/tracking/dimpnet.py, "
                  "ltr/models/target_classifier/{initializer,optimizer,features}.py, "
                  "ltr/models/bbreg/atom_iou_net.py")

# deepvideo IoUNet module -> pytracking AtomIoUNet module
IOU_TABLE = {
    "ref3": "conv3_1r", "ref3_fc": "fc3_1r", "ref4": "conv4_1r", "mod3": "fc34_3r", "mod4": "fc34_4r",
    "test3.0": "conv3_1t", "test3.1": "conv3_2t", "test4.0": "conv4_1t", "test4.1": "conv4_2t",
    "fc3": "fc3_rt", "fc4": "fc4_rt", "predictor": "iou_predictor",
}
# deepvideo prefix -> pytracking prefix (the first match is used)
PREFIXES = {
    "backbone.": "feature_extractor.",
    "clf_features.": "classifier.feature_extractor.",
    "initializer.conv.": "classifier.filter_initializer.filter_conv.",
    "optimizer.label_net.": "classifier.filter_optimizer.label_map_predictor.",
    "optimizer.mask_net.": "classifier.filter_optimizer.target_mask_predictor.0.",
    "optimizer.weight_net.": "classifier.filter_optimizer.spatial_weight_predictor.",
    "optimizer.": "classifier.filter_optimizer.",
}
UNUSED = ("feature_extractor.layer4.", "feature_extractor.fc.")


def _iou_from(name: str) -> str:
    rest = name[len("iou_net."):]
    for mine, theirs in sorted(IOU_TABLE.items(), key=lambda kv: -len(kv[0])):
        if rest.startswith(mine + "."):
            return "bb_regressor." + theirs + rest[len(mine):]
    raise KeyError(f"deepvideo IoU-Net tensor {name!r} has no pytracking name")


def _iou_to(name: str) -> str:
    rest = name[len("bb_regressor."):]
    for mine, theirs in sorted(IOU_TABLE.items(), key=lambda kv: -len(kv[1])):
        if rest.startswith(theirs + "."):
            return "iou_net." + mine + rest[len(theirs):]
    raise KeyError(f"pytracking bb_regressor tensor {name!r} is not part of ATOM's IoU-Net")


def from_deepvideo(state: State) -> State:
    out = {}
    for name, value in state.items():
        if name.startswith("iou_net."):
            out[_iou_from(name)] = value
            continue
        for mine, theirs in PREFIXES.items():
            if name.startswith(mine):
                out[theirs + name[len(mine):]] = value
                break
        else:
            raise KeyError(f"deepvideo tensor {name!r} has no pytracking name")
    return out


def to_deepvideo(state: State) -> State:
    out = {}
    reverse = sorted(PREFIXES.items(), key=lambda kv: -len(kv[1]))
    for name, value in state.items():
        if name.startswith(UNUSED):
            continue
        if name.startswith("bb_regressor."):
            out[_iou_to(name)] = value
            continue
        for mine, theirs in reverse:
            if name.startswith(theirs):
                out[mine + name[len(theirs):]] = value
                break
        else:
            raise KeyError(f"pytracking tensor {name!r} is not part of ATOM/DiMP")
    return out


def _looks_like_atom(keys: set[str]) -> bool:
    return (any(k.startswith("bb_regressor.") for k in keys)
            and not any(k.startswith("classifier.") for k in keys))


def _looks_like_dimp(keys: set[str]) -> bool:
    return any(k.startswith("classifier.filter_optimizer.") for k in keys)


# pytracking's checkpoints pickle its training package's objects (the network constructor,
# settings, statistics) beside ``net``: read as inert stand-ins, never imported or run
PICKLED_BOOKKEEPING = ("ltr.",)

register_layout(WeightLayout(source="pytracking", model="atom", reference=REFERENCE_ATOM,
                             looks_like=_looks_like_atom, to_deepvideo=to_deepvideo,
                             from_deepvideo=from_deepvideo, build=atom_from_state,
                             inert_modules=PICKLED_BOOKKEEPING))
register_layout(WeightLayout(source="pytracking", model="dimp", reference=REFERENCE_DIMP,
                             looks_like=_looks_like_dimp, to_deepvideo=to_deepvideo,
                             from_deepvideo=from_deepvideo, build=dimp_from_state,
                             inert_modules=PICKLED_BOOKKEEPING))
