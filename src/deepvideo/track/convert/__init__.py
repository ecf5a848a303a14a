"""Trackers' weights from the authors' and reference implementations, by key tables.

Each module of this package registers one or more :class:`WeightLayout`: a foreign checkpoint
layout (``source``, e.g. ``"pysot"``) for one deepvideo tracker network (``model``, e.g.
``"siamrpnpp"``), with the repository file its key table was checked against, and both
directions of the renaming (so tests can rename deepvideo weights into the foreign names and
back). ``build`` makes the deepvideo network whose shape the converted state dict fixes.

    deepvideo convert pysot_model.pth siamrpnpp.safetensors --tracker siamrpnpp --source pysot

Loading is loud: the converted tensors must fit the network key for key and shape for shape,
else a :class:`~deepvideo.models.convert.files.ConversionError` names what is missing,
unexpected or mismatched.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from deepvideo.io.atomic import replaced_when_done
from deepvideo.models.convert import LoadReport, read_state_dict
from deepvideo.models.convert.files import ConversionError

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class WeightLayout:
    """One foreign checkpoint layout of one tracker network."""

    source: str                                   # "pysot", "pytracking", "py-mdnet", ...
    model: str                                    # deepvideo network name, e.g. "siamrpnpp"
    reference: str                                # repository and file the key table follows
    looks_like: Callable[[set[str]], bool]        # do these foreign keys have this layout?
    to_deepvideo: Callable[[State], State]        # foreign -> deepvideo names (and shapes)
    from_deepvideo: Callable[[State], State]      # deepvideo -> foreign (the inverse)
    build: Callable[[State], nn.Module]           # a network fitting a deepvideo state dict
    inert_modules: tuple[str, ...] = ()           # pickled bookkeeping read as inert (e.g. "ltr.")


_LAYOUTS: dict[tuple[str, str], WeightLayout] = {}
_LOADED = False


def register_layout(layout: WeightLayout) -> WeightLayout:
    key = (layout.model, layout.source)
    if key in _LAYOUTS:
        raise ValueError(f"weight layout {layout.source!r} of {layout.model!r} is registered twice")
    _LAYOUTS[key] = layout
    return layout


def _load_all() -> None:
    global _LOADED
    if not _LOADED:
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__name__}.{module.name}")
        _LOADED = True


def list_layouts() -> list[WeightLayout]:
    _load_all()
    return [_LAYOUTS[k] for k in sorted(_LAYOUTS)]


def find_layout(model: str, state: Mapping[str, torch.Tensor] | None = None,
                source: str | None = None) -> WeightLayout:
    """The layout of ``model`` named by ``source``, or the one whose keys ``state`` has."""
    _load_all()
    mine = [layout for (m, _), layout in sorted(_LAYOUTS.items()) if m == model]
    if not mine:
        known = ", ".join(sorted({m for m, _ in _LAYOUTS}))
        raise KeyError(f"no weight layouts for tracker network {model!r}; known: {known}")
    if source is not None:
        for layout in mine:
            if layout.source == source:
                return layout
        raise KeyError(f"{model!r} has no {source!r} layout; its layouts: "
                       f"{', '.join(layout.source for layout in mine)}")
    keys = set(state or {})
    for layout in mine:
        if layout.looks_like(keys):
            return layout
    raise ConversionError(f"the checkpoint's keys fit no {model!r} layout "
                          f"({', '.join(layout.source for layout in mine)}); first keys: "
                          f"{', '.join(sorted(keys)[:6])}")


def convert_tracker_state(state: Mapping[str, torch.Tensor], model: str,
                          source: str | None = None) -> tuple[nn.Module, WeightLayout]:
    """The deepvideo network ``model`` with ``state`` (a foreign checkpoint) loaded, and the layout."""
    layout = find_layout(model, state, source)
    converted = layout.to_deepvideo(dict(state))
    network = layout.build(converted)
    report = LoadReport.of(converted, network)
    if not report.complete:
        raise ConversionError(f"{layout.source} weights do not fit {model!r}: {report.describe()}")
    network.load_state_dict(converted)
    return network.eval(), layout


def convert_tracker_file(src: str | os.PathLike, dst: str | os.PathLike, model: str,
                         source: str | None = None) -> str:
    """Convert checkpoint ``src`` into a deepvideo ``.safetensors`` ``dst`` (written atomically);
    returns the source layout's name."""
    from safetensors.torch import save_file

    _load_all()
    inert = tuple(sorted({m for (name, _), layout in _LAYOUTS.items() if name == model
                          for m in layout.inert_modules}))
    try:
        network, layout = convert_tracker_state(read_state_dict(src, inert), model, source)
    except ConversionError as exc:
        raise ConversionError(f"{src}: {exc}") from None
    state = {k: v.contiguous() for k, v in network.state_dict().items()}
    with replaced_when_done(Path(dst)) as tmp:
        save_file(state, str(tmp), metadata={"model": model, "source": layout.source})
    return layout.source


__all__ = ["WeightLayout", "convert_tracker_file", "convert_tracker_state", "find_layout",
           "list_layouts", "register_layout"]
