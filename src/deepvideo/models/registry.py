"""Model registry: name -> builder, preset arguments, InputSpec, paper and published figures.

Each family module registers its named presets at import time, preferably by decorating one
builder function per preset (timm-style: the function's name is the preset's name, its
keyword-only parameters with their defaults are the preset's arguments, its docstring's first
line the summary), or by a call ``register_model(name, builder, spec, paper=..., **preset_kwargs)``::

    @register_model(spec=InputSpec(...), paper="...", published={"params_m": 3.79, "gflops": 0.91,
                                                                  "frames": 4, "crop": 182,
                                                                  "source": "PySlowFast zoo"})
    def x3d_xs(num_classes=400, **kw): ...

:func:`create_model` builds one and attaches its ``input_spec``. The published figures
(:class:`Published`) are the one place a paper's or a zoo's parameter count and FLOPs are
written; the zoo page and the tests read them from here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from deepvideo.spec import InputSpec


@dataclass(frozen=True)
class Published:
    """Figures a paper or a model zoo gives for a preset.

    ``params_m``: parameters in millions; ``gflops``: GFLOPs (multiply-adds) per view, or None
    where the source gives none; ``frames`` and ``crop``: the test clip they were counted at
    (``frames`` as the model's input clip, e.g. SlowFast's Fast-rate clip); ``source``: where
    the figures come from.
    """

    params_m: float
    gflops: float | None = None
    frames: int | None = None
    crop: int | None = None
    source: str = ""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., nn.Module]
    spec: InputSpec
    paper: str = ""
    summary: str = ""
    family: str = ""
    defaults: dict = field(default_factory=dict)  # preset keyword arguments for the builder
    published: Published | None = None


_REGISTRY: dict[str, ModelInfo] = {}
_LOADED = False


def _published(value: Published | dict | None, name: str) -> Published | None:
    if value is None or isinstance(value, Published):
        return value
    try:
        return Published(**value)
    except TypeError as exc:
        raise TypeError(
            f"model {name!r}: published figures take params_m, gflops, frames, crop, source ({exc})"
        ) from None


def _add(name: str, builder: Callable[..., nn.Module], spec: InputSpec, paper: str, summary: str,
         published: Published | dict | None, defaults: dict) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    if not isinstance(spec, InputSpec):
        raise TypeError(f"model {name!r}: spec must be an InputSpec, got {type(spec).__name__}")
    family = builder.__module__.rsplit(".", 1)[-1]
    _REGISTRY[name] = ModelInfo(
        name, builder, spec, paper, summary, family, dict(defaults), _published(published, name)
    )


def register_model(name: str | None = None, builder: Callable[..., nn.Module] | None = None,
                   spec: InputSpec | None = None, *, paper: str = "", summary: str = "",
                   published: Published | dict | None = None, **defaults):
    """Register a preset: ``builder(num_classes=..., **defaults)`` with ``spec``.

    Called with a ``builder``, registers ``name`` at once. Called without one, returns a
    decorator that registers the decorated function under ``name`` (default: the function's
    name; ``summary`` defaults to the first line of its docstring) and returns it unchanged.
    """
    if builder is not None:
        if name is None or spec is None:
            raise TypeError("register_model(name, builder, spec, ...) needs a name and a spec")
        _add(name, builder, spec, paper, summary, published, defaults)
        return builder
    if spec is None:
        raise TypeError("@register_model(spec=..., ...) needs the preset's InputSpec")

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        doc = (fn.__doc__ or "").strip().splitlines()
        preset = {**keyword_only_defaults(fn), **defaults}
        _add(name or fn.__name__, fn, spec, paper, summary or (doc[0] if doc else ""), published, preset)
        return fn

    return decorate


def keyword_only_defaults(fn: Callable) -> dict:
    """The keyword-only parameters of ``fn`` with their defaults: a preset function written as
    ``def r3d_18(num_classes=400, *, arch="r3d", depth=18, **kw)`` records ``arch`` and ``depth``
    as its preset arguments (``ModelInfo.defaults``), and calling it directly builds the same."""
    params = inspect.signature(fn).parameters.values()
    return {
        p.name: p.default
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }


def _load_families() -> None:
    """Import every module of ``deepvideo.models``: family modules register their presets,
    the others (registry, complexity, zoo, inference, convert) register nothing."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import deepvideo.models as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
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
