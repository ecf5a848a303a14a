"""Spatio-temporal action detection (AVA format): keyframe clips + person boxes -> per-action
sigmoid scores, trained with binary cross-entropy and measured by frame-mAP at IoU 0.5.

The model is :class:`deepvideo.detect.actions.model.ActionDetector` over a registered backbone
(``model.name``, e.g. ``slowfast_r50``; ``model.kwargs`` are the backbone's builder overrides
except ``head``: ``roi`` (default, SlowFast's RoI head), ``crop`` (the backbone's clip
classifier on each person's crop; ``crop_size`` pixels) or ``frame`` (a single-frame 2D
ResNet with the RoI head; ``model.name: resnet18``/``resnet50``, ``width``) and ``dropout``).
``model.spec`` sets the clip (``num_frames``, ``frame_stride``, ``crop_size`` = frame side).

Data sections ``data.train`` / ``data.val`` (/ ``data.test``)::

    {root: <set folder>, videos: videos, annotations: annotations/ava_train_synth.csv,
     action_list: annotations/ava_action_list_synth.pbtxt, excluded: <csv, optional>,
     proposals: <csv/json/npz, optional: boxes at evaluation>, max_people: 8, start: 0}

Paths are relative to ``root``. The classes are the action list's (AVA: the 60 evaluated
ones); ground-truth rows of other actions are dropped. Validation reports ``val_frame_map``
and ``val_ap_<action id>``. :func:`evaluate_run` scores a trained run (``deepvideo detect-actions
test RUN``), writing detections (AVA CSV) and per-class APs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from deepvideo.engine.config import ConfigError
from deepvideo.engine.task import StepOutput, Task, register_task

HEADS = ("roi", "crop", "frame")


def section_paths(section: dict, where: str) -> dict:
    """The section's files made absolute under ``root``; a missing key or file is a ConfigError."""
    if "root" not in section or "annotations" not in section or "action_list" not in section:
        raise ConfigError(f"{where}: an action detection set needs 'root', 'annotations' and 'action_list', "
                          f"got keys {sorted(section)}")
    root = Path(section["root"])
    out = {}
    for key in ("annotations", "action_list", "excluded", "proposals"):
        if section.get(key):
            path = root / section[key]
            if not path.is_file():
                raise ConfigError(f"{where}.{key}: {path} does not exist")
            out[key] = path
    out["videos"] = root / section.get("videos", "videos")
    return out


def build_keyframes(section: dict, where: str, spec, train: bool, seed: int = 0):
    """The :class:`AvaKeyframes` a data section describes."""
    from deepvideo.detect.actions.ava import read_action_list, read_ava_csv, read_excluded, read_proposals
    from deepvideo.detect.actions.dataset import AvaKeyframes

    paths = section_paths(dict(section), where)
    actions = read_action_list(paths["action_list"])
    rows = [r for r in read_ava_csv(paths["annotations"]) if r.action in actions]
    excluded = read_excluded(paths["excluded"]) if "excluded" in paths else set()
    proposals = read_proposals(paths["proposals"]) if "proposals" in paths and not train else None
    stride = spec.frame_stride if isinstance(spec.frame_stride, int) else spec.frame_stride[0]
    dataset = AvaKeyframes(rows, paths["videos"], list(actions), num_frames=spec.num_frames, stride=stride,
                           size=spec.crop_size, mean=spec.mean, std=spec.std, excluded=excluded,
                           proposals=proposals, max_people=int(section.get("max_people", 8)), augment=train,
                           start=float(section.get("start", 0.0)), seed=seed)
    dataset.rows, dataset.excluded, dataset.actions = rows, excluded, actions
    return dataset


def build_detector(name: str, kwargs: dict, num_classes: int, spec_overrides: dict) -> nn.Module:
    """An action detector (``head``: roi | crop | frame) with ``input_spec`` set."""
    from deepvideo.detect.actions.model import ActionDetector, CropClassifier
    from deepvideo.models.registry import create_model, get_model_info

    kwargs = dict(kwargs)
    head = kwargs.pop("head", "roi")
    dropout = float(kwargs.pop("dropout", 0.5))
    if head not in HEADS:
        raise ConfigError(f"model.kwargs.head must be one of {', '.join(HEADS)}, got {head!r}")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in spec_overrides.items()}
    if head == "frame":
        from deepvideo.nn.backbones2d import resnet
        from deepvideo.spec import InputSpec

        if not name.startswith("resnet") or not name[6:].isdigit():
            raise ConfigError(f"head 'frame' takes model.name resnet18/34/50/101, got {name!r}")
        model = ActionDetector(resnet(int(name[6:]), **kwargs), num_classes, dropout)
        model.input_spec = InputSpec(("rgb",)).replace(**overrides)
        return model
    try:
        spec = get_model_info(name).spec.replace(**overrides)
    except KeyError as exc:
        raise ConfigError(f"model.name: {exc.args[0]}") from None
    if head == "crop":
        crop = int(kwargs.pop("crop_size", 32))
        model = CropClassifier(create_model(name, num_classes=num_classes, **kwargs), crop)
    else:
        model = ActionDetector(create_model(name, num_classes=num_classes, **kwargs), num_classes, dropout)
    model.input_spec = spec
    return model


@register_task("action_detection")
class ActionDetectionTask(Task):
    """Keyframe clips and person boxes -> per-action sigmoid logits -> BCE; frame-mAP."""

    def setup(self, train_dataset=None, class_names=None) -> None:
        from deepvideo.detect.actions.ava import read_action_list

        section = self.cfg.data.train or self.cfg.data.val
        if train_dataset is not None:
            self.actions = dict(train_dataset.actions)
        elif section:
            self.actions = read_action_list(section_paths(dict(section), "data.train")["action_list"])
        else:
            raise ConfigError("task 'action_detection' needs data.train (or a given train_dataset)")
        self.class_names = list(class_names or self.actions.values())

    def build_model(self) -> nn.Module:
        from omegaconf import OmegaConf

        kwargs = OmegaConf.to_container(OmegaConf.create(dict(self.cfg.model.kwargs or {})))
        spec = OmegaConf.to_container(OmegaConf.create(dict(self.cfg.model.spec or {})))
        return self.with_initial_weights(build_detector(self.cfg.model.name, kwargs, len(self.actions), spec))

    def datasets(self, spec, train_dataset=None, val_dataset=None):
        d = self.cfg.data
        if train_dataset is None:
            train_dataset = build_keyframes(d.train, "data.train", spec, True, self.cfg.seed)
        if val_dataset is None and d.val:
            val_dataset = build_keyframes(d.val, "data.val", spec, False)
        return train_dataset, ({"": val_dataset} if val_dataset is not None else {})

    def step(self, model, batch, device, autocast) -> StepOutput:
        from deepvideo.detect.actions.dataset import rois_of
        from deepvideo.detect.actions.model import detection_loss

        rois, where = rois_of(batch)
        targets = batch["labels"][where[:, 0], where[:, 1]].to(device)
        with autocast():
            logits = model({"rgb": batch["rgb"].to(device), "rois": rois.to(device)})
        return StepOutput({"loss": detection_loss(logits.float(), targets)}, int(len(rois)))

    @torch.no_grad()
    def evaluate(self, model, loaders, device, amp_dtype, spec) -> dict:
        from deepvideo.detect.actions.evaluate import frame_map

        row: dict = {}
        for name, loader in loaders.items():
            dets = detect_keyframes(model, loader, device)
            dataset = loader.dataset
            result = frame_map(dets, dataset.rows, list(dataset.actions), dataset.excluded)
            prefix = f"val_{name}_" if name else "val_"
            row[f"{prefix}frame_map"] = result["mean"]
            row.update({f"{prefix}ap_{c}": ap for c, ap in result["per_class"].items()})
        return row

    def checkpoint_meta(self) -> dict:
        return {"class_names": list(self.class_names), "action_ids": list(self.actions)}

    @classmethod
    def test_run(cls, path, *, subset: str = "test", out_dir=None, batch_size: int | None = None,
                 device: str | None = None) -> dict:
        """Frame-mAP (and AP per action) of a trained run: :func:`evaluate_run`."""
        result = evaluate_run(path, subset, out_dir, batch_size or 4, device or "cpu")
        flat = {"frame_map": result["frame_map"]}
        flat.update({f"ap {name}": ap for name, ap in result["per_class"].items()})
        return {**flat, "out_dir": result["out_dir"]}


@torch.no_grad()
def detect_keyframes(model, loader, device) -> list:
    """AVA detection rows (one per box and action, with its sigmoid score) over a loader."""
    from deepvideo.detect.actions.ava import AvaBox
    from deepvideo.detect.actions.dataset import rois_of

    model.eval()
    dataset = loader.dataset
    out = []
    for batch in loader:
        rois, where = rois_of(batch)
        if not len(rois):
            continue
        scores = torch.sigmoid(model({"rgb": batch["rgb"].to(device), "rois": rois.to(device)}).float()).cpu()
        for (item, _), roi, row in zip(where.tolist(), rois, scores, strict=True):
            video, ts = dataset.keys[int(batch["index"][item])]
            box = tuple(float(v) for v in (roi[1:] / dataset.size).clamp(0, 1))
            out += [AvaBox(video, ts, box, c, score=float(s))
                    for c, s in zip(dataset.classes, row, strict=True)]
    return out


def load_detector(path, device: str = "cpu"):
    """``(model, cfg, meta)`` of a trained action detector (run folder or checkpoint folder)."""
    from deepvideo.engine.checkpoint import load_weights, read_meta, resolve_checkpoint
    from deepvideo.engine.config import config_from_dict

    folder = resolve_checkpoint(path)
    meta = read_meta(folder)
    cfg = config_from_dict(meta["config"])
    if cfg.task != "action_detection":
        raise ConfigError(f"{folder}: a {cfg.task!r} run, not an action detector")
    names = [str(n) for n in meta["class_names"]]
    task = ActionDetectionTask(cfg)
    task.actions = dict(zip((int(i) for i in meta["action_ids"]), names, strict=True))
    model = task.build_model()
    load_weights(model, folder, strict=True)
    return model.to(device).eval(), cfg, meta


def evaluate_run(path, subset: str = "val", out_dir=None, batch_size: int = 4, device: str = "cpu") -> dict:
    """Frame-mAP of a trained run on ``data.<subset>`` (``test`` falls back to ``val``); writes
    ``detections.csv`` (AVA layout) and ``metrics.json`` to ``out_dir`` (default ``<run>/test``)."""
    from deepvideo.data.dataset import build_loader
    from deepvideo.detect.actions.ava import write_ava_csv
    from deepvideo.detect.actions.evaluate import frame_map
    from deepvideo.engine.checkpoint import resolve_checkpoint
    from deepvideo.io.atomic import atomic_write_json

    model, cfg, meta = load_detector(path, device)
    section = getattr(cfg.data, subset, None) or cfg.data.val
    if not section:
        raise ConfigError(f"{path}: the run has no data.{subset} (nor data.val) to test on")
    dataset = build_keyframes(section, f"data.{subset}", model.input_spec, False)
    loader = build_loader(dataset, batch_size, train=False, num_workers=0, device=device)
    dets = detect_keyframes(model, loader, torch.device(device))
    result = frame_map(dets, dataset.rows, list(dataset.actions), dataset.excluded)
    folder = resolve_checkpoint(path)
    run_dir = folder.parent.parent if folder.parent.name == "checkpoints" else folder
    out = Path(out_dir) if out_dir is not None else run_dir / "test"
    out.mkdir(parents=True, exist_ok=True)
    write_ava_csv(out / "detections.csv", dets)
    metrics = {"frame_map": result["mean"], "iou": 0.5, "keyframes": len(dataset),
               "per_class": {f"{c} {dataset.actions[c]}": None if ap != ap else ap
                             for c, ap in result["per_class"].items()}}
    atomic_write_json(out / "metrics.json", metrics)
    return {**metrics, "out_dir": str(out)}
