"""Tracker registry: name -> factory, with the paper it follows.

Tracker modules under :mod:`deepvideo.track.trackers` register themselves at import time::

    @register_tracker("mosse", paper="Bolme et al., CVPR 2010")
    class MOSSE: ...

:func:`create_tracker` builds one by name with keyword overrides of its parameters.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepvideo.track.base import Tracker


@dataclass(frozen=True)
class TrackerInfo:
    name: str
    factory: Callable[..., Tracker]
    paper: str = ""
    summary: str = ""
    available: Callable[[], bool] | None = None  # None: always; else e.g. "model file present"

    def is_available(self) -> bool:
        return self.available is None or bool(self.available())


class TrackerUnavailableError(RuntimeError):
    """A registered tracker that cannot run here (e.g. its model files are not given)."""


_REGISTRY: dict[str, TrackerInfo] = {}
_LOADED = False


def register_tracker(name: str, *, paper: str = "", summary: str = "",
                     available: Callable[[], bool] | None = None):
    """Decorator registering a tracker class or factory function under ``name``."""

    def decorate(factory):
        if name in _REGISTRY:
            raise ValueError(f"tracker {name!r} is registered twice")
        doc = (factory.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = TrackerInfo(name, factory, paper, summary or (doc[0] if doc else ""),
                                      available)
        return factory

    return decorate


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    from deepvideo.track import trackers

    for module in pkgutil.iter_modules(trackers.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{trackers.__name__}.{module.name}")
    _LOADED = True


def list_trackers(available_only: bool = False) -> list[TrackerInfo]:
    _load_all()
    infos = sorted(_REGISTRY.values(), key=lambda info: info.name)
    return [info for info in infos if info.is_available()] if available_only else infos


def get_tracker_info(name: str) -> TrackerInfo:
    _load_all()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown tracker {name!r}; known trackers: {known}")
    return _REGISTRY[name]


def create_tracker(name: str, **overrides) -> Tracker:
    """A new tracker ``name`` with ``overrides`` for its keyword parameters."""
    info = get_tracker_info(name)
    if not overrides and not info.is_available():  # overrides may give what it lacks (model files)
        raise TrackerUnavailableError(f"tracker {name!r} is not available here: {info.summary}")
    return info.factory(**overrides)


def weights_file(weights: str | os.PathLike | None, env: str) -> Path | None:
    """A deep tracker's weights: the file given (a checkpoint folder means its
    ``model.safetensors``), else the one the environment variable ``env`` names; None when neither."""
    value = weights if weights is not None else os.environ.get(env)
    if not value:
        return None
    path = Path(value)
    return path / "model.safetensors" if path.is_dir() else path


def weights_available(env: str) -> Callable[[], bool]:
    """An ``available`` check for :func:`register_tracker`: ``env`` names an existing weights file."""

    def available() -> bool:
        path = weights_file(None, env)
        return path is not None and path.is_file()

    return available
