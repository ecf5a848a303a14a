"""MDNet tracker (Nam & Han, CVPR 2016, Sec. 4) and RT-MDNet (Jung et al., ECCV 2018).

Parameter values are py-MDNet's ``tracking/options.yaml`` (the authors' PyTorch port; the
paper's own figures where they differ are noted) and the paper's:

- first frame: a new fc6; 500 positives (Gaussian, trans 0.1, scale 1.3, IoU ≥ 0.7) and 5000
  negatives (half uniform trans 1 scale 1.6, half whole-frame; IoU ≤ 0.5); fc4–fc6 trained for
  50 iterations at lr 0.0005 (fc6 ×10) with hard negative mining (32 positives and the 96 hardest
  of 1024 negatives per mini-batch); conv1–3 stay fixed;
- bounding-box regression: ridge regression on conv3 features of 1000 first-frame samples
  (uniform trans 0.3, scale 1.6, aspect 1.1; IoU ∈ [0.6, 1], area ratio ∈ [1, 2]);
- each frame: 256 candidates from the Gaussian around the last estimate (trans 0.6 → σ = 0.3 r,
  scale 1.05^{0.5 N(0,1)}); the estimate is the mean of the 5 best-scoring candidates and its
  score ``f+`` their mean score (raw fc6 logit); success when the score is > 0;
- on success the box shown is refined by the regressor (clipped to the frame; the next search
  centres on the unrefined estimate, as py-MDNet) and 50 positives (IoU ≥ 0.7) and 200
  negatives (uniform trans 2, scale 1.3, IoU ≤ 0.3) are stored (positives of the last 100
  frames, negatives of the last 20: the paper's τ_l = 100, τ_s = 20; py-MDNet keeps 30);
  on failure nothing is stored (no update from an unreliable estimate), the candidate spread
  grows ×1.1 up to 1.5 and a short-term update (15 iterations at lr 0.001 on the last 20
  frames' positives) runs; otherwise every 10th frame a long-term update (all stored samples).

``rtmdnet`` is the same with the RoIAlign network (:mod:`deepvideo.track.mdnet`): each frame
one feature map of the search area (scaled so the target is 75 pixels, as a 107 patch's box)
and RoIAlign of the candidates.

Weights: ``weights=`` a ``.safetensors`` file (or a training checkpoint folder holding
``model.safetensors``) or the environment variable ``DEEPVIDEO_MDNET_WEIGHTS``
(``DEEPVIDEO_RTMDNET_WEIGHTS``); widths are read from the weights, fc6 branches are ignored.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from deepvideo.models.convert.files import read_safetensors
from deepvideo.track.base import Box, TrackResult, as_box, check_frame
from deepvideo.track.boxes import clip_box
from deepvideo.track.mdnet import (
    CONTEXT_PADDING,
    INPUT_OFFSET,
    INPUT_SIZE,
    RT_RECEPTIVE_FIELD,
    MDNet,
    candidate_rois,
    from_state_dict,
)
from deepvideo.track.mdnet_online import BoxRegressor, SampleMemory, fine_tune, optimizer_for
from deepvideo.track.mdnet_samples import crop_regions, draw_samples, to_tensor_layout, warp
from deepvideo.track.registry import register_tracker, weights_available, weights_file

WEIGHTS_ENV = "DEEPVIDEO_MDNET_WEIGHTS"
RT_WEIGHTS_ENV = "DEEPVIDEO_RTMDNET_WEIGHTS"
PARAMS = {
    "n_samples": 256, "trans": 0.6, "scale": 1.05, "trans_limit": 1.5, "top_k": 5,
    "n_pos_init": 500, "n_neg_init": 5000, "pos_trans": 0.1, "pos_scale": 1.3,
    "neg_init_trans": 1.0, "neg_init_scale": 1.6, "neg_trans": 2.0, "neg_scale": 1.3,
    "n_pos_update": 50, "n_neg_update": 200, "pos_iou": (0.7, 1.0), "neg_iou_init": (0.0, 0.5),
    "neg_iou_update": (0.0, 0.3), "n_bbreg": 1000, "bbreg_iou": (0.6, 1.0), "bbreg_area": (1.0, 2.0),
    "bbreg_trans": 0.3, "bbreg_scale": 1.6, "bbreg_aspect": 1.1,
    "lr_init": 0.0005, "iters_init": 50, "lr_update": 0.001, "iters_update": 15,
    "long_interval": 10, "long_frames": 100, "short_frames": 20, "batch": 256,
}



def load_mdnet(path) -> MDNet:
    """The MDNet of a ``.safetensors`` file (eval mode); loud on foreign keys."""
    return from_state_dict(read_safetensors(path), source=str(path)).eval()


class Features:
    """conv3 features ``[N, 9·C3]`` of boxes in a frame: 107 patches (MDNet) or RoIAlign on one
    map of the area the boxes cover (RT-MDNet), batched by ``batch``."""

    def __init__(self, model: MDNet, device: torch.device, batch: int = 256, optimize: bool = False):
        self.model, self.device, self.batch = model, device, batch
        self.trunk = model.convs
        if optimize:
            from deepvideo.models.inference import optimize_for_inference

            self.trunk = optimize_for_inference(model.convs)

    @torch.no_grad()
    def conv3(self, images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(to_tensor_layout(images)).to(self.device).float() - INPUT_OFFSET
        return self.trunk(x).float()

    @torch.no_grad()
    def __call__(self, frame: np.ndarray, boxes: np.ndarray, target_size) -> torch.Tensor:
        if self.model.roi_align:
            return self.pooled(frame, boxes, target_size)
        parts = [self.conv3(crop_regions(frame, boxes[i:i + self.batch], INPUT_SIZE, CONTEXT_PADDING)
                            ).flatten(1) for i in range(0, len(boxes), self.batch)]
        return torch.cat(parts) if parts else torch.zeros(0)

    def pooled(self, frame: np.ndarray, boxes: np.ndarray, target_size) -> torch.Tensor:
        rois = candidate_rois(torch.from_numpy(boxes)).double().numpy()
        inner = INPUT_SIZE - 2 * CONTEXT_PADDING
        scale = (inner / target_size[0], inner / target_size[1])
        origin = rois[:, :2].min(axis=0)
        far = rois[:, 2:].max(axis=0)
        out = [max(RT_RECEPTIVE_FIELD, math.ceil((far[i] - origin[i]) * scale[i])) for i in (0, 1)]
        fmap = self.conv3(warp(frame, tuple(origin), scale, out)[None])
        scaled = (rois - np.tile(origin, 2)) * np.tile(scale, 2)
        indexed = np.concatenate([np.zeros((len(scaled), 1)), scaled], axis=1)
        return self.model.roi_features(fmap, torch.from_numpy(indexed).float().to(self.device))



class MDNetTracker:
    """MDNet: online fine-tuned multi-domain network (needs trained weights)."""

    roi_align = False
    env = WEIGHTS_ENV

    def __init__(self, weights=None, model: MDNet | None = None, device: str = "cpu", seed: int = 0,
                 optimize: bool = False, **params):
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise TypeError(f"unknown MDNet parameters {unknown}; known: {', '.join(PARAMS)}")
        if model is None:
            path = weights_file(weights, self.env)
            if path is None:
                raise ValueError(f"{type(self).__name__}: give weights= (a .safetensors file) "
                                 f"or set {self.env}")
            model = load_mdnet(path)
        if model.roi_align != self.roi_align:
            raise ValueError(f"{type(self).__name__} needs MDNet(roi_align={self.roi_align}) weights; "
                             f"these are {'RT-MDNet' if model.roi_align else 'MDNet'} weights")
        self.base, self.device = model.eval(), torch.device(device)
        self.p = {**PARAMS, **params}
        self.seed, self.optimize = seed, optimize

    def draw(self, kind, box, n, trans=1.0, scale=1.0, aspect=None, iou_range=None, area_range=None):
        return draw_samples(kind, self.rng, box, n, self.frame_size, trans, scale, aspect, iou_range,
                            area_range)

    def first_samples(self, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First-frame positives and negatives (half uniform, half whole-frame)."""
        p = self.p
        pos = self.draw("gaussian", box, p["n_pos_init"], p["pos_trans"], p["pos_scale"],
                        iou_range=p["pos_iou"])
        half = p["n_neg_init"] // 2
        neg = np.concatenate([
            self.draw("uniform", box, half, p["neg_init_trans"], p["neg_init_scale"],
                      iou_range=p["neg_iou_init"]),
            self.draw("whole", box, p["n_neg_init"] - half, iou_range=p["neg_iou_init"])])
        if len(pos) == 0 or len(neg) == 0:
            raise ValueError(f"{type(self).__name__}: no training samples around {tuple(box)} in a "
                             f"{self.frame_size} frame ({len(pos)} positives, {len(neg)} negatives)")
        return pos, self.rng.permutation(neg)

    def initialize(self, frame: np.ndarray, box: Box) -> None:
        frame, p = check_frame(frame), self.p
        box = np.asarray(as_box(box, f"{type(self).__name__} initial box"), dtype=np.float64)
        self.rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        self.frame_size = (frame.shape[1], frame.shape[0])
        self.net = copy.deepcopy(self.base).to(self.device)
        self.net.new_domains(1)
        self.features = Features(self.net, self.device, p["batch"], self.optimize)
        pos, neg = self.first_samples(box)
        size = box[2:]
        pos_f, neg_f = self.features(frame, pos, size), self.features(frame, neg, size)
        self.update_optimizer = optimizer_for(self.net, p["lr_update"])
        self.init_losses = fine_tune(self.net, optimizer_for(self.net, p["lr_init"]), pos_f, neg_f,
                                     p["iters_init"], self.rng)
        reg = self.draw("uniform", box, p["n_bbreg"], p["bbreg_trans"], p["bbreg_scale"], p["bbreg_aspect"],
                        p["bbreg_iou"], p["bbreg_area"])
        self.regressor = BoxRegressor().fit(self.features(frame, reg, size).cpu().numpy(), reg, box)
        self.memory = SampleMemory(p["long_frames"], p["short_frames"])
        neg = self.draw("uniform", box, p["n_neg_update"], p["neg_trans"], p["neg_scale"],
                        iou_range=p["neg_iou_init"])
        self.memory.add(pos_f, self.features(frame, neg, size))
        self.box, self.trans, self.index = box, p["trans"], 0
        self.updates: list[str] = []

    @torch.no_grad()
    def estimate(self, frame: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """The mean of the ``top_k`` best of ``n_samples`` Gaussian candidates, its score and
        those candidates."""
        samples = self.draw("gaussian", self.box, self.p["n_samples"], self.trans, self.p["scale"])
        scores = self.net.classify(self.features(frame, samples, self.box[2:]))[:, 1]
        top = scores.topk(min(self.p["top_k"], len(scores)))
        best = samples[top.indices.cpu().numpy()]
        return best.mean(axis=0), float(top.values.mean()), best

    def track(self, frame: np.ndarray) -> TrackResult:
        frame, p = check_frame(frame), self.p
        self.index += 1
        target, score, best = self.estimate(frame)
        success = score > 0
        self.trans = p["trans"] if success else min(self.trans * 1.1, p["trans_limit"])
        shown = target
        if success:
            feats = self.features(frame, best, target[2:]).cpu().numpy()
            shown = clip_box(self.regressor.predict(feats, best).mean(axis=0), *frame.shape[:2])
            self.collect(frame, target)
        self.box = target
        self.update(success)
        return TrackResult(tuple(float(v) for v in shown), score,
                           {"success": success, "update": self.updates[-1] if self.updates else ""})

    def collect(self, frame: np.ndarray, target: np.ndarray) -> None:
        """Store positives and negatives around a reliable estimate (nothing when no box meets
        the IoU ranges, e.g. a target filling the frame)."""
        p = self.p
        pos = self.draw("gaussian", target, p["n_pos_update"], p["pos_trans"], p["pos_scale"],
                        iou_range=p["pos_iou"])
        neg = self.draw("uniform", target, p["n_neg_update"], p["neg_trans"], p["neg_scale"],
                        iou_range=p["neg_iou_update"])
        if len(pos) and len(neg):
            self.memory.add(self.features(frame, pos, target[2:]), self.features(frame, neg, target[2:]))

    def update(self, success: bool) -> None:
        """Short-term update on failure, long-term every ``long_interval`` frames otherwise."""
        if not success:
            kind, (pos, neg) = "short", self.memory.short_term()
        elif self.index % self.p["long_interval"] == 0:
            kind, (pos, neg) = "long", self.memory.long_term()
        else:
            self.updates.append("")
            return
        with torch.enable_grad():
            fine_tune(self.net, self.update_optimizer, pos, neg, self.p["iters_update"], self.rng)
        self.updates.append(kind)


register_tracker("mdnet", paper="Nam & Han, CVPR 2016",
                 available=weights_available(WEIGHTS_ENV))(MDNetTracker)


@register_tracker("rtmdnet", paper="Jung et al., ECCV 2018", available=weights_available(RT_WEIGHTS_ENV))
class RTMDNetTracker(MDNetTracker):
    """RT-MDNet: MDNet with one feature map per frame and RoIAlign of the candidates."""

    roi_align = True
    env = RT_WEIGHTS_ENV
