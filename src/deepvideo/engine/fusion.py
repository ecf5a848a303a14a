"""Saved test scores and late fusion of several models' scores.

A :class:`ScoreSet` is what evaluation writes per run (``scores.npz``): video ids, labels,
per-view logits ``[N, V, K]``, the aggregated video scores ``[N, K]`` and the class names,
so fusion and analysis can be redone without the models.

Late fusion follows Simonyan & Zisserman 2014 ("Two-Stream Convolutional Networks for
Action Recognition in Videos", sec. 6): the class scores of the spatial and temporal
streams are combined either by a (weighted) average, or by a linear SVM trained on the
stacked, L2-normalised softmax scores. Feichtenhofer et al. 2016 average the
*non-softmaxed* scores instead (``space="logits"``). Weights express trust in a stream,
e.g. ``1,3`` weights the temporal stream three times.

SVM fusion protocol: one :class:`sklearn.svm.LinearSVC` (one-vs-rest, squared hinge) is
trained on the *train split's* scores of the same models (evaluate the trained models on
their own training videos and save those scores too), then applied to the test scores;
its decision values are the fused scores. Features: for each model, the softmax of its
video scores, L2-normalised, concatenated over models.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepvideo.engine.metrics import softmax
from deepvideo.io.atomic import replaced_when_done

SPACES = ("softmax", "logits")


@dataclass
class ScoreSet:
    """Test scores of one model on one set of videos."""

    video_ids: list[str]
    labels: np.ndarray  # int64 [N]
    view_logits: np.ndarray  # float32 [N, V, K]
    scores: np.ndarray  # float32 [N, K], views aggregated by ``aggregate``
    class_names: list[str]
    aggregate: str = "mean"
    meta: dict = field(default_factory=dict)  # model, checkpoint, split, views, crops, ...
    source: str = ""  # file it was loaded from, for error messages

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.view_logits = np.asarray(self.view_logits, dtype=np.float32)
        self.scores = np.asarray(self.scores, dtype=np.float32)
        n, k = len(self.video_ids), len(self.class_names)
        where = f" in {self.source}" if self.source else ""
        if self.labels.shape != (n,) or self.scores.shape != (n, k) or self.view_logits.ndim != 3 \
                or self.view_logits.shape[0] != n or self.view_logits.shape[2] != k:
            raise ValueError(
                f"inconsistent scores{where}: {n} videos, {k} classes, labels {self.labels.shape}, "
                f"scores {self.scores.shape}, view logits {self.view_logits.shape}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def save_scores(path: str | Path, scores: ScoreSet) -> Path:
    """Write ``scores`` as an ``.npz`` (no pickles) atomically; returns the path."""
    with replaced_when_done(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh, video_ids=np.array(scores.video_ids, dtype=np.str_), labels=scores.labels,
            view_logits=scores.view_logits, scores=scores.scores,
            class_names=np.array(scores.class_names, dtype=np.str_),
            aggregate=np.array(scores.aggregate), meta=np.array(json.dumps(scores.meta, default=str)))
    return Path(path)


def _read_pt(path: Path) -> dict:
    """A ``.pt`` scores dict, read with ``torch.load(weights_only=True)`` (no code runs)."""
    from deepvideo.models.convert.files import read_torch_file

    raw = read_torch_file(path)  # a WeightsFileError (ValueError) names a damaged or unsafe file
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a scores file (a dict of arrays is expected)")
    return {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in raw.items()}


def _read_npz(path: Path) -> dict:
    """The arrays of a ``.npz`` scores file (no pickled objects: ``allow_pickle=False``)."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{path}: not a readable scores file (damaged or truncated?): {reason}") from err


def load_scores(path: str | Path) -> ScoreSet:
    """Read a ``scores.npz`` (or a ``.pt`` dict with the same keys); a run folder means its scores.

    Neither format can run code (``.npz`` without pickles, ``.pt`` with ``weights_only``); a
    damaged file, or scores holding NaN or infinite values, is a ``ValueError`` naming it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "scores.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such scores file (run `deepvideo test` to write one)")
    keys = ("video_ids", "labels", "view_logits", "scores", "class_names")
    data = _read_pt(path) if path.suffix == ".pt" else _read_npz(path)
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"{path}: scores file lacks {', '.join(missing)}")
    meta = data.get("meta", "{}")
    try:
        meta = json.loads(str(meta)) if not isinstance(meta, dict) else meta
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: its meta entry is not JSON ({err})") from None
    scores = ScoreSet([str(v) for v in data["video_ids"]], data["labels"], data["view_logits"],
                      data["scores"], [str(c) for c in data["class_names"]],
                      str(data.get("aggregate", "mean")), meta, source=str(path))
    if not (np.isfinite(scores.scores).all() and np.isfinite(scores.view_logits).all()):
        raise ValueError(f"{path}: scores contain NaN or infinite values")
    return scores


def align(sets: Sequence[ScoreSet]) -> list[ScoreSet]:
    """Reorder every set to the first one's video order; check videos, labels and classes agree."""
    if not sets:
        raise ValueError("no score sets to fuse")
    ref = sets[0]
    order_ref = {v: i for i, v in enumerate(ref.video_ids)}
    out = [ref]
    for s in sets[1:]:
        name = s.source or "a score set"
        if s.class_names != ref.class_names:
            raise ValueError(f"{name}: class names differ from {ref.source or 'the first set'}")
        if set(s.video_ids) != set(order_ref) or len(s.video_ids) != len(ref.video_ids):
            extra = sorted(set(s.video_ids) ^ set(order_ref))[:3]
            raise ValueError(f"{name}: videos differ from {ref.source or 'the first set'} (e.g. {extra})")
        pos = {v: i for i, v in enumerate(s.video_ids)}
        idx = np.array([pos[v] for v in ref.video_ids])
        if not np.array_equal(s.labels[idx], ref.labels):
            raise ValueError(f"{name}: labels differ from {ref.source or 'the first set'}")
        out.append(ScoreSet(ref.video_ids, ref.labels, s.view_logits[idx], s.scores[idx], s.class_names,
                            s.aggregate, s.meta, s.source))
    return out


def _in_space(scores: np.ndarray, space: str) -> np.ndarray:
    if space == "softmax":
        return softmax(scores, axis=-1)
    if space == "logits":
        return np.asarray(scores, dtype=np.float64)
    raise ValueError(f"unknown score space {space!r}; choose one of {', '.join(SPACES)}")


def weighted_fusion(score_arrays: Sequence[np.ndarray], weights: Sequence[float] | None = None,
                    space: str = "softmax") -> np.ndarray:
    """Weighted average of ``[N, K]`` score arrays, in softmax or raw-logit space."""
    if not score_arrays:
        raise ValueError("no scores to fuse")
    weights = [1.0] * len(score_arrays) if weights is None else [float(w) for w in weights]
    if len(weights) != len(score_arrays):
        raise ValueError(f"{len(weights)} weights given for {len(score_arrays)} score sets")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
    total = sum(w * _in_space(s, space) for w, s in zip(weights, score_arrays, strict=True))
    return total / sum(weights)


def svm_features(score_arrays: Sequence[np.ndarray], space: str = "softmax") -> np.ndarray:
    """Per model: scores in ``space``, L2-normalised per video; concatenated over models."""
    feats = []
    for s in score_arrays:
        x = _in_space(s, space)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        feats.append(x / np.maximum(norm, 1e-12))
    return np.concatenate(feats, axis=1)


def svm_fusion(train_arrays: Sequence[np.ndarray], train_labels, test_arrays: Sequence[np.ndarray],
               num_classes: int, C: float = 1.0, space: str = "softmax", seed: int = 0) -> np.ndarray:
    """Train a linear SVM on stacked L2-normalised train scores; return test decision values ``[N, K]``.

    Classes missing from the training scores get a score below every other class.
    """
    from sklearn.svm import LinearSVC

    if len(train_arrays) != len(test_arrays):
        raise ValueError(f"{len(train_arrays)} train score sets but {len(test_arrays)} test score sets")
    y = np.asarray(train_labels, dtype=np.int64)
    classes = np.unique(y)
    x_train, x_test = svm_features(train_arrays, space), svm_features(test_arrays, space)
    if classes.size < 2:
        raise ValueError("SVM fusion needs training scores of at least two classes")
    svm = LinearSVC(C=C, random_state=seed, max_iter=10000).fit(x_train, y)
    dec = svm.decision_function(x_test)
    if dec.ndim == 1:  # binary: sklearn returns the positive class's margin only
        dec = np.stack([-dec, dec], axis=1)
    out = np.full((x_test.shape[0], num_classes), dec.min() - 1.0 if dec.size else -1.0)
    out[:, svm.classes_] = dec
    return out


def fuse_sets(test_sets: Sequence[ScoreSet], weights: Sequence[float] | None = None, space: str = "softmax",
              train_sets: Sequence[ScoreSet] | None = None, C: float = 1.0) -> ScoreSet:
    """Fuse aligned test score sets by weights, or by an SVM when ``train_sets`` are given."""
    tests = align(test_sets)
    ref = tests[0]
    if train_sets:
        trains = align(train_sets)
        if trains[0].class_names != ref.class_names:
            raise ValueError(f"{trains[0].source}: class names differ from the test scores")
        fused = svm_fusion([t.scores for t in trains], trains[0].labels, [t.scores for t in tests],
                           ref.num_classes, C=C, space=space)
        method = {"fusion": "svm", "C": C, "space": space}
    else:
        fused = weighted_fusion([t.scores for t in tests], weights, space)
        method = {"fusion": "weighted", "weights": list(weights or [1.0] * len(tests)), "space": space}
    method["inputs"] = [t.source for t in tests]
    return ScoreSet(ref.video_ids, ref.labels, fused[:, None, :], fused, ref.class_names, "mean", method)
