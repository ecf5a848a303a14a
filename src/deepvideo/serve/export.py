"""Export a model to ONNX or TorchScript, with its InputSpec and classes recorded in the file.

The exported graph takes one tensor per batch key of the model's
:class:`~deepvideo.spec.InputSpec` (``rgb [N, 3, K*T, S, S]``, and ``flow [N, 2, K*L, S, S]``
for two-stream models), in the order of ``spec.batch_keys``, and returns the ``[N, K]``
scores :func:`~deepvideo.engine.scoring.reduce_logits` gives (dict outputs and score maps
reduced inside the graph); the batch size is dynamic. The metadata (ONNX
``metadata_props``; a ``deepvideo.json`` extra file in a TorchScript archive) holds
``input_spec``, ``class_names``, ``short_side``, ``model_name`` and ``inputs``, so
``deepvideo predict --onnx`` needs neither the run folder nor the model's code.

ONNX export (opset 18) tries ``torch.onnx.export``'s tracing exporter first (fast) and keeps
its file only if onnxruntime reproduces PyTorch within 1e-4 on another batch size; otherwise
(e.g. SlowFast, whose slow-pathway frame indices trace wrongly) it uses the ``torch.export``-based
exporter, which is slower. :func:`check_export` runs the file under onnxruntime (or
``torch.jit.load``) on random input and returns the largest absolute difference from PyTorch eager.
"""

from __future__ import annotations

import io
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepvideo.engine.scoring import reduce_logits
from deepvideo.io.atomic import atomic_write_bytes
from deepvideo.spec import InputSpec

FORMATS = ("onnx", "torchscript")
META_KEY = "deepvideo"  # ONNX metadata key / TorchScript extra file stem
OPSET = 18
TOLERANCE = 1e-4  # largest |exported - PyTorch| score difference accepted
EXPORTERS = ("auto", "torchscript", "dynamo")
CHANNELS = {"rgb": 3, "flow": 2}


class ExportError(ValueError):
    """The model could not be exported (an op the exporter does not support, ...)."""


class ScoresOnly(nn.Module):
    """``model`` with positional inputs (one per batch key) returning ``[N, K]`` scores."""

    def __init__(self, model: nn.Module, keys: tuple[str, ...]):
        super().__init__()
        self.model, self.keys = model, keys

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return reduce_logits(self.model(dict(zip(self.keys, inputs, strict=True))))


def example_inputs(spec: InputSpec, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the shapes a spec gives, one per batch key."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for key in spec.batch_keys:
        frames = spec.num_segments * (spec.num_frames if key == "rgb" else spec.flow_stack)
        out.append(torch.randn(batch, CHANNELS[key], frames, spec.crop_size, spec.crop_size, generator=gen))
    return tuple(out)


def export_metadata(spec: InputSpec, class_names: list[str], short_side: int, model_name: str) -> dict:
    """What a runtime needs besides the graph (see the module docstring)."""
    return {"input_spec": spec.to_dict(), "class_names": list(class_names), "short_side": int(short_side),
            "model_name": model_name, "inputs": list(spec.batch_keys), "output": "scores"}


def _legacy_onnx(wrapper: ScoresOnly, inputs: tuple, keys: tuple[str, ...]) -> bytes:
    """The TorchScript-based exporter (``dynamo=False``): fast, but some traced ops go wrong."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation and tracer warnings
        torch.onnx.export(wrapper, inputs, buf, dynamo=False, input_names=list(keys), output_names=["scores"],
                          opset_version=OPSET, dynamic_axes={k: {0: "batch"} for k in [*keys, "scores"]})
    return buf.getvalue()


def _dynamo_onnx(wrapper: ScoresOnly, inputs: tuple, keys: tuple[str, ...]) -> bytes:
    """The ``torch.export``-based exporter: slower, handles what tracing gets wrong."""
    batch = torch.export.Dim("batch", min=1, max=1024)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        program = torch.onnx.export(wrapper, inputs, input_names=list(keys), output_names=["scores"],
                                    dynamic_shapes=(tuple({0: batch} for _ in keys),), opset_version=OPSET,
                                    dynamo=True, external_data=False, verbose=False)
        program.save(str(path))
        return path.read_bytes()


def _onnx_bytes(wrapper: ScoresOnly, inputs: tuple, keys: tuple[str, ...], metadata: dict,
                exporter: str = "auto") -> bytes:
    """ONNX with metadata. A graph is kept only if onnxruntime reproduces PyTorch within
    :data:`TOLERANCE` on another batch size; ``auto`` tries the tracing exporter, then the
    ``torch.export`` one."""
    import onnx

    errors = []
    for name, run in (("torchscript", _legacy_onnx), ("dynamo", _dynamo_onnx)):
        if exporter not in ("auto", name):
            continue
        try:
            data = run(wrapper, inputs, keys)
            diff = _max_diff(wrapper, data)
            if not diff <= TOLERANCE:
                errors.append(f"{name} exporter: outputs differ from PyTorch by {diff:.3g}")
                continue
        except Exception as err:  # the exporters raise many types; all mean "not exportable this way"
            errors.append(f"{name} exporter: {type(err).__name__}: {str(err).strip().splitlines()[0]}")
            continue
        proto = onnx.load_from_string(data)
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps({**metadata, "exporter": name})
        return proto.SerializeToString()
    raise ExportError("ONNX export failed: " + "; ".join(errors))


def _max_diff(wrapper: ScoresOnly, data: bytes) -> float:
    """Largest |onnxruntime - PyTorch| on 3 fresh random clips."""
    import onnxruntime as ort

    spec = wrapper.model.input_spec
    inputs = example_inputs(spec, batch=3, seed=7)
    options = ort.SessionOptions()
    options.log_severity_level = 4  # a failing graph is reported by the caller, not logged here
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    try:
        given = {k: x.numpy() for k, x in zip(wrapper.keys, inputs, strict=True)}
        got = session.run(None, {i.name: given[i.name] for i in session.get_inputs()})[0]
    except Exception as err:  # onnxruntime's own error types
        raise ExportError(f"onnxruntime cannot run the traced graph: {str(err).splitlines()[0]}") from err
    ref = wrapper(*inputs).numpy()
    return float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")


def _torchscript_bytes(wrapper: ScoresOnly, inputs: tuple, metadata: dict) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notices
        try:
            traced = torch.jit.trace(wrapper, inputs, check_trace=False)
        except Exception as err:
            raise ExportError(f"TorchScript tracing failed: {type(err).__name__}: {err}") from err
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={f"{META_KEY}.json": json.dumps(metadata)})
    return buf.getvalue()


def export_model(model: nn.Module, path: str | Path, fmt: str, *, class_names: list[str],
                 short_side: int, model_name: str = "", exporter: str = "auto") -> Path:
    """Write ``model`` (eval mode, its ``input_spec``) to ``path`` as ``onnx`` or ``torchscript``.

    ``exporter`` (ONNX only): ``auto``, ``torchscript`` or ``dynamo`` (see :func:`_onnx_bytes`).
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    spec: InputSpec = model.input_spec
    model = model.eval()
    wrapper = ScoresOnly(model, spec.batch_keys).eval()
    inputs = example_inputs(spec, batch=2)
    metadata = export_metadata(spec, class_names, short_side, model_name or getattr(model, "model_name", ""))
    with torch.no_grad():
        if fmt == "onnx":
            data = _onnx_bytes(wrapper, inputs, spec.batch_keys, metadata, exporter)
        else:
            data = _torchscript_bytes(wrapper, inputs, metadata)
    return atomic_write_bytes(path, data)


def read_metadata(path: str | Path) -> dict:
    """The deepvideo metadata of an exported file (ONNX or TorchScript), naming the file on error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such exported model")
    if path.suffix.lower() == ".onnx":
        import onnx

        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as err:
            raise ValueError(f"{path}: not an ONNX model ({type(err).__name__}: {err})") from None
        props = {p.key: p.value for p in proto.metadata_props}
        text = props.get(META_KEY)
    else:
        files = {f"{META_KEY}.json": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.load(str(path), map_location="cpu", _extra_files=files)
        except Exception as err:
            raise ValueError(f"{path}: not a TorchScript archive ({type(err).__name__}: {err})") from None
        text = files[f"{META_KEY}.json"] or None
    if not text:
        raise ValueError(f"{path}: has no deepvideo metadata (export it with `deepvideo export`)")
    return json.loads(text)


@dataclass
class ExportCheck:
    """Largest absolute difference between the exported file's and PyTorch's scores."""

    max_abs_diff: float
    shape: tuple[int, ...]


def run_exported(path: str | Path, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    """Scores of an exported file on ``inputs`` (onnxruntime on CPU, or ``torch.jit.load``)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs, strict=True)}
        return session.run(None, feed)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(*inputs).numpy()


def check_export(model: nn.Module, path: str | Path, batch: int = 2, seed: int = 1) -> ExportCheck:
    """Run ``model`` and the exported ``path`` on the same random inputs; compare."""
    inputs = example_inputs(model.input_spec, batch=batch, seed=seed)
    with torch.no_grad():
        ref = ScoresOnly(model.eval(), model.input_spec.batch_keys)(*inputs).numpy()
    got = run_exported(path, inputs)
    if got.shape != ref.shape:
        raise ExportError(f"{path}: output shape {got.shape}, PyTorch gives {ref.shape}")
    return ExportCheck(float(np.abs(got - ref).max()), tuple(ref.shape))
