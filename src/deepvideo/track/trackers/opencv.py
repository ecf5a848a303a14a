"""OpenCV's single-object trackers behind the deepvideo tracker interface.

``opencv_csrt`` (CSR-DCF, Lukežič et al. CVPR 2017), ``opencv_kcf`` (Henriques et al. TPAMI
2015), ``opencv_mosse`` (Bolme et al. CVPR 2010, ``cv2.legacy``), ``opencv_mil`` (Babenko et al.,
"Visual Tracking with Online Multiple Instance Learning", CVPR 2009), and the two learned
trackers that need ONNX models: ``opencv_nano`` (NanoTrack: a backbone and a neck-head model)
and ``opencv_vit`` (OpenCV's ViT tracker: one model). The models are not shipped: pass their
paths (``OpenCVTracker("nano", backbone=..., neckhead=...)``, ``OpenCVTracker("vit",
net=...)``) or set ``DEEPVIDEO_NANO_BACKBONE`` and ``DEEPVIDEO_NANO_NECKHEAD`` /
``DEEPVIDEO_VIT_MODEL``; the registry lists them as available only when those files exist.

Frames are converted from RGB to BGR for OpenCV, and the initial box is rounded to whole
pixels (OpenCV's trackers take an integer rectangle). OpenCV's MIL is not repeatable: two
runs on the same frames can differ (``cv2.setRNGSeed`` does not fix it). The score is OpenCV's
``getTrackingScore()`` where it gives one (a non-negative value), else NaN; when OpenCV reports
a failure the previous box is kept and the score is 0 (or OpenCV's own, lower, score).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from deepvideo.track.base import Box, TrackResult, as_box, check_frame
from deepvideo.track.registry import register_tracker

MODEL_ENV = {"nano": {"backbone": "DEEPVIDEO_NANO_BACKBONE",
                      "neckhead": "DEEPVIDEO_NANO_NECKHEAD"},
             "vit": {"net": "DEEPVIDEO_VIT_MODEL"}}


def model_paths(kind: str, given: dict) -> dict[str, str]:
    """The ONNX model files of a learned OpenCV tracker, from ``given`` or the environment;
    a FileNotFoundError naming what is missing and how to provide it."""
    paths = {}
    for key, env in MODEL_ENV[kind].items():
        value = given.get(key) or os.environ.get(env)
        if not value:
            raise FileNotFoundError(f"opencv_{kind}: no {key} model given; pass {key}=PATH "
                                    f"or set {env} to the ONNX file")
        if not Path(value).is_file():
            raise FileNotFoundError(f"{value}: opencv_{kind} {key} model not found")
        paths[key] = str(value)
    return paths


def models_available(kind: str) -> bool:
    return all(Path(os.environ.get(env, "")).is_file() for env in MODEL_ENV[kind].values())


def create_opencv_tracker(kind: str, **models):
    """A fresh OpenCV tracker object of ``kind`` (csrt, kcf, mosse, mil, nano, vit)."""
    if kind == "csrt":
        return cv2.TrackerCSRT_create()
    if kind == "kcf":
        return cv2.TrackerKCF_create()
    if kind == "mosse":
        return cv2.legacy.TrackerMOSSE_create()
    if kind == "mil":
        return cv2.TrackerMIL_create()
    if kind == "nano":
        paths = model_paths(kind, models)
        params = cv2.TrackerNano_Params()
        params.backbone, params.neckhead = paths["backbone"], paths["neckhead"]
        return cv2.TrackerNano_create(params)
    if kind == "vit":
        params = cv2.TrackerVit_Params()
        params.net = model_paths(kind, models)["net"]
        return cv2.TrackerVit_create(params)
    raise ValueError(f"unknown OpenCV tracker kind {kind!r}; known: csrt, kcf, mosse, mil, "
                     "nano, vit")


def integer_rect(box: Box) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return int(round(x)), int(round(y)), max(1, int(round(w))), max(1, int(round(h)))


class OpenCVTracker:
    """An OpenCV tracker of ``kind``; model paths (nano: backbone, neckhead; vit: net) as
    keyword arguments."""

    def __init__(self, kind: str, **models):
        self.kind, self.models = kind, models
        if kind in MODEL_ENV:
            model_paths(kind, models)          # fail now, not at the first frame
        elif models:
            raise ValueError(f"opencv_{kind}: takes no model files, got {sorted(models)}")

    def score(self) -> float:
        getter = getattr(self.tracker, "getTrackingScore", None)
        value = float(getter()) if getter is not None else float("nan")
        return value if value >= 0 else float("nan")

    def initialize(self, frame: np.ndarray, box: Box) -> None:
        frame = check_frame(frame)
        self.box = as_box(box, "initial box")
        self.tracker = create_opencv_tracker(self.kind, **self.models)
        self.tracker.init(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), integer_rect(self.box))

    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        ok, rect = self.tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        score = self.score()
        if ok and rect[2] > 0 and rect[3] > 0:
            self.box = tuple(float(v) for v in rect)
        else:
            ok = False
            score = min(score, 0.0) if score == score else 0.0
        return TrackResult(self.box, score, {"success": bool(ok)})


def register_opencv(kind: str, paper: str) -> None:
    def factory(**models) -> OpenCVTracker:
        return OpenCVTracker(kind, **models)
    factory.__doc__ = f"OpenCV's {kind.upper()} tracker (cv2), RGB frames converted to BGR."
    available = (lambda: models_available(kind)) if kind in MODEL_ENV else None
    register_tracker(f"opencv_{kind}", paper=paper, available=available)(factory)


for _kind, _paper in (("csrt", "Lukežič et al., CVPR 2017 (OpenCV)"),
                      ("kcf", "Henriques et al., TPAMI 2015 (OpenCV)"),
                      ("mosse", "Bolme et al., CVPR 2010 (OpenCV legacy)"),
                      ("mil", "Babenko et al., CVPR 2009 (OpenCV)"),
                      ("nano", "NanoTrack (OpenCV, ONNX models)"),
                      ("vit", "OpenCV ViT tracker (ONNX model)")):
    register_opencv(_kind, _paper)
