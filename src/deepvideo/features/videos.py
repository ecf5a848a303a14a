"""Datasets of feature files -> one vector per video, and the labels and splits for the SVM.

``sample_descriptors`` draws the descriptors the PCA and GMM are fitted on (256,000 in total,
as Wang & Schmid 2013 sample for their codebooks, spread evenly over the videos);
``encode_files`` turns every video's file into its vector; vectors are stored as one ``.npz``
(``video_ids``, ``vectors``, ``meta``). Video ids are the videos' paths relative to the dataset
root (the ids ``deepvideo test`` writes in ``scores.npz``), so the class is the first folder of
the id for the usual ``<class>/<video>`` layouts (UCF101, HMDB51, ``folder``), and a split list
(e.g. UCF101's ``trainlist01.txt``) names videos by the same ids in its first column.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepvideo.features.encoding import Encoder
from deepvideo.features.store import load_features

FIT_SAMPLES = 256_000


def sample_descriptors(files: dict[str, Path], types: Sequence[str] | None = None, total: int = FIT_SAMPLES,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Up to ``total`` descriptors per type, the same number drawn from every video."""
    if not files:
        raise ValueError("no feature files to sample descriptors from")
    rng = np.random.default_rng(seed)
    per_video = max(1, total // len(files))
    parts: dict[str, list[np.ndarray]] = {}
    for vid, path in files.items():
        _, desc, _ = load_features(path)
        names = list(types) if types else sorted(desc)
        for name in names:
            if name not in desc:
                raise KeyError(f"{path}: no descriptor {name!r} (has {sorted(desc)}) for video {vid}")
            d = desc[name]
            take = rng.choice(len(d), size=min(per_video, len(d)), replace=False) if len(d) else []
            parts.setdefault(name, []).append(d[take])
    return {k: np.concatenate(v) for k, v in parts.items()}


def encode_files(files: dict[str, Path], encoder: Encoder) -> tuple[list[str], np.ndarray]:
    """(video ids, ``[N, dim]`` vectors) of every feature file."""
    ids, vecs = [], []
    for vid, path in files.items():
        _, desc, _ = load_features(path)
        ids.append(vid)
        vecs.append(encoder.encode(desc))
    return ids, np.stack(vecs) if vecs else np.zeros((0, 0), np.float32)


def save_vectors(path: str | os.PathLike, ids: Sequence[str], vectors: np.ndarray,
                 meta: dict | None = None) -> None:
    """Write video ids and their vectors (float32) atomically."""
    from deepvideo.io.atomic import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, video_ids=np.array(list(ids), dtype=np.str_), vectors=np.asarray(vectors, np.float32),
             meta=np.array(json.dumps(meta or {})))
    atomic_write_bytes(path, buf.getvalue())


def load_vectors(path: str | os.PathLike) -> tuple[list[str], np.ndarray, dict]:
    """(video ids, vectors, meta) of a file written by :func:`save_vectors`."""
    with np.load(path, allow_pickle=False) as z:
        if "video_ids" not in z or "vectors" not in z:
            raise ValueError(f"{path}: not a vectors file of `deepvideo features encode`")
        return [str(v) for v in z["video_ids"]], z["vectors"], json.loads(str(z["meta"]))


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Video ids from the first column of a split list (blank lines skipped)."""
    ids = [line.split()[0] for line in Path(path).read_text().splitlines() if line.strip()]
    if not ids:
        raise ValueError(f"{path}: empty split list")
    return ids


def class_of(video_id: str, where: str = "") -> str:
    """The class folder of a ``<class>/<video>`` id."""
    parts = Path(video_id).parts
    if len(parts) < 2:
        raise ValueError(f"{where}video id {video_id!r} has no class folder (expected <class>/<video>)")
    return parts[0]


def select(ids: list[str], vectors: np.ndarray, wanted: list[str], source: str) -> np.ndarray:
    """Rows of ``vectors`` for the ``wanted`` ids (all must be present)."""
    pos = {v: i for i, v in enumerate(ids)}
    missing = [w for w in wanted if w not in pos]
    if missing:
        raise ValueError(f"{source}: {len(missing)} listed video(s) have no vector, e.g. {missing[:3]}")
    return vectors[[pos[w] for w in wanted]]
