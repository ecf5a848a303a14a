"""Reading weight files from outside without running their code, and failing in one line.

Two readers, used wherever deepvideo opens a weights or state file (checkpoints, ``convert``,
``model.pretrained`` / ``model.init_from``, ``train_state.pt`` on resume, ``fuse`` inputs):

- :func:`read_safetensors`: a ``.safetensors`` file (a JSON header and raw tensor bytes; it
  cannot hold code).
- :func:`read_torch_file`: a ``torch.save`` file read with ``torch.load(weights_only=True)``,
  whose unpickler builds tensors and plain containers only: a file naming any other Python
  callable (the way a pickle runs code) is refused.

A damaged file is a :class:`WeightsFileError` naming the file and what is wrong, checked
before PyTorch parses it where PyTorch's own report is unclear: an empty file (``torch.load``
raises ``EOFError``, which the command line shows as a bare ``Aborted.``), a zip archive without
its central directory (truncated), bytes that are neither a zip nor a pickle.
"""

from __future__ import annotations

import os
import pickle
import re
import tarfile
import zipfile
from pathlib import Path

import torch

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default (zip) format
PICKLE_PROTO = 0x80  # the legacy torch.save format starts with a pickle protocol opcode


class ConversionError(ValueError):
    """A checkpoint cannot be read as weights or mapped onto the requested model."""


class WeightsFileError(ConversionError):
    """A weights or state file is empty, truncated, damaged or holds more than tensors; names it."""


def _first_line(err: BaseException) -> str:
    lines = [s.strip() for s in str(err).splitlines() if s.strip()]
    return lines[0] if lines else type(err).__name__


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise WeightsFileError(f"{path}: empty file (0 bytes)")
    return path


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a ``.safetensors`` file on the CPU; a damaged file is a :class:`WeightsFileError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = _existing(path)
    try:
        return load_file(str(path), device="cpu")
    except SafetensorError as err:
        raise WeightsFileError(f"{path}: damaged safetensors file (truncated?): {_first_line(err)}") from None


def _refusal(path: Path, err: pickle.UnpicklingError) -> str:
    """The message for a pickle that the weights-only unpickler rejected or could not parse."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        reason = text.split(marker, 1)[1].strip().splitlines()[0].split(" was not an allowed global")[0]
        return (f"{path}: cannot be read as weights: it holds Python objects other than tensors, which "
                f"could run code when loaded ({reason}); refused unread: only plain tensor files "
                "(torch.save of a state dict) or .safetensors are accepted")
    return f"{path}: damaged PyTorch file (truncated?): {_first_line(err)}"


INERT_LIMIT = 64  # distinct inert classes one file may name


def _refused_global(err: pickle.UnpicklingError) -> str | None:
    """The ``module.Class`` a weights-only load refused, if that is what ``err`` says."""
    match = re.search(r"GLOBAL ([\w.]+) was not an allowed global", str(err))
    return match.group(1) if match else None


def _inert_class(qualified: str) -> type:
    """A stand-in for class ``module.Class`` that keeps no state and runs no code when unpickled
    (its ``__setstate__`` ignores what the file stores)."""
    module, _, name = qualified.rpartition(".")
    return type(name, (), {"__module__": module, "__setstate__": lambda self, state: None,
                           "__repr__": lambda self: f"<inert {qualified}>"})


def read_torch_file(path: str | os.PathLike, inert_modules: tuple[str, ...] = ()):
    """``torch.load(path, weights_only=True)`` on the CPU, with damaged files named in one line.

    Raises :class:`WeightsFileError` for an empty, truncated or damaged file and for a file
    holding Python objects other than tensors and plain containers (refused unread).
    ``inert_modules``: module prefixes (e.g. ``("ltr.",)``, pytracking's training package) whose
    objects are read as inert stand-ins that keep nothing, so a checkpoint pickling its training
    bookkeeping next to the weights can still be read without running any of its code.
    """
    path = _existing(path)
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == ZIP_MAGIC and not zipfile.is_zipfile(path):
        raise WeightsFileError(f"{path}: damaged PyTorch file (truncated? its zip directory is missing)")
    if head != ZIP_MAGIC and head[0] != PICKLE_PROTO and not tarfile.is_tarfile(path):  # tar: torch < 0.4
        raise WeightsFileError(f"{path}: not a PyTorch file (neither a torch.save zip archive nor a pickle)")
    inert: list[type] = []
    while True:
        try:
            with torch.serialization.safe_globals(inert):
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            name = _refused_global(err)
            if inert_modules and name and name.startswith(inert_modules) and len(inert) < INERT_LIMIT:
                inert.append(_inert_class(name))
                continue
            raise WeightsFileError(_refusal(path, err)) from None
        except (EOFError, RuntimeError, OSError) as err:  # cut short, or a damaged zip member
            raise WeightsFileError(f"{path}: damaged PyTorch file (truncated?): "
                                   f"{type(err).__name__}: {_first_line(err)}") from None
