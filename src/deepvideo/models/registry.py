"""Model registry: name -> builder, preset arguments, InputSpec and paper.

Each family module calls :func:`register_model` for its named presets at import time;
:func:`create_model` builds one and attaches its ``input_spec``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from deepvideo.spec import InputSpec


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., nn.Module]
    spec: InputSpec
    paper: str = ""
    summary: str = ""
    family: str = ""
    defaults: dict = field(default_factory=dict)  # preset keyword arguments for the builder


_REGISTRY: dict[str, ModelInfo] = {}
_LOADED = False


def register_model(name: str, builder: Callable[..., nn.Module], spec: InputSpec, *,
                   paper: str = "", summary: str = "", **defaults) -> None:
    """Register preset ``name``: ``builder(num_classes=..., **defaults)`` with ``spec``."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    family = builder.__module__.rsplit(".", 1)[-1]
    _REGISTRY[name] = ModelInfo(name, builder, spec, paper, summary, family, dict(defaults))


def _load_families() -> None:
    """Import every module of ``deepvideo.models`` so their presets register."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import deepvideo.models as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("registry", "profile", "zoo", "fast") and not mod.ispkg:
            importlib.import_module(f"deepvideo.models.{mod.name}")


def get_model_info(name: str) -> ModelInfo:
    _load_families()
    if name not in _REGISTRY:
        close = [n for n in _REGISTRY if name.split("_")[0] in n][:8]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise KeyError(f"unknown model {name!r} (see `deepvideo models`){hint}")
    return _REGISTRY[name]


def create_model(name: str, num_classes: int = 400, spec: InputSpec | None = None,
                 **overrides) -> nn.Module:
    """Build preset ``name`` with ``num_classes`` outputs; ``model.input_spec`` is set.

    ``overrides`` replace the preset's builder arguments; ``spec`` replaces its InputSpec
    (for example a smaller crop for a CPU run).
    """
    info = get_model_info(name)
    kwargs = {**info.defaults, **overrides}
    model = info.builder(num_classes=num_classes, **kwargs)
    model.input_spec = spec if spec is not None else getattr(model, "input_spec", info.spec)
    model.model_name = name
    return model


def list_models(family: str | None = None) -> list[ModelInfo]:
    _load_families()
    infos = sorted(_REGISTRY.values(), key=lambda i: (i.family, i.name))
    return [i for i in infos if family is None or i.family == family]
