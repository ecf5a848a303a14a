"""Evaluation: multi-view and fully convolutional testing, saved scores, prediction.

Test protocols reproduced (see PAPERS.md sections 2-4):

* Multi-view testing (Simonyan & Zisserman 2014): ``num_clips`` temporal positions spread
  evenly over the video (25 in the paper), each with 1, 3 or 10 spatial crops (10 = four
  corners + centre and their flips), optionally plus flips; the view scores of a video
  are aggregated.
* Fully convolutional testing (Feichtenhofer et al. 2016, ST-ResNet): the network runs on
  the whole frame (no crop); a model returning spatial or temporal score maps has them
  averaged, and scores are averaged *before* the softmax over all positions.
* Aggregation: ``mean`` of raw scores (default), ``softmax`` averaging or ``max``.
* 3-split protocol (UCF101, HMDB51): :func:`deepvideo.engine.splits.three_split_protocol`.

Scores come from :mod:`deepvideo.engine.scoring`, the path validation during training uses
(same batch keys, autocast and averaging of score maps), so a model validates and tests alike.

Every evaluation writes, into its output folder, ``scores.npz`` (a
:class:`~deepvideo.engine.fusion.ScoreSet`: per-view logits, aggregated scores, labels,
video ids, class names), ``metrics.json``, ``confusion.csv/png`` and ``report.md``, so
fusion and analysis can be redone without the model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepvideo.engine.build import build_dataset, dataset_kwargs, load_checkpoint
from deepvideo.engine.checkpoint import resolve_checkpoint
from deepvideo.engine.fusion import ScoreSet, save_scores
from deepvideo.engine.metrics import aggregate_views, classification_metrics, scalar_metrics, video_metrics
from deepvideo.engine.metrics import softmax as softmax_np
from deepvideo.engine.report import write_report
from deepvideo.engine.scoring import (  # noqa: F401  (reduce_logits, split_views: part of this API)
    MODALITY_KEYS,
    autocast_dtype,
    forward_views,
    reduce_logits,
    score_batches,
    split_views,
)
from deepvideo.io.atomic import atomic_write_text

log = logging.getLogger("deepvideo.engine")


class NonFiniteScoresError(ValueError):
    """A model's scores hold NaN or infinite values (damaged or diverged weights); names the checkpoint."""


def check_finite_scores(view_logits: np.ndarray, source: str | Path, names: Sequence[str]) -> None:
    """Raise :class:`NonFiniteScoresError` if any video's view scores ``[N, V, K]`` are not finite."""
    bad = [str(n) for n, v in zip(names, np.asarray(view_logits), strict=True) if not np.isfinite(v).all()]
    if bad:
        raise NonFiniteScoresError(
            f"{source}: scores contain NaN or infinite values ({len(bad)} of {len(names)} videos, e.g. "
            f"{bad[0]}): the weights are damaged or diverged")


@dataclass
class CollectedScores:
    view_logits: np.ndarray  # [N, V, K]
    labels: np.ndarray  # [N]
    indices: np.ndarray  # [N] dataset positions
    bad_items: list[str] = dataclasses.field(default_factory=list)  # "path: error" of unreadable videos
    unreadable: list[dict] = dataclasses.field(default_factory=list)  # the same as {"path", "error"}

    @property
    def num_videos(self) -> int:
        return len(self.indices)


def collect_scores(model: nn.Module, batches: Iterable[dict], device: torch.device | str = "cpu",
                   chunk: int = 32, *, spec=None, amp_dtype: torch.dtype | None = None) -> CollectedScores:
    """Per-view scores, labels and dataset indices over all batches (model in eval mode).

    Scores come from :func:`deepvideo.engine.scoring.score_batches`, the path validation
    uses. The dataset replaces an unreadable video by another one; such repeats are dropped
    (each video is scored once) and the unreadable videos listed in ``bad_items``.
    """
    scored = score_batches(model, batches, device, spec=spec, amp_dtype=amp_dtype, chunk=chunk)
    if not len(scored.labels):
        raise ValueError("no test videos to evaluate (the dataset is empty or every video failed)")
    _, first = np.unique(scored.indices, return_index=True)
    keep = np.sort(first)
    bad = [f"{b.get('path', '?')}: {b.get('error', 'unreadable')}" for b in scored.bad_items]
    unreadable = [{"path": str(b.get("path", "?")), "error": str(b.get("error", "unreadable"))}
                  for b in scored.bad_items]
    return CollectedScores(scored.view_logits[keep], scored.labels[keep].astype(np.int64),
                           scored.indices[keep], bad, unreadable)


def make_score_set(collected: CollectedScores, video_ids: Sequence[str], class_names: Sequence[str],
                   aggregation: str = "mean", meta: dict | None = None) -> ScoreSet:
    """Wrap collected scores as a :class:`ScoreSet` with views aggregated by ``aggregation``."""
    k = collected.view_logits.shape[2]
    if len(class_names) != k:
        raise ValueError(f"the model outputs {k} classes but {len(class_names)} class names are given")
    agg = aggregate_views(collected.view_logits, aggregation)
    return ScoreSet([str(video_ids[i]) for i in collected.indices], collected.labels, collected.view_logits,
                    agg, list(class_names), aggregation, dict(meta or {}))


def json_ready(metrics: dict) -> dict:
    out = scalar_metrics(metrics)
    for k, v in out.items():
        if isinstance(v, float) and math.isnan(v):
            out[k] = None
    if "per_class_accuracy" in metrics:
        acc = metrics["per_class_accuracy"]
        out["per_class_accuracy"] = [None if math.isnan(a) else float(a) for a in acc]
    return out


def score_metrics(scores: ScoreSet, ks: tuple[int, ...] = (1, 5)) -> dict:
    """Clip level from the per-view logits, video level from the stored aggregated scores.

    Fused score sets (``meta["fusion"]``) have video-level metrics only.
    """
    ks = tuple(k for k in ks if k <= scores.num_classes) or (1,)
    m = video_metrics(scores.view_logits, scores.labels, "mean", ks)
    v = classification_metrics(scores.scores, scores.labels, scores.num_classes, ks)
    for k in ks:
        m[f"video_hit@{k}"] = v[f"hit@{k}"]
    m.update(aggregate=scores.aggregate, mean_class_accuracy=v["mean_class_accuracy"],
             per_class_accuracy=v["per_class_accuracy"], confusion=v["confusion"])
    if scores.meta.get("fusion"):  # late fusion works on video scores: there are no clip scores
        for k in ks:
            m.pop(f"clip_hit@{k}", None)
        m.pop("num_views", None)
    return m


def write_evaluation(out_dir: str | Path, scores: ScoreSet, *, title: str = "Evaluation",
                     name: str | None = None, history_csv: str | Path | None = None,
                     notes: Sequence[str] = (), skipped: Sequence[str] = (),
                     coverage: dict | None = None) -> dict:
    """Save ``scores.npz``, ``metrics.json`` and ``report.md`` (+ figures) into ``out_dir``.

    ``coverage`` (``{"videos_total", "videos_evaluated", "unreadable": [{"path", "error"}]}``):
    the counts join the metrics, the unreadable videos are listed in metrics.json.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = score_metrics(scores)
    if coverage is not None:
        metrics.update(videos_total=int(coverage["videos_total"]),
                       videos_evaluated=int(coverage["videos_evaluated"]))
    save_scores(out_dir / "scores.npz", scores)
    payload = {"metrics": json_ready(metrics), "class_names": scores.class_names, "meta": scores.meta,
               "confusion": np.asarray(metrics["confusion"]).tolist()}
    if coverage is not None:
        payload["unreadable"] = list(coverage.get("unreadable", []))
    atomic_write_text(out_dir / "metrics.json", json.dumps(payload, indent=2, default=str) + "\n")
    label = name or scores.meta.get("model", "model")
    write_report(out_dir, {label: metrics}, title=title, class_names=scores.class_names,
                 confusion=metrics["confusion"], history_csv=history_csv, notes=notes, skipped=skipped)
    return metrics


def mean_over_splits(per_split: dict[str, dict]) -> dict:
    """Mean of every scalar metric present in all splits."""
    keys = set.intersection(*(set(scalar_metrics(m)) for m in per_split.values())) if per_split else set()
    out = {}
    for k in sorted(keys):
        vals = [scalar_metrics(m)[k] for m in per_split.values()]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            out[k] = float(np.mean(vals))
    return out


def eval_options(eval_cfg, **changes):
    """A copy of the config's ``eval`` section with the non-``None`` ``changes`` applied."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if "aggregation" in changes and changes["aggregation"] == "softmax":
        changes["aggregation"] = "softmax_mean"
    return dataclasses.replace(eval_cfg, **changes)


# --- from a checkpoint ----------------------------------------------------------------------

@dataclass
class EvalResult:
    name: str
    metrics: dict  # score_metrics + videos_total, videos_evaluated
    out_dir: Path
    scores: ScoreSet
    bad_items: list[str]  # "path: error" of the unreadable videos (left out of the scores)
    unreadable: list[dict] = dataclasses.field(default_factory=list)  # the same as {"path", "error"}


def _video_id(path: str, root: str | None) -> str:
    """``path`` relative to ``root`` when it lies under it, else as given."""
    resolved, base = Path(path).resolve(), Path(root).resolve() if root else None
    if base is not None and resolved.is_relative_to(base):
        return resolved.relative_to(base).as_posix()
    return str(path)


def build_test_dataset(cfg, subset: str, spec, class_names: list[str]):
    """Test-mode ClipDataset of ``data.<subset>`` with the ``eval`` views (or whole frames)."""
    return build_dataset(cfg, subset, spec, "test", class_names=class_names)


def _resolve_device(name: str | None, cfg) -> torch.device:
    from deepvideo.engine.distributed import select_device

    return select_device(name or cfg.device)


def _eval_config(cfg, folder: Path, subset: str, split, num_workers, **eval_changes) -> dict:
    """Apply the test options to ``cfg`` (in place); return the ``data.<subset>`` section used."""
    cfg.eval = eval_options(cfg.eval, **eval_changes)
    if num_workers is not None:
        cfg.data.num_workers = num_workers
    section = getattr(cfg.data, subset) if subset != "test" else (cfg.data.test or cfg.data.val)
    if not section:
        raise ValueError(f"{folder}: the run has no data.{subset} section to evaluate on")
    section = dict(section)
    if split is not None:
        section["split"] = int(split) if str(split).isdigit() else split
    setattr(cfg.data, subset, section)
    if subset == "val":
        cfg.data.test = section
    return section


def _score_dataset(model, cfg, meta: dict, dataset, dev, subset: str, progress) -> CollectedScores:
    from deepvideo.engine.build import make_loader
    from deepvideo.progress import track

    loader = make_loader(cfg, dataset, cfg.eval.batch_size, False, dev)
    batches = track(loader, f"test {subset}", unit="batches",
                    disable=None if progress is None else not progress)
    try:
        return collect_scores(model, batches, dev, spec=model.input_spec,
                              amp_dtype=autocast_dtype(cfg.train.amp, dev, training=False))
    except RuntimeError as err:
        if not cfg.eval.fully_convolutional:
            raise
        model_name = meta.get("model_name", cfg.model.name)
        raise ValueError(f"{model_name} cannot score whole frames (it is not fully convolutional: "
                         f"{str(err).splitlines()[0]}); test with crops instead") from err


def _coverage(collected: CollectedScores, total: int, folder: Path) -> dict:
    """How many videos were scored out of how many; warns when some were unreadable."""
    evaluated = collected.num_videos
    if evaluated < total:
        listing = "; ".join(collected.bad_items[:5]) + (" ..." if len(collected.bad_items) > 5 else "")
        log.warning("%s: evaluated %d of %d videos; unreadable: %s", folder, evaluated, total, listing)
    return {"videos_total": total, "videos_evaluated": evaluated, "unreadable": collected.unreadable}


def evaluate_checkpoint(path: str | Path, *, num_clips: int | None = None, test_crops: int | None = None,
                        flip: bool | None = None, fully_convolutional: bool | None = None,
                        aggregation: str | None = None, split: str | int | None = None, subset: str = "test",
                        out_dir: str | Path | None = None, batch_size: int | None = None,
                        device: str | None = None, num_workers: int | None = None,
                        progress: bool | None = None, name: str | None = None,
                        allow_imports: bool = False) -> EvalResult:
    """Test a trained model (run folder or checkpoint) and write scores, metrics and a report.

    Options left ``None`` come from the run's ``eval`` section. ``split`` replaces the
    ``split`` argument of ``data.<subset>``; ``subset="train"`` scores the training videos
    with the test views (the input of SVM fusion). Output: ``out_dir`` (default
    ``<run>/test`` or ``<run>/test-<subset>``). Unreadable videos cannot be scored: the
    metrics say how many videos were evaluated out of how many (``videos_evaluated``,
    ``videos_total``), metrics.json and the report list the unreadable ones. Scores holding
    NaN or infinite values are a :class:`NonFiniteScoresError`. The checkpoint's
    ``model.imports`` are imported only with ``allow_imports`` (see
    :func:`~deepvideo.engine.build.load_checkpoint`).
    """
    folder = resolve_checkpoint(path)
    model, cfg, class_names, meta = load_checkpoint(folder, device="cpu", allow_imports=allow_imports)
    section = _eval_config(cfg, folder, subset, split, num_workers, num_clips=num_clips,
                           test_crops=test_crops, flip=flip, fully_convolutional=fully_convolutional,
                           aggregation=aggregation, batch_size=batch_size)
    dev = _resolve_device(device, cfg)
    model.to(dev)
    dataset = build_test_dataset(cfg, subset, model.input_spec, class_names)
    collected = _score_dataset(model, cfg, meta, dataset, dev, subset, progress)
    coverage = _coverage(collected, len(dataset), folder)
    run_dir = folder.parent.parent if folder.parent.name == "checkpoints" else folder
    root = cfg.data.video_root or section.get("root")
    ids = [_video_id(r.path, root) for r in dataset.records]
    check_finite_scores(collected.view_logits, folder, [ids[i] for i in collected.indices])
    label = name or meta.get("model_name", cfg.model.name)
    info = {"model": label, "checkpoint": str(folder), "epoch": meta.get("epoch"), "subset": subset,
            "split": section.get("split"), "num_clips": cfg.eval.num_clips, "test_crops": cfg.eval.test_crops,
            "flip": cfg.eval.flip, "fully_convolutional": cfg.eval.fully_convolutional}
    agg = "softmax" if cfg.eval.aggregation == "softmax_mean" else cfg.eval.aggregation
    scores = make_score_set(collected, ids, class_names, agg, info)
    default_out = run_dir / ("test" if subset == "test" else f"test-{subset}")
    out = Path(out_dir) if out_dir is not None else default_out
    views = "whole frame" if cfg.eval.fully_convolutional else f"{cfg.eval.test_crops} crop(s)"
    notes = [f"Checkpoint `{folder}` (epoch {meta.get('epoch')}), data.{subset} "
             f"split {section.get('split', '-')}: {collected.num_videos} of {len(ids)} videos evaluated"
             + (" (the unreadable ones are listed below)." if collected.num_videos < len(ids) else "."),
             f"Views per video: {cfg.eval.num_clips} clip(s) x {views}{' + flips' if cfg.eval.flip else ''}; "
             f"aggregation: {agg} of the view scores."]
    history = run_dir / "metrics.csv"
    metrics = write_evaluation(out, scores, title=f"Test report: {label}", name=label,
                               history_csv=history if history.is_file() else None, notes=notes,
                               skipped=collected.bad_items, coverage=coverage)
    return EvalResult(label, metrics, out, scores, collected.bad_items, collected.unreadable)


# --- prediction -------------------------------------------------------------------------------

@dataclass
class Predictor:
    model: nn.Module
    cfg: object
    class_names: list[str]
    device: torch.device
    checkpoint: str = ""  # the checkpoint folder, for error messages


def load_for_inference(path: str | Path, *, num_clips: int | None = None, test_crops: int | None = None,
                       device: str | None = None, allow_imports: bool = False) -> Predictor:
    """A model and its test settings from a run or checkpoint folder, ready for :func:`predict_videos`.

    The checkpoint's ``model.imports`` are imported only with ``allow_imports`` (see
    :func:`~deepvideo.engine.build.load_checkpoint`).
    """
    folder = resolve_checkpoint(path)
    model, cfg, class_names, _ = load_checkpoint(folder, device="cpu", allow_imports=allow_imports)
    cfg.eval = eval_options(cfg.eval, num_clips=num_clips, test_crops=test_crops)
    dev = _resolve_device(device, cfg)
    return Predictor(model.to(dev).eval(), cfg, class_names, dev, str(folder))


def predict_videos(predictor: Predictor, videos: Sequence[str], top_k: int = 5) -> list[dict]:
    """Top-k classes (softmax of the aggregated view scores) per video.

    A video that cannot be read gives ``{"video", "error"}`` naming the problem; the other
    videos are still predicted. Scores holding NaN or infinite values (damaged or diverged
    weights) are a :class:`NonFiniteScoresError`, as in testing. Flow models compute flow on
    the fly from the video. Scores come from :func:`deepvideo.engine.scoring.forward_views`,
    as in testing.
    """
    from deepvideo.data.dataset import BAD_VIDEO_ERRORS, ClipDataset
    from deepvideo.data.record import DatasetIndex, VideoRecord

    cfg = predictor.cfg
    spec = predictor.model.input_spec
    agg = "softmax" if cfg.eval.aggregation == "softmax_mean" else cfg.eval.aggregation
    kw = {**dataset_kwargs(cfg, "test", "test", spec), "flow_root": None, "video_root": None,
          "max_retries": 0}
    amp = autocast_dtype(cfg.train.amp, predictor.device, training=False)
    results = []
    for video in videos:
        if not Path(video).exists():
            results.append({"video": video, "error": "no such file or folder"})
            continue
        index = DatasetIndex([VideoRecord(path=video, label=0)], list(predictor.class_names))
        try:
            ds = ClipDataset(index, spec, **kw)
            item = ds.load(0, ds.rng(0, 0))
            batch = {k: v.unsqueeze(0) for k, v in item.items() if k in MODALITY_KEYS}
            views = forward_views(predictor.model, batch, predictor.device, spec=spec, amp_dtype=amp).numpy()
        except BAD_VIDEO_ERRORS as err:  # unreadable input; anything else is a bug and propagates
            results.append({"video": video, "error": f"{type(err).__name__}: {err}"})
            continue
        check_finite_scores(views, predictor.checkpoint or "the model", [video])  # views: [1, V, K]
        probs = softmax_np(aggregate_views(views, agg))[0]
        order = np.argsort(-probs, kind="stable")[: min(top_k, len(probs))]
        results.append({"video": video, "top": [{"class": predictor.class_names[i], "index": int(i),
                                                 "probability": float(probs[i])} for i in order]})
    return results
