"""Evaluation: multi-view and fully convolutional testing, saved scores, the 3-split protocol.

Test protocols reproduced (see PAPERS.md sections 2-4):

* Multi-view testing (Simonyan & Zisserman 2014): ``num_clips`` temporal positions spread
  evenly over the video (25 in the paper), each with 1, 3 or 10 spatial crops (10 = four
  corners + centre and their flips), optionally plus flips; the view scores of a video
  are aggregated.
* Fully convolutional testing (Feichtenhofer et al. 2016, ST-ResNet): the network runs on
  the whole frame (no crop); a model returning spatial or temporal score maps has them
  averaged, and scores are averaged *before* the softmax over all positions.
* Aggregation: ``mean`` of raw scores (default), ``softmax`` averaging or ``max``.
* 3-split protocol (UCF101, HMDB51): train and test on each of the three splits and report
  each split and their mean (:func:`three_split_protocol`).

Every evaluation writes, into its output folder, ``scores.npz`` (a
:class:`~deepvideo.engine.fusion.ScoreSet`: per-view logits, aggregated scores, labels,
video ids, class names), ``metrics.json``, ``confusion.csv/png`` and ``report.md``, so
fusion and analysis can be redone without the model.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepvideo.engine.fusion import ScoreSet, save_scores
from deepvideo.engine.metrics import aggregate_views, classification_metrics, scalar_metrics, video_metrics
from deepvideo.engine.metrics import softmax as softmax_np
from deepvideo.engine.report import write_report
from deepvideo.io.atomic import atomic_write_text

MODALITY_KEYS = ("rgb", "flow", "rgbdiff")
BASE_NDIM = 5  # [N, C, T, H, W]; one more leading dim = views


def reduce_logits(out) -> torch.Tensor:
    """``[N, K]`` scores from a model output: the ``logits`` of a dict, maps averaged.

    ``[N, K, T']`` (temporally dense), ``[N, K, H', W']`` and ``[N, K, T', H', W']`` score
    maps are averaged over their positions (pre-softmax, as in fully convolutional testing).
    """
    if isinstance(out, dict):
        if "logits" not in out:
            raise ValueError(f"model returned a dict without 'logits' (keys: {', '.join(out)})")
        out = out["logits"]
    if not isinstance(out, torch.Tensor) or out.ndim < 2:
        raise ValueError(f"model output must be a [N, K] tensor (or score maps), got {type(out).__name__}"
                         + (f" of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else ""))
    if out.ndim > 2:
        out = out.flatten(2).mean(dim=2)
    return out


def split_views(batch: dict) -> tuple[dict, int, int]:
    """Fold a leading view dim into the batch: ``[N, V, C, T, H, W] -> [N*V, C, T, H, W]``."""
    keys = [k for k in MODALITY_KEYS if k in batch]
    if not keys:
        raise ValueError(f"batch has none of the modalities {MODALITY_KEYS} (keys: {', '.join(batch)})")
    first = batch[keys[0]]
    n = first.shape[0]
    views = first.shape[1] if first.ndim == BASE_NDIM + 1 else 1
    flat = {}
    for k in keys:
        x = batch[k]
        if x.ndim == BASE_NDIM + 1:
            if x.shape[1] != views:
                raise ValueError(f"modalities disagree on the number of views: {k} has {x.shape[1]}")
            x = x.reshape(n * views, *x.shape[2:])
        elif views != 1:
            raise ValueError(f"{k} has no view dimension but other modalities have {views} views")
        flat[k] = x
    return flat, n, views


@torch.no_grad()
def forward_views(model: nn.Module, batch: dict, device: torch.device | str = "cpu",
                  chunk: int = 32) -> torch.Tensor:
    """Run ``model`` on every view of a batch; returns float32 ``[N, V, K]`` scores on CPU.

    Views go through the model in chunks of at most ``chunk`` clips to bound memory.
    """
    flat, n, views = split_views(batch)
    total = n * views
    outs = []
    for start in range(0, total, chunk):
        part = {k: v[start:start + chunk].to(device, non_blocking=True) for k, v in flat.items()}
        outs.append(reduce_logits(model(part)).float().cpu())
    scores = torch.cat(outs)
    return scores.view(n, views, -1)


@dataclass
class CollectedScores:
    view_logits: np.ndarray  # [N, V, K]
    labels: np.ndarray  # [N]
    indices: np.ndarray  # [N] dataset positions
    bad_items: list[str] = dataclasses.field(default_factory=list)  # "path: error" of skipped videos


def collect_scores(model: nn.Module, batches: Iterable[dict], device: torch.device | str = "cpu",
                   chunk: int = 32) -> CollectedScores:
    """Per-view scores, labels and dataset indices over all batches (model in eval mode).

    The dataset replaces an unreadable video by another one; such repeats are dropped (each
    video is scored once) and the unreadable videos listed in ``bad_items``.
    """
    was_training = model.training
    model.eval()
    logits, labels, indices, bad = [], [], [], []
    try:
        for batch in batches:
            logits.append(forward_views(model, batch, device, chunk).numpy())
            labels.append(torch.as_tensor(batch["label"]).reshape(-1).numpy())
            if "index" in batch:
                indices.append(torch.as_tensor(batch["index"]).reshape(-1).numpy())
            for item in batch.get("bad_items", ()) or ():
                if isinstance(item, dict):
                    text = f"{item.get('path', '?')}: {item.get('error', 'unreadable')}"
                else:
                    text = str(item)
                if text not in bad:
                    bad.append(text)
    finally:
        model.train(was_training)
    if not logits:
        raise ValueError("no test videos to evaluate (the dataset is empty or every video failed)")
    view_logits = np.concatenate(logits)
    lab = np.concatenate(labels).astype(np.int64)
    idx = np.concatenate(indices).astype(np.int64) if indices else np.arange(len(lab))
    _, first = np.unique(idx, return_index=True)
    keep = np.sort(first)
    return CollectedScores(view_logits[keep], lab[keep], idx[keep], bad)


def make_score_set(collected: CollectedScores, video_ids: Sequence[str], class_names: Sequence[str],
                   aggregation: str = "mean", meta: dict | None = None) -> ScoreSet:
    """Wrap collected scores as a :class:`ScoreSet` with views aggregated by ``aggregation``."""
    k = collected.view_logits.shape[2]
    if len(class_names) != k:
        raise ValueError(f"the model outputs {k} classes but {len(class_names)} class names are given")
    agg = aggregate_views(collected.view_logits, aggregation)
    return ScoreSet([str(video_ids[i]) for i in collected.indices], collected.labels, collected.view_logits,
                    agg, list(class_names), aggregation, dict(meta or {}))


def _json_ready(metrics: dict) -> dict:
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
                     notes: Sequence[str] = (), skipped: Sequence[str] = ()) -> dict:
    """Save ``scores.npz``, ``metrics.json`` and ``report.md`` (+ figures) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = score_metrics(scores)
    save_scores(out_dir / "scores.npz", scores)
    payload = {"metrics": _json_ready(metrics), "class_names": scores.class_names, "meta": scores.meta,
               "confusion": np.asarray(metrics["confusion"]).tolist()}
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
    metrics: dict
    out_dir: Path
    scores: ScoreSet
    bad_items: list[str]


def _video_id(path: str, root: str | None) -> str:
    """``path`` relative to ``root`` when it lies under it, else as given."""
    resolved, base = Path(path).resolve(), Path(root).resolve() if root else None
    if base is not None and resolved.is_relative_to(base):
        return resolved.relative_to(base).as_posix()
    return str(path)


def full_frame_transform(spec, short_side: int | None = None, flip: bool = False):
    """Fully convolutional test views: the whole frame resized like training, no crop.

    The short side becomes ``short_side`` (default ``crop_size * 256 / 224``, the scale the
    training crops were taken at); normalisation is that of the cropped test transforms;
    ``flip`` adds the mirrored frame (flow u negated) as a second view.
    """
    from deepvideo.data.transforms import Compose, FlipViews, Normalize, ResizeShortSide

    side = short_side or round(spec.crop_size * 256 / 224)
    steps = [ResizeShortSide(side)]
    if flip:
        steps.append(FlipViews(has_view_dim=False))
    steps.append(Normalize(spec.mean, spec.std))
    return Compose(steps, num_views=2 if flip else 1)


def build_test_dataset(cfg, subset: str, spec, class_names: list[str]):
    """Test-mode ClipDataset of ``data.<subset>`` with the ``eval`` views (or whole frames)."""
    from deepvideo.engine.trainer import build_dataset, load_index

    index = load_index(cfg, subset)
    if list(index.classes) != list(class_names):
        raise ValueError(f"data.{subset} has classes {list(index.classes)[:5]}... but the model was trained "
                         f"on {list(class_names)[:5]}...; use the same class list")
    if not cfg.eval.fully_convolutional:
        return build_dataset(cfg, "test", spec, train=False, class_names=class_names, index=index)
    from deepvideo.data.dataset import ClipDataset

    split_cfg = getattr(cfg.data, subset) or cfg.data.val or cfg.data.train
    return ClipDataset(index, spec, train=False, num_clips=cfg.eval.num_clips,
                       short_side=cfg.eval.short_side or cfg.data.short_side,
                       short_policy=cfg.data.short_policy, flow_root=cfg.data.flow_root,
                       video_root=cfg.data.video_root or split_cfg.get("root"),
                       flow_method=cfg.data.flow_method, seed=cfg.seed, max_retries=cfg.data.max_retries,
                       transform=full_frame_transform(spec, cfg.eval.short_side or cfg.data.short_side,
                                                      cfg.eval.flip))


def _resolve_device(name: str | None, cfg) -> torch.device:
    from deepvideo.engine.distributed import select_device

    return select_device(name or cfg.device)


def evaluate_checkpoint(path: str | Path, *, num_clips: int | None = None, test_crops: int | None = None,
                        flip: bool | None = None, fully_convolutional: bool | None = None,
                        aggregation: str | None = None, split: str | int | None = None, subset: str = "test",
                        out_dir: str | Path | None = None, batch_size: int | None = None,
                        device: str | None = None, num_workers: int | None = None,
                        progress: bool | None = None, name: str | None = None) -> EvalResult:
    """Test a trained model (run folder or checkpoint) and write scores, metrics and a report.

    Options left ``None`` come from the run's ``eval`` section. ``split`` replaces the
    ``split`` argument of ``data.<subset>``; ``subset="train"`` scores the training videos
    with the test views (the input of SVM fusion). Output: ``out_dir`` (default
    ``<run>/test`` or ``<run>/test-<subset>``).
    """
    from deepvideo.data.dataset import build_loader
    from deepvideo.engine.checkpoint import resolve_checkpoint
    from deepvideo.engine.trainer import load_checkpoint
    from deepvideo.progress import track

    folder = resolve_checkpoint(path)
    model, cfg, class_names, meta = load_checkpoint(folder, device="cpu")
    cfg.eval = eval_options(cfg.eval, num_clips=num_clips, test_crops=test_crops, flip=flip,
                            fully_convolutional=fully_convolutional, aggregation=aggregation,
                            batch_size=batch_size)
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
    dev = _resolve_device(device, cfg)
    model.to(dev)
    spec = model.input_spec
    dataset = build_test_dataset(cfg, subset, spec, class_names)
    loader = build_loader(dataset, cfg.eval.batch_size, train=False, num_workers=cfg.data.num_workers,
                          seed=cfg.seed, device=dev, persistent_workers=False)
    try:
        collected = collect_scores(model, track(loader, f"test {subset}", unit="batches",
                                                disable=None if progress is None else not progress), dev)
    except RuntimeError as err:
        if not cfg.eval.fully_convolutional:
            raise
        model_name = meta.get("model_name", cfg.model.name)
        raise ValueError(f"{model_name} cannot score whole frames (it is not fully convolutional: "
                         f"{str(err).splitlines()[0]}); test with crops instead") from err
    run_dir = folder.parent.parent if folder.parent.name == "checkpoints" else folder
    root = cfg.data.video_root or section.get("root")
    ids = [_video_id(r.path, root) for r in dataset.records]
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
             f"split {section.get('split', '-')}: {len(ids)} videos.",
             f"Views per video: {cfg.eval.num_clips} clip(s) x {views}{' + flips' if cfg.eval.flip else ''}; "
             f"aggregation: {agg} of the view scores."]
    history = run_dir / "metrics.csv"
    metrics = write_evaluation(out, scores, title=f"Test report: {label}", name=label,
                               history_csv=history if history.is_file() else None, notes=notes,
                               skipped=collected.bad_items)
    return EvalResult(label, metrics, out, scores, collected.bad_items)


# --- prediction -------------------------------------------------------------------------------

@dataclass
class Predictor:
    model: nn.Module
    cfg: object
    class_names: list[str]
    device: torch.device


def load_for_inference(path: str | Path, *, num_clips: int | None = None, test_crops: int | None = None,
                       device: str | None = None) -> Predictor:
    """A model and its test settings from a run or checkpoint folder, ready for :func:`predict_videos`."""
    from deepvideo.engine.trainer import load_checkpoint

    model, cfg, class_names, _ = load_checkpoint(path, device="cpu")
    cfg.eval = eval_options(cfg.eval, num_clips=num_clips, test_crops=test_crops)
    dev = _resolve_device(device, cfg)
    return Predictor(model.to(dev).eval(), cfg, class_names, dev)


def predict_videos(predictor: Predictor, videos: Sequence[str], top_k: int = 5) -> list[dict]:
    """Top-k classes (softmax of the aggregated view scores) per video.

    A video that cannot be read gives ``{"video", "error"}`` naming the problem; the other
    videos are still predicted. Flow models compute flow on the fly from the video.
    """
    from deepvideo.data.dataset import ClipDataset
    from deepvideo.data.record import DatasetIndex, VideoRecord

    cfg = predictor.cfg
    ev = cfg.eval
    spec = predictor.model.input_spec
    agg = "softmax" if ev.aggregation == "softmax_mean" else ev.aggregation
    results = []
    for video in videos:
        if not Path(video).exists():
            results.append({"video": video, "error": "no such file or folder"})
            continue
        index = DatasetIndex([VideoRecord(path=video, label=0)], list(predictor.class_names))
        try:
            kw = {"transform": full_frame_transform(spec, ev.short_side or cfg.data.short_side, ev.flip)} \
                if ev.fully_convolutional else {
                "test_crops": ev.test_crops, "flip": ev.flip, "recipe": cfg.data.recipe}
            ds = ClipDataset(index, spec, train=False, num_clips=ev.num_clips,
                             short_side=ev.short_side or cfg.data.short_side,
                             short_policy=cfg.data.short_policy, flow_method=cfg.data.flow_method,
                             seed=cfg.seed, max_retries=0, **kw)
            item = ds.load(0, ds.rng(0, 0))
            batch = {k: v.unsqueeze(0) for k, v in item.items() if k in MODALITY_KEYS}
            views = forward_views(predictor.model, batch, predictor.device).numpy()
        except (OSError, ValueError, RuntimeError, IndexError) as err:
            results.append({"video": video, "error": f"{type(err).__name__}: {err}"})
            continue
        probs = softmax_np(aggregate_views(views, agg))[0]
        order = np.argsort(-probs, kind="stable")[: min(top_k, len(probs))]
        results.append({"video": video, "top": [{"class": predictor.class_names[i], "index": int(i),
                                                 "probability": float(probs[i])} for i in order]})
    return results


# --- the 3-split protocol -----------------------------------------------------------------------

def three_split_protocol(config_path: str | Path, overrides: Sequence[str] = (),
                         splits: Sequence[int] = (1, 2, 3), out_dir: str | Path | None = None,
                         progress: bool | None = None) -> dict:
    """Train and test once per split (UCF101/HMDB51 protocol); report each split and the mean.

    For split ``s`` the recipe runs with ``name=<name>_split<s>`` and ``split=s`` set in every
    ``data.train/val/test`` section that has a ``split`` key (or a ucf101/hmdb51 format).
    Writes ``<out_dir>/report.md`` and ``summary.json`` (default ``runs/<name>_splits``).
    """
    from deepvideo.engine.config import load_config
    from deepvideo.engine.trainer import main_train

    base = load_config(config_path, list(overrides))
    per_split: dict[str, dict] = {}
    results = {}
    for s in splits:
        run_dir = Path(base.output_dir).parent / f"{base.name}_split{s}"
        extra = [f"name={base.name}_split{s}", f"output_dir={run_dir}"]
        for section in ("train", "val", "test"):
            sec = getattr(base.data, section)
            if sec and ("split" in sec or sec.get("format") in ("ucf101", "hmdb51")):
                extra.append(f"data.{section}.split={s}")
        run = main_train(config_path, [*overrides, *extra], progress=progress)
        ckpt = run.best_checkpoint or run.last_checkpoint
        res = evaluate_checkpoint(ckpt, progress=progress, name=f"split {s}")
        per_split[f"split {s}"] = res.metrics
        results[s] = {"run_dir": str(run.run_dir), "test_dir": str(res.out_dir)}
    mean = mean_over_splits(per_split)
    out = Path(out_dir) if out_dir is not None else Path(base.output_dir).parent / f"{base.name}_splits"
    rows = {**per_split, "mean": mean}
    write_report(out, rows, title=f"{base.name}: {len(splits)}-split protocol",
                 notes=[f"Recipe `{config_path}`; one training run and test per split; the last row is the "
                        "mean over splits."])
    summary = {"splits": {k: _json_ready(v) for k, v in per_split.items()}, "mean": mean, "runs": results}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return {"per_split": per_split, "mean": mean, "out_dir": out, "runs": results}
