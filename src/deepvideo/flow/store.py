"""Quantized optical-flow storage in the two-stream / TSN convention.

Each flow component is clipped to ``±bound`` pixels (20 by default, as in Simonyan &
Zisserman 2014 and Feichtenhofer et al. 2016, "displacements beyond ±20 px clipped") and
mapped linearly to 0..255: ``q = round((clip(f) + bound) * 255 / (2 bound))``, read back as
``f = q * 2 bound / 255 - bound``. Two layouts hold the same uint8 content:

- a folder of grayscale JPEG pairs ``x_00001.jpg`` / ``y_00001.jpg`` (field t is frame
  t -> t+1, file numbers start at 1) with ``flow.json`` beside them recording ``bound``,
  ``count``, ``height``, ``width``, ``method`` and ``jpeg_quality``. Folders without
  ``flow.json`` (e.g. MMAction2/TSN "rawframes") are read with bound 20;
- one compressed array file ``flow.npz`` (``flow`` uint8 [T,2,H,W] and ``meta`` JSON).

Round-trip error (inside ±bound): quantization alone is at most half a step,
``bound/255`` = 0.0784 px for bound 20 (the npz layout is exactly that). JPEG adds a lossy
term, largest on sharp motion edges; at the default quality 95, OpenCV TV-L1 flow of
``test.mp4`` (340x256) comes back with a mean error of 0.046 px and a maximum of 1.24 px
(``benchmarks/bench_flow.py``; 0.042 / 0.38 px at quality 100, 0.050 / 2.1 px at 90).
``tests/flow/test_flow_store.py`` holds the JPEG round trip to mean < 0.1 px, max < 1.5 px.
Values beyond ±bound come back as ±bound.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from deepvideo.io.atomic import replaced_when_done

DEFAULT_BOUND = 20.0
DEFAULT_JPEG_QUALITY = 95
META_NAME = "flow.json"
NPZ_NAME = "flow.npz"
X_TEMPLATE = "x_{:05d}.jpg"
Y_TEMPLATE = "y_{:05d}.jpg"
_FIELD_RE = re.compile(r"^([xy])_(\d+)\.jpg$")


class FlowStoreError(OSError):
    """A stored flow folder or file is missing, incomplete or malformed."""


def quantize(flow, bound: float = DEFAULT_BOUND) -> np.ndarray:
    """float flow (any shape) -> uint8 with ``±bound`` mapped to 0..255."""
    if bound <= 0:
        raise ValueError(f"bound must be positive, got {bound}")
    f = flow.detach().cpu().numpy() if isinstance(flow, torch.Tensor) else np.asarray(flow)
    q = (np.clip(f.astype(np.float32), -bound, bound) + bound) * (255.0 / (2.0 * bound))
    return np.clip(np.rint(q), 0, 255).astype(np.uint8)


def dequantize(q: np.ndarray, bound: float = DEFAULT_BOUND) -> np.ndarray:
    """uint8 -> float32 pixels, inverse of :func:`quantize` (up to half a step)."""
    return q.astype(np.float32) * np.float32(2.0 * bound / 255.0) - np.float32(bound)


def _as_flow_array(flow) -> np.ndarray:
    f = flow.detach().cpu().numpy() if isinstance(flow, torch.Tensor) else np.asarray(flow)
    if f.ndim != 4 or f.shape[1] != 2:
        raise ValueError(f"flow must be [T,2,H,W], got shape {f.shape}")
    return f


def flow_meta(count: int, height: int, width: int, bound: float, method: str | None, quality: int | None,
              fmt: str) -> dict:
    """The metadata stored in flow.json / the npz ``meta`` entry."""
    return {"format": fmt, "bound": float(bound), "count": int(count), "height": int(height),
            "width": int(width), "method": method, "jpeg_quality": quality,
            "x_template": X_TEMPLATE, "y_template": Y_TEMPLATE, "start_index": 1}


def _meta(q: np.ndarray, bound: float, method: str | None, quality: int | None, fmt: str) -> dict:
    return flow_meta(q.shape[0], q.shape[2], q.shape[3], bound, method, quality, fmt)


def write_jpg_fields(folder: str | os.PathLike, flow, bound: float = DEFAULT_BOUND,
                     method: str | None = None, quality: int = DEFAULT_JPEG_QUALITY) -> Path:
    """Write x_/y_ JPEGs and flow.json straight into an existing ``folder`` (not atomic).

    Building block for :func:`write_flow` and the extraction driver, which both write into a
    temporary folder and rename it.
    """
    q = quantize(_as_flow_array(flow), bound)
    folder = Path(folder)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    for t in range(q.shape[0]):
        for c, template in enumerate((X_TEMPLATE, Y_TEMPLATE)):
            path = folder / template.format(t + 1)
            if not cv2.imwrite(str(path), q[t, c], params):
                raise FlowStoreError(f"could not write {path}")
    (folder / META_NAME).write_text(json.dumps(_meta(q, bound, method, quality, "jpg"), indent=1) + "\n")
    return folder


def write_npz_file(path: str | os.PathLike, flow, bound: float = DEFAULT_BOUND,
                   method: str | None = None) -> Path:
    """Write ``flow.npz`` at ``path`` atomically (temporary name, then rename)."""
    q = quantize(_as_flow_array(flow), bound)
    path = Path(path)
    with replaced_when_done(path, suffix=".npz") as tmp:  # np.savez adds .npz to other names
        np.savez_compressed(tmp, flow=q, meta=np.array(json.dumps(_meta(q, bound, method, None, "npz"))))
    return path


def write_flow(path: str | os.PathLike, flow, bound: float = DEFAULT_BOUND, fmt: str | None = None,
               method: str | None = None, quality: int = DEFAULT_JPEG_QUALITY) -> Path:
    """Store ``flow [T,2,H,W]`` quantized with ``bound``; returns the written path.

    ``fmt="jpg"`` writes a folder of JPEG pairs and flow.json; ``fmt="npz"`` writes ``path``
    itself when it ends in ``.npz``, else ``path/flow.npz``. ``fmt=None`` picks npz for a
    ``.npz`` path, jpg otherwise. A new folder is written under a temporary sibling name and
    renamed; an existing folder has its flow files replaced one by one, ``flow.json`` last.
    """
    path = Path(path)
    if fmt is None:
        fmt = "npz" if path.suffix == ".npz" else "jpg"
    if fmt == "npz":
        return write_npz_file(path if path.suffix == ".npz" else path / NPZ_NAME, flow, bound, method)
    if fmt != "jpg":
        raise ValueError(f"unknown flow format {fmt!r}; use 'jpg' or 'npz'")
    flow = _as_flow_array(flow)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent if not path.is_dir() else path))
    try:
        write_jpg_fields(tmp, flow, bound, method, quality)
        if not path.exists():
            os.replace(tmp, path)
            return path
        if not path.is_dir():
            raise FlowStoreError(f"{path} exists and is not a folder; remove it or choose another output")
        (path / META_NAME).unlink(missing_ok=True)  # incomplete until the new flow.json lands
        for name in sorted(os.listdir(tmp), key=lambda n: n == META_NAME):
            os.replace(tmp / name, path / name)
        for name in os.listdir(path):  # stale fields of a longer previous flow
            m = _FIELD_RE.match(name)
            if m and int(m.group(2)) > flow.shape[0]:
                (path / name).unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _resolve(path: str | os.PathLike) -> tuple[str, Path]:
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        return "npz", path
    if path.is_dir():
        if (path / META_NAME).exists() or (path / X_TEMPLATE.format(1)).exists():
            return "jpg", path
        if (path / NPZ_NAME).exists():
            return "npz", path / NPZ_NAME
        raise FlowStoreError(f"no stored flow in {path}: expected x_00001.jpg/y_00001.jpg (+ flow.json) "
                             f"or {NPZ_NAME}; run `deepvideo flow extract` first")
    raise FlowStoreError(f"stored flow not found: {path} is neither a flow folder nor a .npz file")


def _jpg_meta(folder: Path) -> dict:
    meta_path = folder / META_NAME
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            meta["bound"], meta["count"] = float(meta["bound"]), int(meta["count"])
        except (ValueError, KeyError, TypeError) as e:
            raise FlowStoreError(f"{meta_path}: malformed flow metadata ({e}); re-extract the flow") from None
        return meta
    count = 0  # rawframes convention: contiguous x_/y_ files from 1, bound 20
    while (folder / X_TEMPLATE.format(count + 1)).exists():
        count += 1
    return {"bound": DEFAULT_BOUND, "count": count, "method": None}


def read_flow_meta(path: str | os.PathLike) -> dict:
    """Metadata of stored flow (bound, count, height, width, method, ...)."""
    kind, p = _resolve(path)
    if kind == "jpg":
        return _jpg_meta(p)
    with np.load(p, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))


def num_flow_fields(path: str | os.PathLike) -> int:
    """Number of stored flow fields T (a video of T+1 frames)."""
    return int(read_flow_meta(path)["count"])


def _check_indices(indices, count: int, path: Path) -> np.ndarray:
    idx = np.arange(count) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    bad = idx[(idx < 0) | (idx >= count)]
    if bad.size:
        raise IndexError(f"flow field index {int(bad[0])} out of range 0..{count - 1} in {path}")
    return idx


def read_flow_uint8(path: str | os.PathLike, indices=None) -> tuple[np.ndarray, float]:
    """Quantized fields ``uint8 [len(indices),2,H,W]`` and the bound; ``indices`` 0-based."""
    kind, p = _resolve(path)
    if kind == "npz":
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            q = z["flow"]
        return q[_check_indices(indices, q.shape[0], p)], float(meta["bound"])
    meta = _jpg_meta(p)
    idx = _check_indices(indices, meta["count"], p)
    out = None
    for i, t in enumerate(idx):
        for c, template in enumerate((X_TEMPLATE, Y_TEMPLATE)):
            file = p / template.format(int(t) + 1)
            img = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise FlowStoreError(f"cannot read flow image {file}: missing or corrupt; "
                                     "re-extract the flow")
            if out is None:
                out = np.empty((len(idx), 2, *img.shape), np.uint8)
            elif img.shape != out.shape[2:]:
                raise FlowStoreError(f"{file}: size {img.shape} differs from {out.shape[2:]}")
            out[i, c] = img
    if out is None:
        h, w = int(meta.get("height", 0)), int(meta.get("width", 0))
        out = np.empty((0, 2, h, w), np.uint8)
    return out, float(meta["bound"])


def read_flow(path: str | os.PathLike, indices=None) -> torch.Tensor:
    """Stored flow as ``float32 [T,2,H,W]`` pixels; ``indices`` (0-based fields) selects some.

    Any order and duplicates are allowed. Reads a JPEG folder (with or without flow.json), a
    folder holding ``flow.npz``, or a ``.npz`` file.
    """
    q, bound = read_flow_uint8(path, indices)
    return torch.from_numpy(dequantize(q, bound))
