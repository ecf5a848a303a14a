"""Video object detection: R-FCN (D) and Detect & Track (D&T; Feichtenhofer et al., ICCV 2017).

A batch holds two frames ``t`` and ``t + τ`` of a video (:class:`deepvideo.detect.pairs.FramePairs`
padded to ``data.train.pad_to`` boxes so that the loop's collation stacks them). The step's loss
is the sum of the RPN and R-FCN losses of both frames (averaged over the two) and, for a D&T
model, the tracking loss (:func:`deepvideo.detect.dt.dt_losses`). Validation detects every val
video (with a D&T model: tracked, linked into tubes and rescored) and reports ``val_map`` (frame
mAP at IoU 0.5), ``val_map_<class>`` and ``val_map_slow/medium/fast``.

Models (``model.name``): ``dt_cpu`` / ``dt_resnet101`` (:class:`~deepvideo.detect.dt.DetectTrack`
on :func:`~deepvideo.detect.rfcn.rfcn_cpu` / :func:`~deepvideo.detect.rfcn.rfcn_resnet101`) or
``rfcn_cpu`` / ``rfcn_resnet101`` (the detector alone); ``model.kwargs`` go to the R-FCN builder,
except ``max_displacement`` (the correlation's d) for D&T. Data: ``data.train`` / ``data.val``
``{root: <VID root>, split: train, stride: 1, pad_to: 16, classes: [...]}`` (classes default:
those of the training videos, sorted). ``data.val.link`` (default true) links D&T detections.
``data.train.det: {root: <ILSVRC root>, lists: [ImageSets/DET/train_1.txt, ...], split: train}``
mixes ImageNet DET images in (:func:`deepvideo.detect.vid.read_det_list`, positives only) as
pairs of one image twice (zero motion), as D&T alternates DET images sent twice with VID pairs;
their objects of classes outside the training classes are removed (DET has 200 classes) and an
image left without objects is not used; the counts are logged.
:func:`load_detector` rebuilds a trained model from its run or checkpoint folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepvideo.detect.dt import DetectTrack, dt_losses
from deepvideo.detect.evaluate import evaluate_videos
from deepvideo.detect.inference import detect_video
from deepvideo.detect.pairs import FramePairs, read_rgb, unpad
from deepvideo.detect.rfcn import RFCN, rfcn_cpu, rfcn_resnet101
from deepvideo.detect.vid import VidFrame, read_det_list, read_split
from deepvideo.engine.config import ConfigError
from deepvideo.engine.task import StepOutput, Task, register_task

BUILDERS = {"rfcn_cpu": rfcn_cpu, "rfcn_resnet101": rfcn_resnet101}
MODELS = ("dt_cpu", "dt_resnet101", "rfcn_cpu", "rfcn_resnet101")
log = logging.getLogger("deepvideo.engine")


def build_detector(name: str, num_classes: int, kwargs: dict) -> nn.Module:
    """The model ``name`` (one of :data:`MODELS`) for ``num_classes`` object classes."""
    if name not in MODELS:
        raise ConfigError(f"task 'detect_track' builds model.name in {', '.join(MODELS)}, got {name!r}")
    kwargs = dict(kwargs)
    displacement = kwargs.pop("max_displacement", None)
    detector = BUILDERS["rfcn_" + name.split("_", 1)[1]](num_classes, **kwargs)
    if not name.startswith("dt_"):
        if displacement is not None:
            raise ConfigError(f"model.kwargs.max_displacement is for a D&T model, not {name!r}")
        return detector
    return DetectTrack(detector) if displacement is None else DetectTrack(detector, displacement)


def load_detector(path: str | Path) -> tuple[nn.Module, list[str], dict]:
    """``(model in eval mode, class names, checkpoint meta)`` of a run or checkpoint folder."""
    from deepvideo.engine.checkpoint import load_weights, read_meta, resolve_checkpoint
    from deepvideo.engine.config import config_from_dict

    folder = resolve_checkpoint(path)
    meta = read_meta(folder)
    cfg = config_from_dict(meta["config"])
    if cfg.task != "detect_track":
        raise ConfigError(f"{folder}: a checkpoint of task {cfg.task!r}, not a detector (detect_track)")
    classes = [str(c) for c in meta["class_names"]]
    model = build_detector(cfg.model.name, len(classes), dict(cfg.model.kwargs))
    load_weights(model, folder, strict=True)
    return model.eval(), classes, meta


@register_task("detect_track")
class DetectTrackTask(Task):
    """Frame pairs -> R-FCN (+ D&T tracking) losses; validation: frame mAP of whole videos."""

    def setup(self, train_dataset=None, class_names=None) -> None:
        section = dict(self.cfg.data.train or {})
        self.train_videos = self._videos(section, "data.train") if train_dataset is None else []
        names = class_names or section.get("classes") or getattr(train_dataset, "classes", None)
        if not names:
            names = sorted({c for v in self.train_videos for c in v.classes()})
        self.class_names = [str(c) for c in names]
        val = dict(self.cfg.data.val or {})
        self.val_videos = self._videos(val, "data.val") if val else []
        self.link = bool(val.get("link", True))

    def _videos(self, section: dict, where: str):
        if "root" not in section:
            raise ConfigError(f"{where}: needs 'root' (an ImageNet VID layout folder) and 'split'")
        try:
            default = "train" if where == "data.train" else "val"
            return read_split(section["root"], section.get("split", default))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def build_model(self) -> nn.Module:
        """The model, then ``model.pretrained`` and ``model.init_from`` loaded (e.g. D&T from a
        trained detector D: ``{checkpoint: <D run>/checkpoints/last, target: detector.}``)."""
        model = build_detector(self.cfg.model.name, len(self.class_names), dict(self.cfg.model.kwargs))
        return self.with_initial_weights(model)

    def datasets(self, spec, train_dataset=None, val_dataset=None):
        if train_dataset is None:
            section = dict(self.cfg.data.train)
            stride = section.get("stride", 1)
            train_dataset = FramePairs(self.train_videos, self.class_names,
                                       stride if isinstance(stride, int) else tuple(stride),
                                       det=self._det_frames(dict(section.get("det") or {})),
                                       seed=self.cfg.seed, pad_to=int(section.get("pad_to", 16)))
        if val_dataset is None and self.val_videos:  # the loop validates when a val set exists;
            # :meth:`evaluate` reads the whole videos itself (linking needs every frame in order)
            val_dataset = FramePairs(self.val_videos, self.class_names, 1, pad_to=64)
        return train_dataset, ({"": val_dataset} if val_dataset is not None else {})

    def _det_frames(self, det: dict) -> list[VidFrame]:
        """The DET images of ``data.train.det`` with the objects of the training classes only."""
        if not det:
            return []
        if "root" not in det or not det.get("lists"):
            raise ConfigError("data.train.det: needs 'root' (an ILSVRC folder with Annotations/DET, "
                              "Data/DET, ImageSets/DET) and 'lists' (e.g. [ImageSets/DET/train_1.txt])")
        try:
            frames = [f for listing in det["lists"]
                      for f in read_det_list(det["root"], listing, det.get("split", "train"))]
        except (OSError, ValueError) as exc:
            raise ConfigError(f"data.train.det: {exc}") from None
        known = set(self.class_names)
        kept = [VidFrame(f.image, f.size, [o for o in f.objects if o.name in known]) for f in frames]
        kept = [f for f in kept if f.objects]
        removed = sum(len(f.objects) for f in frames) - sum(len(f.objects) for f in kept)
        log.info("data.train.det: %d of %d DET images used (%d objects of other classes removed)",
                 len(kept), len(frames), removed)
        return kept

    def check_model(self, model: nn.Module) -> None:
        if not isinstance(model, (RFCN, DetectTrack)):
            raise ConfigError(f"task 'detect_track' trains an RFCN or DetectTrack, "
                              f"got {type(model).__name__}")

    def step(self, model, batch, device, autocast) -> StepOutput:
        batch = unpad(batch)
        moved = {k: (v.to(device) if torch.is_tensor(v) else [x.to(device) for x in v])
                 for k, v in batch.items() if k != "bad_items"}
        with autocast():
            losses = dt_losses(model, moved, ohem=int(dict(self.cfg.data.train).get("ohem", 128)))
        losses["loss"] = sum(losses.values())
        return StepOutput(losses, int(batch["rgb_a"].shape[0]))

    @torch.no_grad()
    def evaluate(self, model, loaders, device, amp_dtype, spec) -> dict:
        if not self.val_videos:
            return {}
        return {f"val_{k}": v for k, v in score_videos(model, self.val_videos, self.class_names,
                                                        self.link).items()}

    @classmethod
    def test_run(cls, path, *, subset: str = "test", out_dir=None, batch_size: int | None = None,
                 device: str | None = None) -> dict:
        """Frame mAP of a trained run on ``data.<subset>`` (``test`` falls back to ``val``), per
        class and by motion speed; writes ``metrics.json`` to ``out_dir`` (default
        ``<run>/test``). Detection runs on the CPU."""
        from deepvideo.engine.checkpoint import resolve_checkpoint
        from deepvideo.engine.config import config_from_dict
        from deepvideo.io.atomic import atomic_write_json

        if device not in (None, "cpu"):
            raise ConfigError(f"detect_track runs are tested on the CPU, got --device {device}")
        model, classes, meta = load_detector(path)
        cfg = config_from_dict(meta["config"])
        section = dict(getattr(cfg.data, subset, None) or cfg.data.val or {})
        if not section:
            raise ConfigError(f"{path}: the run has no data.{subset} (nor data.val) to test on")
        task = cls(cfg)
        videos = task._videos(section, f"data.{subset}")
        with torch.no_grad():
            metrics = score_videos(model, videos, classes, bool(section.get("link", True)))
        folder = resolve_checkpoint(path)
        run_dir = folder.parent.parent if folder.parent.name == "checkpoints" else folder
        out = Path(out_dir) if out_dir is not None else run_dir / "test"
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "metrics.json", {k: (None if v != v else v) for k, v in metrics.items()})
        return {**metrics, "out_dir": str(out)}


def score_videos(model, videos, class_names, link: bool) -> dict:
    """``{"map", "map_<class>", "map_slow|medium|fast"}`` of ``model`` on whole ``videos`` (D&T
    models tracked, linked and rescored when ``link``); NaN where a class has no ground truth."""
    link = link and isinstance(model, DetectTrack)
    results = [detect_video(model, (read_rgb(f.image) for f in v.frames), link=link) for v in videos]
    scores = evaluate_videos(results, videos, class_names)
    row = {"map": scores["mean"]}
    row.update({f"map_{c}": ap for c, ap in scores["per_class"].items()})
    row.update({f"map_{s}": v["mean"] for s, v in scores["by_speed"].items()})
    return {k: (float(v) if np.isfinite(v) else float("nan")) for k, v in row.items()}
