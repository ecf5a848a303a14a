"""Classification metrics for video recognition: pure functions on score arrays.

The measures follow the papers deepvideo reproduces:

* Hit@k (Karpathy et al. 2014, "Large-scale Video Classification with Convolutional
  Neural Networks"): the fraction of samples whose true class is among the k highest
  scores. *Clip* hit@k scores every clip (view) alone; *video* hit@k scores the video's
  aggregated prediction (the average over its clips).
* Mean class accuracy (the UCF101 / HMDB51 protocol; Simonyan & Zisserman 2014 and
  Feichtenhofer et al. 2016 report it over the 3 splits): the unweighted mean of the
  per-class accuracies, i.e. the mean of the confusion matrix's row-normalised diagonal.
* Aggregation of test views (Simonyan & Zisserman 2014: 25 frames x 10 crops averaged;
  Feichtenhofer et al. 2016: average of the *non-softmaxed* scores over all positions):
  ``mean`` of raw scores (default), ``softmax`` averaging, or ``max``.

Ranking is deterministic: classes are ordered by score, ties broken by the lower class
index, so hit@1 equals the accuracy of ``argmax`` predictions and an all-equal score row
counts as predicting class 0 (a constant model is not rewarded for ties).

All functions take numpy arrays (or anything ``np.asarray`` accepts, e.g. CPU tensors),
never modify their inputs and return new numpy values.
"""

from __future__ import annotations

import numpy as np

AGGREGATIONS = ("mean", "softmax", "max")


def _scores_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64, copy=False)
    if s.ndim != 2:
        raise ValueError(f"scores must be [N, K], got shape {s.shape}")
    if y.shape != (s.shape[0],):
        raise ValueError(f"labels must be [N] with N = {s.shape[0]}, got shape {y.shape}")
    if s.shape[1] == 0:
        raise ValueError("scores have no classes (K = 0)")
    if y.size and (y.min() < 0 or y.max() >= s.shape[1]):
        raise ValueError(f"labels must lie in 0..{s.shape[1] - 1}, got {y.min()}..{y.max()}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    return s, y


def label_rank(scores, labels) -> np.ndarray:
    """0-based rank of each sample's true class (0 = top scoring), ties to the lower index."""
    s, y = _scores_labels(scores, labels)
    rows = np.arange(s.shape[0])
    true = s[rows, y][:, None]
    idx = np.arange(s.shape[1])[None, :]
    above = (s > true) | ((s == true) & (idx < y[:, None]))
    return above.sum(axis=1)


def predictions(scores) -> np.ndarray:
    """Predicted class per row (``argmax``, first index on ties)."""
    s = np.asarray(scores)
    if s.ndim != 2 or s.shape[1] == 0:
        raise ValueError(f"scores must be [N, K] with K >= 1, got shape {s.shape}")
    return s.argmax(axis=1).astype(np.int64)


def hit_at_k(scores, labels, k: int = 1) -> float:
    """Fraction of rows whose true class ranks among the top ``k`` scores (Karpathy hit@k).

    ``k`` larger than the number of classes is clipped (hit@K = 1). NaN for no samples.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ranks = label_rank(scores, labels)
    if ranks.size == 0:
        return float("nan")
    return float((ranks < k).mean())


def confusion_matrix(pred, labels, num_classes: int) -> np.ndarray:
    """``[K, K]`` int64 counts: row = true class, column = predicted class."""
    p = np.asarray(pred).astype(np.int64, copy=False).ravel()
    y = np.asarray(labels).astype(np.int64, copy=False).ravel()
    if p.shape != y.shape:
        raise ValueError(f"predictions {p.shape} and labels {y.shape} differ in length")
    for name, a in (("predictions", p), ("labels", y)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} must lie in 0..{num_classes - 1}, got {a.min()}..{a.max()}")
    cm = np.bincount(y * num_classes + p, minlength=num_classes * num_classes)
    return cm.reshape(num_classes, num_classes).astype(np.int64)


def per_class_accuracy(cm) -> np.ndarray:
    """Recall of each class from a confusion matrix; NaN for classes with no samples."""
    cm = np.asarray(cm, dtype=np.float64)
    counts = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.diag(cm) / np.where(counts > 0, counts, 1), np.nan)


def mean_class_accuracy(cm) -> float:
    """Unweighted mean of the per-class accuracies over the classes that have samples."""
    acc = per_class_accuracy(cm)
    present = ~np.isnan(acc)
    return float(acc[present].mean()) if present.any() else float("nan")


def softmax(x, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    x = np.asarray(x, dtype=np.float64)
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def aggregate_views(view_scores, method: str = "mean") -> np.ndarray:
    """Combine ``[N, V, K]`` per-view scores into ``[N, K]`` video scores.

    ``mean`` averages the raw (pre-softmax) scores, ``softmax`` averages class
    probabilities (``softmax_mean`` is a synonym), ``max`` takes the per-class maximum.
    """
    v = np.asarray(view_scores, dtype=np.float64)
    if v.ndim != 3:
        raise ValueError(f"view scores must be [N, V, K], got shape {v.shape}")
    if v.shape[1] == 0:
        raise ValueError("no views to aggregate (V = 0)")
    if method == "mean":
        return v.mean(axis=1)
    if method in ("softmax", "softmax_mean"):
        return softmax(v, axis=-1).mean(axis=1)
    if method == "max":
        return v.max(axis=1)
    raise ValueError(f"unknown aggregation {method!r}; choose one of {', '.join(AGGREGATIONS)}")


def classification_metrics(scores, labels, num_classes: int | None = None,
                           ks: tuple[int, ...] = (1, 5)) -> dict:
    """Hit@k, accuracy, mean class accuracy, per-class accuracy and confusion of ``[N, K]`` scores."""
    s, y = _scores_labels(scores, labels)
    k_total = s.shape[1] if num_classes is None else num_classes
    if k_total != s.shape[1]:
        raise ValueError(f"scores have {s.shape[1]} classes but num_classes = {k_total}")
    cm = confusion_matrix(predictions(s), y, k_total)
    out = {f"hit@{k}": hit_at_k(s, y, k) for k in ks}
    out["num_samples"] = int(s.shape[0])
    out["mean_class_accuracy"] = mean_class_accuracy(cm)
    out["per_class_accuracy"] = per_class_accuracy(cm)
    out["confusion"] = cm
    return out


def video_metrics(view_scores, labels, aggregate: str = "mean", ks: tuple[int, ...] = (1, 5)) -> dict:
    """Clip- and video-level metrics of ``[N, V, K]`` per-view scores.

    Clip level treats each of the ``N*V`` views as a sample with its video's label; video
    level scores the views aggregated by ``aggregate``. Per-class accuracy, mean class
    accuracy and the confusion matrix are video level.
    """
    v = np.asarray(view_scores, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64, copy=False)
    if v.ndim != 3:
        raise ValueError(f"view scores must be [N, V, K], got shape {v.shape}")
    n, views, k = v.shape
    clip = classification_metrics(v.reshape(n * views, k), np.repeat(y, views), k, ks)
    video = classification_metrics(aggregate_views(v, aggregate), y, k, ks)
    out = {f"clip_{name}": clip[name] for name in [f"hit@{kk}" for kk in ks]}
    out.update({f"video_{name}": video[name] for name in [f"hit@{kk}" for kk in ks]})
    out.update(num_videos=int(n), num_views=int(views), aggregate=aggregate,
               mean_class_accuracy=video["mean_class_accuracy"],
               per_class_accuracy=video["per_class_accuracy"], confusion=video["confusion"])
    return out


def scalar_metrics(metrics: dict) -> dict:
    """The JSON-friendly scalar entries of a metrics dict (drops arrays)."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float, str, np.integer, np.floating)):
            out[key] = value.item() if isinstance(value, (np.integer, np.floating)) else value
    return out
