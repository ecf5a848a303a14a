"""Loading weights trained by other libraries into deepvideo models.

Sources, detected from the checkpoint's key names:

- ``"torchvision"``: ``r3d_18``, ``mc3_18``, ``r2plus1d_18`` (-> ``r2plus1d_18_tv``), ``s3d``,
  ``mvit_v1_b``, ``mvit_v2_s``, ``swin3d_t/s/b`` (also the Video Swin authors' checkpoints, see
  :mod:`.swin3d`) (see :mod:`.torchvision`);
- ``"pytorchvideo"`` (also PySlowFast-trained checkpoints as distributed by PyTorchVideo):
  ``slow_r50``, ``c2d_r50``, ``i3d_r50``, ``csn_r101``, ``r2plus1d_r50``, ``x3d_xs/s/m/l``,
  ``slowfast_r50/r101``, ``mvit_base_16x4`` (-> ``mvit_v1_b``) (see :mod:`.pytorchvideo`);
- ``"pyslowfast"``: PySlowFast's own ``.pyth`` checkpoints (``s1.pathway0_stem...``,
  ``s2.pathway0_res0.branch2.a...``): C2D / I3D (non-local too) / Slow R50, SlowFast R50 / R101,
  X3D-XS/S/M/L, MViT-B v1 (see :mod:`.pyslowfast`);
- ``"deepvideo"``: a state dict of the model itself.

Files are read with ``torch.load(weights_only=True)`` or safetensors only; a converted
state dict must match the target model key for key and shape for shape, otherwise the error
lists what is missing, unexpected or mismatched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from deepvideo.io.atomic import replaced_when_done
from deepvideo.models.convert import pyslowfast as _psf
from deepvideo.models.convert import pytorchvideo as _ptv
from deepvideo.models.convert import torchvision as _tv

SOURCES = ("deepvideo", "torchvision", "pytorchvideo", "pyslowfast")


class ConversionError(ValueError):
    """A checkpoint cannot be mapped onto the requested model."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth``/``.pt``/``.pyth``/``.ckpt`` (weights_only) or ``.safetensors`` file.

    Unwraps ``{"model_state": ...}``, ``{"state_dict": ...}``, ``{"model": ...}`` and a
    ``module.`` prefix left by DataParallel.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        obj = load_file(str(path))
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle with arbitrary objects, truncated file, ...
            raise ConversionError(
                f"{path}: cannot be read as weights ({type(exc).__name__}: {exc}); "
                "only plain tensor checkpoints (torch.save of a state dict) or .safetensors are accepted"
            ) from exc
    for key in ("model_state", "state_dict", "model", "model_state_dict"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConversionError(f"{path}: does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def detect_source(state_dict: Mapping[str, torch.Tensor]) -> str:
    """``"torchvision"``, ``"pytorchvideo"``, ``"pyslowfast"`` or ``"deepvideo"`` from the key names."""
    keys = set(state_dict)
    if _ptv.looks_like(keys):
        return "pytorchvideo"
    if _psf.looks_like(keys):
        return "pyslowfast"
    if _tv.looks_like(keys):
        return "torchvision"
    return "deepvideo"


def convert_state_dict(
    state_dict: Mapping[str, torch.Tensor], model: nn.Module, source: str | None = None
) -> dict[str, torch.Tensor]:
    """Rename (and reshape where formats differ) ``state_dict`` into ``model``'s keys."""
    source = source or detect_source(state_dict)
    if source not in SOURCES:
        raise ConversionError(f"unknown source {source!r}: use one of {SOURCES}")
    if source == "torchvision":
        out = _tv.convert(dict(state_dict), model)
    elif source == "pytorchvideo":
        out = _ptv.convert(dict(state_dict), model)
    elif source == "pyslowfast":
        out = _psf.convert(dict(state_dict), model)
    else:
        out = dict(state_dict)
    _check(out, model, source)
    return out


def _check(sd: Mapping[str, torch.Tensor], model: nn.Module, source: str) -> None:
    target = model.state_dict()
    missing = sorted(set(target) - set(sd))
    unexpected = sorted(set(sd) - set(target))
    bad = [
        f"{k}: {tuple(sd[k].shape)} vs {tuple(v.shape)}"
        for k, v in target.items()
        if k in sd and sd[k].shape != v.shape
    ]
    if missing or unexpected or bad:
        name = getattr(model, "model_name", type(model).__name__)
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:4])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:4])})")
        if bad:
            parts.append(f"{len(bad)} shape mismatches (e.g. {'; '.join(bad[:3])})")
        raise ConversionError(
            f"{source} weights do not fit model {name!r}: "
            + ", ".join(parts)
            + ". Is this the right --model?"
        )


# classifier weights of deepvideo, torchvision, PyTorchVideo (MViT) and PySlowFast models
_CLASSIFIER_KEYS = (
    "head.fc.weight",
    "fc.weight",
    "head.1.weight",
    "head.weight",
    "classifier.1.weight",
    "head.proj.weight",
    "head.projection.weight",
)


def infer_num_classes(state_dict: Mapping[str, torch.Tensor]) -> int | None:
    """Output size of the classifier in a checkpoint: a known classifier key, else the last
    2-D/5-D weight named like a head (squeeze-excitation convs excluded)."""
    for key in _CLASSIFIER_KEYS:
        w = state_dict.get(key)
        if w is not None and w.dim() in (2, 5):
            return int(w.shape[0])
    for key in reversed(list(state_dict)):
        if ".se." in key or ".norm_b.1.block." in key:
            continue
        if key.endswith("weight") and any(h in key for h in ("fc", "proj", "head", "classifier")):
            w = state_dict[key]
            if w.dim() in (2, 5) and not key.startswith(("blocks.0", "patch_embed.")):
                return int(w.shape[0])
    return None


def load_weights(
    model: nn.Module, weights: str | os.PathLike | Mapping[str, torch.Tensor], source: str | None = None
) -> str:
    """Load a checkpoint file or state dict of any supported source into ``model``; returns the source."""
    sd = read_state_dict(weights) if isinstance(weights, (str, os.PathLike)) else dict(weights)
    source = source or detect_source(sd)
    try:
        model.load_state_dict(convert_state_dict(sd, model, source))
    except ConversionError as exc:
        where = f"{weights}: " if isinstance(weights, (str, os.PathLike)) else ""
        raise ConversionError(f"{where}{exc}") from None
    return source


def load_model(
    name: str,
    weights: str | os.PathLike | Mapping[str, torch.Tensor] | None = None,
    num_classes: int | None = None,
    source: str | None = None,
    **overrides,
) -> nn.Module:
    """``create_model(name)`` with weights from another library (or deepvideo) loaded.

    ``num_classes`` defaults to the checkpoint's classifier size.
    """
    from deepvideo.models.registry import create_model

    if weights is None:
        return create_model(name, num_classes=num_classes or 400, **overrides)
    sd = read_state_dict(weights) if isinstance(weights, (str, os.PathLike)) else dict(weights)
    n = num_classes or infer_num_classes(sd) or 400
    model = create_model(name, num_classes=n, **overrides)
    try:
        load_weights(model, sd, source)
    except ConversionError as exc:
        where = f"{weights}: " if isinstance(weights, (str, os.PathLike)) else ""
        raise ConversionError(f"{where}{exc}") from None
    return model


def convert_file(
    src: str | os.PathLike, dst: str | os.PathLike, model_name: str, source: str | None = None
) -> str:
    """Convert checkpoint ``src`` for ``model_name`` and write a deepvideo ``.safetensors`` (or
    ``.pth``) file ``dst`` atomically; returns the detected source."""
    from safetensors.torch import save_file

    sd = read_state_dict(src)
    source = source or detect_source(sd)
    model = load_model(model_name, sd, source=source)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    with replaced_when_done(dst) as tmp:
        if Path(dst).suffix == ".safetensors":
            save_file(state, str(tmp), metadata={"model": model_name, "source": source})
        else:
            torch.save(state, tmp)
    return source


__all__ = [
    "ConversionError",
    "SOURCES",
    "convert_file",
    "convert_state_dict",
    "detect_source",
    "infer_num_classes",
    "load_model",
    "load_weights",
    "read_state_dict",
]
