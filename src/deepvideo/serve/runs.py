"""A run folder from a registered model without training: serve, export or benchmark a preset
(randomly initialised, or with weights loaded by the caller) through the same paths as a
trained run."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from deepvideo.engine.build import spec_overrides
from deepvideo.engine.checkpoint import save_checkpoint
from deepvideo.engine.config import config_to_dict, load_config
from deepvideo.models.registry import create_model


def build_model(name: str, num_classes: int, kwargs: dict | None = None,
                spec: dict | None = None) -> nn.Module:
    """Registry preset ``name`` with builder ``kwargs`` and InputSpec overrides ``spec``, in eval mode."""
    model = create_model(name, num_classes=num_classes, **(kwargs or {}))
    if spec:
        model.input_spec = model.input_spec.replace(**spec_overrides(dict(spec)))
    return model.eval()


def save_run(folder: str | Path, model: nn.Module, class_names: list[str], *, kwargs: dict | None = None,
             spec: dict | None = None) -> Path:
    """Write ``folder/checkpoints/last`` holding ``model`` (built by :func:`build_model` with the same
    ``kwargs`` and ``spec``) so ``load_checkpoint(folder)`` rebuilds it; returns ``folder``."""
    name = getattr(model, "model_name", None)
    if not name:
        raise ValueError("the model has no model_name: build it with deepvideo.models.create_model")
    cfg = load_config(model={"name": name, "num_classes": len(class_names), "kwargs": dict(kwargs or {}),
                             "spec": dict(spec or {})}, device="cpu")
    meta = {"config": config_to_dict(cfg), "class_names": list(class_names),
            "input_spec": model.input_spec.to_dict(), "model_name": name, "epoch": 0, "metrics": {}}
    save_checkpoint(Path(folder) / "checkpoints" / "last", model, meta)
    return Path(folder)
