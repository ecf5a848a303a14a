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

Files are read with ``torch.load(weights_only=True)`` or safetensors only (:mod:`.files`): a
pickle naming anything but tensors is refused unread, and an empty, truncated or damaged file is a
:class:`~deepvideo.models.convert.files.WeightsFileError` naming it. Loading is loud: a
converted state dict must match the target model key for key and shape for shape, otherwise
the error names what is missing, unexpected or mismatched. ``strict=False`` loads the tensors
that match by name and shape and warns, naming every tensor left at its initialization or
dropped (:class:`LoadReport`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from deepvideo.io.atomic import replaced_when_done
from deepvideo.models.convert import pyslowfast as _psf
from deepvideo.models.convert import pytorchvideo as _ptv
from deepvideo.models.convert import torchvision as _tv
from deepvideo.models.convert.files import (
    ConversionError,
    WeightsFileError,
    read_safetensors,
    read_torch_file,
)

SOURCES = ("deepvideo", "torchvision", "pytorchvideo", "pyslowfast")


def read_state_dict(path: str | os.PathLike, inert_modules: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth``/``.pt``/``.pyth``/``.ckpt`` (weights_only) or ``.safetensors`` file.

    A damaged file, or one holding Python objects other than tensors, is a :class:`WeightsFileError`.

    Unwraps ``{"model_state": ...}``, ``{"state_dict": ...}``, ``{"model": ...}``,
    ``{"net": ...}`` (pytracking), ``{"shared_layers": ...}`` (py-MDNet, RT-MDNet) and a
    ``module.`` prefix left by DataParallel.
    ``inert_modules``: see :func:`~deepvideo.models.convert.files.read_torch_file`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    obj = read_safetensors(path) if path.suffix == ".safetensors" else read_torch_file(path, inert_modules)
    for key in ("model_state", "state_dict", "model", "model_state_dict", "net", "shared_layers"):
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


@dataclass(frozen=True)
class LoadReport:
    """How a state dict fits a model: tensors that load, and the ones that do not.

    ``missing``: model tensors the weights lack; ``unexpected``: weight tensors the model lacks;
    ``mismatched``: ``"key: weights shape vs model shape"`` for names in both.
    """

    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[str, ...]

    @classmethod
    def of(cls, state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> LoadReport:
        target = model.state_dict()
        both = [k for k in target if k in state_dict]
        return cls(
            loaded=tuple(k for k in both if state_dict[k].shape == target[k].shape),
            missing=tuple(sorted(set(target) - set(state_dict))),
            unexpected=tuple(sorted(set(state_dict) - set(target))),
            mismatched=tuple(
                f"{k}: {tuple(state_dict[k].shape)} vs {tuple(target[k].shape)}"
                for k in both
                if state_dict[k].shape != target[k].shape
            ),
        )

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 10) -> str:
        """The problems, each kind with its count and up to ``limit`` tensor names."""

        def names(items: tuple[str, ...], sep: str = ", ") -> str:
            more = f"{sep}... ({len(items) - limit} more)" if len(items) > limit else ""
            return sep.join(items[:limit]) + more

        parts = []
        if not self.loaded:
            parts.append(f"no tensor matches ({len(self.missing) + len(self.mismatched)} model tensors)")
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({names(self.missing)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({names(self.unexpected)})")
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} shape mismatches ({names(self.mismatched, '; ')})")
        return "; ".join(parts)


def convert_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    model: nn.Module,
    source: str | None = None,
    *,
    strict: bool = True,
) -> dict[str, torch.Tensor]:
    """Rename (and reshape where formats differ) ``state_dict`` into ``model``'s keys.

    ``strict``: every model tensor must be given with its shape and nothing else, otherwise a
    :class:`ConversionError` names the tensors at fault. ``strict=False`` returns only the tensors
    that fit and warns, naming the ones left out.
    """
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
    report = LoadReport.of(out, model)
    if report.complete:
        return out
    name = getattr(model, "model_name", type(model).__name__)
    problem = f"{source} weights do not fit model {name!r}: {report.describe()}"
    if strict:
        hint = "Is this the right model? (strict=False loads the tensors that fit)"
        raise ConversionError(f"{problem}. {hint}")
    warnings.warn(
        f"{problem}; loaded {len(report.loaded)} tensors, the others keep their initialization",
        stacklevel=3,
    )
    return {k: out[k] for k in report.loaded}


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
    model: nn.Module,
    weights: str | os.PathLike | Mapping[str, torch.Tensor],
    source: str | None = None,
    *,
    strict: bool = True,
) -> str:
    """Load a checkpoint file or state dict of any supported source into ``model``; returns the source.

    ``strict=False`` loads what fits and warns (see :func:`convert_state_dict`).
    """
    sd = read_state_dict(weights) if isinstance(weights, (str, os.PathLike)) else dict(weights)
    source = source or detect_source(sd)
    try:
        model.load_state_dict(convert_state_dict(sd, model, source, strict=strict), strict=strict)
    except ConversionError as exc:
        where = f"{weights}: " if isinstance(weights, (str, os.PathLike)) else ""
        raise ConversionError(f"{where}{exc}") from None
    return source


def load_model(
    name: str,
    weights: str | os.PathLike | Mapping[str, torch.Tensor] | None = None,
    num_classes: int | None = None,
    source: str | None = None,
    *,
    strict: bool = True,
    **overrides,
) -> nn.Module:
    """``create_model(name)`` with weights from another library (or deepvideo) loaded.

    ``num_classes`` defaults to the checkpoint's classifier size. Weights that do not fit the
    model are an error naming the tensors, or with ``strict=False`` a warning (what fits loads).
    """
    from deepvideo.models.registry import create_model

    if weights is None:
        return create_model(name, num_classes=num_classes or 400, **overrides)
    sd = read_state_dict(weights) if isinstance(weights, (str, os.PathLike)) else dict(weights)
    n = num_classes or infer_num_classes(sd) or 400
    model = create_model(name, num_classes=n, **overrides)
    try:
        load_weights(model, sd, source, strict=strict)
    except ConversionError as exc:
        where = f"{weights}: " if isinstance(weights, (str, os.PathLike)) else ""
        raise ConversionError(f"{where}{exc}") from None
    return model


def convert_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    model_name: str,
    source: str | None = None,
    *,
    strict: bool = True,
) -> str:
    """Convert checkpoint ``src`` for ``model_name`` and write a deepvideo ``.safetensors`` (or
    ``.pth``) file ``dst`` atomically; returns the detected source.

    ``strict=False`` writes the model with the tensors that fit and warns about the others.
    """
    from safetensors.torch import save_file

    sd = read_state_dict(src)
    source = source or detect_source(sd)
    try:
        model = load_model(model_name, sd, source=source, strict=strict)
    except ConversionError as exc:
        raise ConversionError(f"{src}: {exc}") from None
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    with replaced_when_done(dst) as tmp:
        if Path(dst).suffix == ".safetensors":
            save_file(state, str(tmp), metadata={"model": model_name, "source": source})
        else:
            torch.save(state, tmp)
    return source


__all__ = [
    "ConversionError",
    "LoadReport",
    "SOURCES",
    "WeightsFileError",
    "convert_file",
    "convert_state_dict",
    "detect_source",
    "infer_num_classes",
    "load_model",
    "load_weights",
    "read_state_dict",
]
