"""Checkpoints: safetensors weights, a JSON description and a separate training state.

A checkpoint is a folder (``<run_dir>/checkpoints/last`` and ``.../best``) holding

- ``model.safetensors``: the model's ``state_dict`` (parameters and buffers), nothing else;
- ``checkpoint.json``: ``config`` (the resolved run configuration), ``class_names``,
  ``epoch`` (completed epochs), ``step`` (optimizer steps), ``iter_in_epoch`` (0 at an
  epoch boundary), ``metrics``, ``model_name``, ``input_spec``, ``deepvideo_version``;
- ``train_state.pt``: optimizer, schedule, grad-scaler and RNG states (python, numpy,
  torch, cuda) plus the run history, as plain tensors and containers written with
  ``torch.save`` and read with ``torch.load(weights_only=True)``.

Writes are atomic for the folder as a whole: the three files go to a temporary sibling
folder (:func:`deepvideo.io.atomic.temporary_sibling`), then the old folder is renamed to
``.<name>.old``, the new one into place, and the old one removed. A process killed at any
point leaves either the previous or the new checkpoint readable (:func:`resolve_checkpoint`
falls back to ``.<name>.old``). (:func:`deepvideo.io.atomic.replaced_when_done` removes an
existing folder *before* its rename, which would leave no checkpoint in between; training
must survive a kill at any instant, hence the extra ``.old`` step here.)

Reading is safe and loud: the weights are read by safetensors and the training state by
``torch.load(weights_only=True)`` (:mod:`deepvideo.models.convert.files`), so a checkpoint
cannot run code; an empty, truncated or damaged file is a :class:`CheckpointError` naming the
file and what is wrong (``.../model.safetensors: damaged safetensors file (truncated?): ...``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from deepvideo.io.atomic import temporary_sibling
from deepvideo.models.convert.files import WeightsFileError, read_safetensors, read_torch_file

WEIGHTS = "model.safetensors"
META = "checkpoint.json"
STATE = "train_state.pt"


class CheckpointError(OSError):
    """A checkpoint is missing, incomplete or does not fit the model; names the path."""


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or ``model`` itself)."""
    return getattr(model, "module", model)


def _weights_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    state = unwrap(model).state_dict()
    out, seen = {}, set()
    for k, v in state.items():
        v = v.detach()
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape)) if v.numel() else None
        # safetensors refuses tensors sharing memory (tied weights): store a copy of repeats.
        v = v.cpu().clone() if key in seen else v.cpu().contiguous()
        if key is not None:
            seen.add(key)
        out[k] = v
    return out


def rng_state() -> dict:
    """Python, numpy (global), torch and CUDA generator states as plain containers/tensors."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    folder: str | os.PathLike, model: nn.Module, meta: dict, train_state: dict | None = None
) -> Path:
    """Write a checkpoint folder atomically (see module docstring); return its path."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_file(_weights_dict(model), str(tmp / WEIGHTS), metadata={"format": "pt"})
        if train_state is not None:
            torch.save(train_state, tmp / STATE)
        (tmp / META).write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
        sync = getattr(os, "fdatasync", os.fsync)  # the data, not the file times
        for f in tmp.iterdir():  # data on disk before the renames make it visible
            with open(f, "rb") as fh:
                sync(fh.fileno())
        _install(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def link_checkpoint(source: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Make ``folder`` a checkpoint with ``source``'s files (hard links, copies where the file
    system has none), atomically as :func:`save_checkpoint`; e.g. ``best`` from ``last``.

    Checkpoint files are never modified in place (a new checkpoint replaces the folder), so
    the two folders may share them.
    """
    source, folder = resolve_checkpoint(source), Path(folder)
    tmp = temporary_sibling(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for f in source.iterdir():
            try:
                os.link(f, tmp / f.name)
            except OSError:
                shutil.copy2(f, tmp / f.name)
        _install(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _install(tmp: Path, folder: Path) -> None:
    """Put the complete folder ``tmp`` at ``folder``: the old one goes to ``.<name>.old`` first."""
    old = folder.with_name(f".{folder.name}.old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def _json_default(o):
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """Checkpoint folder from a folder, a file inside it, or a run folder (best, else last)."""
    p = Path(path)
    if p.is_file() and p.name in (WEIGHTS, META, STATE):
        p = p.parent
    if (p / "checkpoints").is_dir():
        for name in ("best", "last"):
            try:
                return resolve_checkpoint(p / "checkpoints" / name)
            except CheckpointError:
                continue
        raise CheckpointError(f"{p}: run folder without a complete checkpoint in {p / 'checkpoints'}")
    if not (p / META).is_file():
        old = p.with_name(f".{p.name}.old")
        if (old / META).is_file():  # killed between the two renames of save_checkpoint
            return old
        raise CheckpointError(
            f"{p}: not a deepvideo checkpoint (expected a folder with {META} and {WEIGHTS})"
        )
    if not (p / WEIGHTS).is_file():
        raise CheckpointError(f"{p}: {WEIGHTS} is missing")
    return p


def read_meta(path: str | os.PathLike) -> dict:
    """``checkpoint.json`` of a checkpoint as a dict; unreadable JSON is a :class:`CheckpointError`."""
    folder = resolve_checkpoint(path)
    try:
        meta = json.loads((folder / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{folder / META}: invalid JSON, the file is damaged (truncated?): {e}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{folder / META}: not a checkpoint description (a JSON object is expected)")
    return meta


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint's ``model.safetensors`` (folder, file in it or run folder)."""
    folder = resolve_checkpoint(path)
    try:
        return read_safetensors(folder / WEIGHTS)
    except WeightsFileError as e:
        raise CheckpointError(str(e)) from None


def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True,
                 state: dict[str, torch.Tensor] | None = None) -> list[str]:
    """Load ``model.safetensors`` into ``model``; return missing+unexpected keys (non-strict).

    ``state``: the file's tensors when already read (:func:`read_weights`).
    """
    folder = resolve_checkpoint(path)
    state = read_weights(folder) if state is None else state
    target = unwrap(model)
    own = target.state_dict()
    problems = [
        f"{k} has shape {tuple(v.shape)}, the model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    state = {k: v for k, v in state.items() if k not in own or own[k].shape == v.shape}
    result = target.load_state_dict(state, strict=False)
    problems += [f"missing {k}" for k in result.missing_keys] + [
        f"unexpected {k}" for k in result.unexpected_keys
    ]
    if strict and problems:
        raise CheckpointError(
            f"{folder / WEIGHTS}: does not fit the model: {', '.join(problems[:8])}"
            + (" ..." if len(problems) > 8 else "")
        )
    return problems


def load_train_state(path: str | os.PathLike) -> dict:
    """The training state of a checkpoint (``weights_only``: tensors and containers only)."""
    folder = resolve_checkpoint(path)
    f = folder / STATE
    if not f.is_file():
        raise CheckpointError(f"{f}: training state missing (a weights-only checkpoint cannot be resumed)")
    try:
        state = read_torch_file(f)
    except WeightsFileError as e:
        raise CheckpointError(str(e)) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{f}: not a training state (a dict is expected, found {type(state).__name__})")
    return state


def existing_checkpoints(folder: str | os.PathLike) -> list[str]:
    """Names of the checkpoint folders (``last``, ``best`` and their ``.old`` copies) in ``folder``."""
    folder = Path(folder)
    return [n for n in ("last", "best", ".last.old", ".best.old") if (folder / n).is_dir()]


def check_resumable(path: str | os.PathLike) -> Path:
    """The checkpoint folder at ``path`` if training can resume from it: its description reads,
    its weights and training state are there (their contents are read when restoring)."""
    folder = resolve_checkpoint(path)
    read_meta(folder)
    for name in (WEIGHTS, STATE):
        f = folder / name
        if not f.is_file():
            raise CheckpointError(f"{f}: missing (a checkpoint without it cannot be resumed)")
        if f.stat().st_size == 0:
            raise CheckpointError(f"{f}: empty file (0 bytes)")
    return folder
