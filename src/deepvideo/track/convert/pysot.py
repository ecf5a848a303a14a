"""pysot checkpoints (SenseTime's reference SiamRPN / SiamRPN++ / SiamMask) -> deepvideo.

Key tables checked against github.com/STVIR/pysot: ``pysot/models/model_builder.py`` (top-level
``backbone``, ``neck``, ``rpn_head``, ``mask_head``, ``refine_head``),
``pysot/models/backbone/alexnet.py`` (``AlexNetLegacy.features``),
``pysot/models/backbone/resnet_atrous.py`` (torchvision-style names; the geometry that
:func:`deepvideo.track.siamrpn.pysot_resnet` reproduces), ``pysot/models/neck/neck.py``
(``AdjustAllLayer.downsample<i>.downsample.{0: conv, 1: bn}``, or ``downsample.downsample`` for
one layer), ``pysot/models/head/rpn.py`` (``UPChannelRPN``: ``template_cls_conv``,
``template_loc_conv``, ``search_cls_conv``, ``search_loc_conv``, ``loc_adjust``; ``DepthwiseXCorr``:
``conv_kernel``, ``conv_search``, ``head``; ``MultiRPN``: ``rpn2..rpn4``, ``cls_weight``,
``loc_weight``) and ``pysot/models/head/mask.py`` (``MaskCorr``; ``Refine``: ``v0..v2``,
``h0..h2``, ``deconv``, ``post0..post2``), for the configurations
``experiments/siamrpn_alex_dwxcorr`` (``siamrpn``; the up-channel head of ``UPChannelRPN`` is read
too), ``siamrpn_r50_l234_dwxcorr`` (``siamrpnpp``) and ``siammask_r50_l3`` (``siammask``).

pysot feeds BGR images to its networks; deepvideo feeds RGB, so the first convolution's input
channels are reversed both ways. Batch-norm ``num_batches_tracked`` counters that an older
checkpoint lacks are added as 0 (they take no part in evaluation). A key outside the table is a
:class:`~deepvideo.models.convert.files.ConversionError` naming it.
"""

from __future__ import annotations

import torch

from deepvideo.models.convert.files import ConversionError
from deepvideo.track.convert import State, WeightLayout, register_layout
from deepvideo.track.siamrpn import build_network

REFERENCE = "github.com/STVIR/pysot: pysot/models/{model_builder.py, backbone/alexnet.py, " \
            "backbone/resnet_atrous.py, neck/neck.py, head/rpn.py, head/mask.py}"
XCORR = (("conv_kernel.", "template."), ("conv_search.", "search."), ("head.", "head."))
UPCHANNEL = (("template_cls_conv.", "template_cls."), ("template_loc_conv.", "template_loc."),
             ("search_cls_conv.", "search_cls."), ("search_loc_conv.", "search_loc."),
             ("loc_adjust.", "loc_adjust."))
REFINE = tuple((f"v{i}.", f"skip.{i}.") for i in range(3)) + tuple((f"h{i}.", f"up.{i}.") for i in range(3)) \
    + (("deconv.", "deconv."),) + tuple((f"post{i}.", f"post.{i}.") for i in range(3))


def depthwise(foreign: str, ours: str) -> list[tuple[str, str]]:
    return [(foreign + f, ours + o) for f, o in XCORR]


def rpn(foreign: str, ours: str) -> list[tuple[str, str]]:
    return depthwise(foreign + "cls.", ours + "cls.") + depthwise(foreign + "loc.", ours + "loc.")


def adjust(foreign: str, ours: str) -> list[tuple[str, str]]:
    return [(foreign + "downsample.0.", ours + "conv."), (foreign + "downsample.1.", ours + "bn.")]


TABLES: dict[str, list[tuple[str, str]]] = {
    "siamrpn": [("backbone.features.", "backbone.")] + rpn("rpn_head.", "rpn.")
    + [("rpn_head." + f, "rpn." + o) for f, o in UPCHANNEL],
    "siamrpnpp": [("backbone.", "backbone."), ("rpn_head.cls_weight", "rpn.cls_weight"),
                  ("rpn_head.loc_weight", "rpn.loc_weight")]
    + [p for i in range(3) for p in adjust(f"neck.downsample{i + 2}.", f"adjust.{i}.")]
    + [p for i in range(3) for p in rpn(f"rpn_head.rpn{i + 2}.", f"rpn.heads.{i}.")],
    "siammask": [("backbone.", "backbone.")] + adjust("neck.downsample.", "adjust.0.")
    + rpn("rpn_head.", "rpn.") + depthwise("mask_head.", "mask.")
    + [("refine_head." + f, "refine." + o) for f, o in REFINE],
}
FIRST_CONV = {"siamrpn": "backbone.0.weight", "siamrpnpp": "backbone.conv1.weight",
              "siammask": "backbone.conv1.weight"}


def rename(state: State, table: list[tuple[str, str]], what: str) -> State:
    """Every key renamed by the longest prefix of ``table`` it starts with; a key no prefix
    matches is a ConversionError."""
    ordered = sorted(table, key=lambda pair: -len(pair[0]))
    out, unknown = {}, []
    for key, value in state.items():
        for old, new in ordered:
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ConversionError(f"{what}: keys outside the key table: {', '.join(sorted(unknown)[:10])}")
    return out


def bgr_rgb(state: State, key: str) -> State:
    """``state`` with the input channels of ``key`` (the first convolution) reversed."""
    if key not in state:
        raise ConversionError(f"no first convolution {key!r} in the weights")
    return {**state, key: state[key].flip(1).contiguous()}


def with_counters(state: State) -> State:
    """``state`` plus ``num_batches_tracked = 0`` for every batch norm that lacks it."""
    out = dict(state)
    for key in state:
        if key.endswith(".running_mean"):
            out.setdefault(key[: -len("running_mean")] + "num_batches_tracked", torch.tensor(0))
    return out


def layout(model: str, marker: str) -> WeightLayout:
    table = TABLES[model]
    inverse = [(new, old) for old, new in table]

    def to_deepvideo(state: State) -> State:
        return with_counters(bgr_rgb(rename(state, table, f"pysot {model}"), FIRST_CONV[model]))

    def from_deepvideo(state: State) -> State:
        return rename(bgr_rgb(state, FIRST_CONV[model]), inverse, f"deepvideo {model}")

    return WeightLayout(source="pysot", model=model, reference=REFERENCE,
                        looks_like=lambda keys: marker in keys, to_deepvideo=to_deepvideo,
                        from_deepvideo=from_deepvideo, build=lambda state: build_network(model, state))


for _model, _marker in (("siamrpn", "backbone.features.0.weight"),
                        ("siamrpnpp", "neck.downsample2.downsample.0.weight"),
                        ("siammask", "mask_head.head.3.weight")):
    register_layout(layout(_model, _marker))
