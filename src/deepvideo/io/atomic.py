"""Writing files so that a reader never sees half of one: a temporary sibling, then a rename.

Every writer of a result file (reports, JSON summaries, checkpoints, flow, converted weights)
goes through this module. ``os.replace`` is atomic on one file system, so a crash leaves either
the old file or the new one, never a truncated mix; a failed write leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_sibling(path: str | os.PathLike) -> Path:
    """``.<name>.tmp-<pid>`` beside ``path`` (same folder, hence the same file system)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def replaced_when_done(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to (a file, or a folder the
    caller creates); on success it replaces ``path`` (an existing folder is removed first),
    on an exception it is deleted and ``path`` is left as it was.

    ``suffix`` is appended to the temporary name for writers that insist on an extension
    (``np.savez`` adds ``.npz`` to names without it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path).with_name(temporary_sibling(path).name + suffix)
    _remove(tmp)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders created); returns ``path``."""
    with replaced_when_done(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data, **dumps_kwargs) -> Path:
    """Write ``data`` as indented JSON (``default=str`` unless given) atomically; returns ``path``."""
    dumps_kwargs.setdefault("indent", 2)
    dumps_kwargs.setdefault("default", str)
    return atomic_write_text(path, json.dumps(data, **dumps_kwargs) + "\n")
