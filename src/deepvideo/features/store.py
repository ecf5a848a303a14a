"""Per-video feature files and the reference binary's text format.

Our files: one ``.npz`` per video holding ``info`` (float32 ``[N, 10]``, the fields of
:data:`~deepvideo.features.trajectories.INFO_FIELDS`), one float16 array per descriptor type
(``trajectory``, ``hog``, ``hof``, ``mbhx``, ``mbhy``; for TDD the layer names) and ``meta``
(JSON text: parameters, statistics). Written atomically.

The reference format (the authors' ``DenseTrackStab`` binary, Wang & Schmid 2013) is text, one
trajectory per line, tab/space separated: frameNum mean_x mean_y var_x var_y length scale
x_pos y_pos t_pos, then Trajectory (2L = 30), HOG (96), HOF (108), MBHx (96), MBHy (96).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from deepvideo.features.trajectories import DESCRIPTORS, Trajectories, TrajectoryParams
from deepvideo.io.atomic import atomic_write_bytes


def save_features(path: str | os.PathLike, info: np.ndarray, descriptors: dict[str, np.ndarray],
                  meta: dict | None = None) -> Path:
    """Write one video's features (descriptors as float16) atomically."""
    arrays = {"info": np.asarray(info, np.float32), "meta": np.array(json.dumps(meta or {}))}
    for name, d in descriptors.items():
        if name in ("info", "meta"):
            raise ValueError(f"descriptor name {name!r} is reserved")
        arrays[name] = np.asarray(d, np.float16)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_features(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """(info, descriptors as float32, meta) of a file written by :func:`save_features`."""
    with np.load(path, allow_pickle=False) as z:
        if "info" not in z:
            raise ValueError(f"{path}: not a deepvideo features file (no 'info' array)")
        meta = json.loads(str(z["meta"])) if "meta" in z else {}
        desc = {k: z[k].astype(np.float32) for k in z.files if k not in ("info", "meta")}
        return z["info"], desc, meta


def save_trajectories(path: str | os.PathLike, tr: Trajectories, meta: dict | None = None) -> Path:
    """:func:`save_features` of a :class:`Trajectories` with its statistics in ``meta``."""
    return save_features(path, tr.info, tr.descriptors, {"stats": tr.stats, **(meta or {})})


def reference_columns(track_length: int = 15) -> dict[str, int]:
    """Column counts of the reference text format, in order."""
    return {"info": 10, **TrajectoryParams(track_length=track_length).dims()}


def read_reference_text(path: str | os.PathLike, track_length: int = 15) -> Trajectories:
    """Trajectories from the reference binary's text output (see the module docstring)."""
    cols = reference_columns(track_length)
    width = sum(cols.values())
    rows: list[np.ndarray] = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                values = np.array(line.split(), np.float32)
            except ValueError:
                raise ValueError(f"{path}:{lineno}: not a line of numbers") from None
            if len(values) != width:
                raise ValueError(f"{path}:{lineno}: {len(values)} values, expected {width} "
                                 f"(10 info + trajectory/HOG/HOF/MBHx/MBHy for L={track_length})")
            rows.append(values)
    table = np.stack(rows) if rows else np.zeros((0, width), np.float32)
    parts, start = {}, 0
    for name, n in cols.items():
        parts[name] = table[:, start:start + n]
        start += n
    return Trajectories(parts.pop("info"), {k: parts[k] for k in DESCRIPTORS}, {"kept": len(table)})


def write_reference_text(path: str | os.PathLike, tr: Trajectories) -> None:
    """The reference text format of ``tr`` (for tools that read the binary's output)."""
    from deepvideo.io.atomic import atomic_write_text

    table = np.concatenate([tr.info] + [tr.descriptors[k] for k in DESCRIPTORS], axis=1)
    atomic_write_text(path, "".join("\t".join(f"{v:.7g}" for v in row) + "\n" for row in table))
