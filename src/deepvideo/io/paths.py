"""Safe output paths for commands that write one output per input video."""

from __future__ import annotations

import os
from pathlib import Path


class UnsafePathError(ValueError):
    """An input entry would make an output land outside the output folder."""


def safe_output_path(out_root: str | os.PathLike, rel: str | os.PathLike,
                     entry: str | None = None) -> Path:
    """Join ``rel`` under ``out_root``, refusing anything that escapes it.

    ``rel`` must be relative, without ``..`` components, and must not resolve through a
    symbolic link to a place outside ``out_root``. ``entry`` names the offending input (file
    and line) in the error message.
    """
    where = f" ({entry})" if entry else ""
    rel_path = Path(rel)
    if rel_path.is_absolute() or rel_path.drive:
        raise UnsafePathError(f"absolute path {str(rel)!r} would escape the output folder{where}")
    if any(part == ".." for part in rel_path.parts):
        raise UnsafePathError(f"path {str(rel)!r} contains '..' and would escape the output folder{where}")
    root = Path(out_root).resolve()
    target = (root / rel_path).resolve()
    if target != root and root not in target.parents:
        raise UnsafePathError(
            f"path {str(rel)!r} resolves through a link to {target}, outside {root}{where}")
    return root / rel_path


def relative_to_root(path: str | os.PathLike, root: str | os.PathLike,
                     entry: str | None = None) -> Path:
    """``path`` relative to the dataset ``root``; refuse paths outside it (links resolved)."""
    where = f" ({entry})" if entry else ""
    p = Path(path)
    root_abs = Path(root).absolute()
    p_abs = p if p.is_absolute() else root_abs / p
    try:
        rel = Path(os.path.normpath(p_abs)).relative_to(os.path.normpath(root_abs))
    except ValueError:
        raise UnsafePathError(f"{str(path)!r} is outside the dataset root {root}{where}") from None
    if any(part == ".." for part in rel.parts):
        raise UnsafePathError(f"{str(path)!r} escapes the dataset root {root}{where}")
    return rel
