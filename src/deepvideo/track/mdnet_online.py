"""MDNet's online parts: fine-tuning fc4–fc6 with hard negative mining, the sample memory and
the bounding-box regressor.

Nam & Han, CVPR 2016, Sec. 4 (with py-MDNet's ``tracking/run_tracker.py`` and ``bbreg.py``):

- :func:`fine_tune`: ``iterations`` SGD steps on the softmax cross-entropy of fc6; each
  mini-batch has 32 positives and 96 negatives, the negatives being the 96 highest-scoring
  (``f+``) of 1024 drawn negatives (hard negative mining), scored in eval mode. SGD with
  momentum 0.9, weight decay 0.0005, fc6's learning rate ×10, gradient norm clipped at 10.
- :class:`SampleMemory`: the conv3 features of positives of the last 100 frames (long term)
  and of negatives of the last 20 frames (short term); a short-term update uses the positives
  of the last 20 frames.
- :class:`BoxRegressor`: ridge regression (``alpha = 1000``) from conv3 features to the
  R-CNN box offsets ``((gx − x)/w, (gy − y)/h, log(gw/w), log(gh/h))`` (centres), trained on
  the first frame only.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BATCH_POS = 32
BATCH_NEG = 96
BATCH_NEG_CANDIDATES = 1024
MOMENTUM = 0.9
WEIGHT_DECAY = 0.0005
FC6_LR_MULT = 10.0
GRAD_CLIP = 10.0
RIDGE_ALPHA = 1000.0
LONG_TERM_FRAMES = 100
SHORT_TERM_FRAMES = 20


def optimizer_for(model: nn.Module, lr: float) -> torch.optim.SGD:
    """SGD over fc4, fc5 (``lr``) and fc6 (``10·lr``) of an :class:`~deepvideo.track.mdnet.MDNet`."""
    shared = list(model.fc4.parameters()) + list(model.fc5.parameters())
    return torch.optim.SGD([{"params": shared, "lr": lr},
                            {"params": list(model.fc6.parameters()), "lr": lr * FC6_LR_MULT}],
                           lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def binary_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy: positives labelled 1, negatives 0."""
    logits = torch.cat([pos_scores, neg_scores])
    labels = torch.cat([torch.ones(len(pos_scores)), torch.zeros(len(neg_scores))]).long()
    return F.cross_entropy(logits, labels.to(logits.device))


def index_stream(rng: np.random.Generator, n: int, needed: int) -> np.ndarray:
    """Concatenated permutations of ``range(n)``, at least ``needed`` long."""
    parts, total = [], 0
    while total < needed:
        parts.append(rng.permutation(n))
        total += n
    return np.concatenate(parts)


@torch.no_grad()
def hardest(model: nn.Module, features: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` rows of ``features`` with the highest target score ``f+`` (eval mode)."""
    was_training = model.training
    model.eval()
    scores = model.classify(features)[:, 1]
    model.train(was_training)
    return features[scores.topk(min(k, len(features))).indices]


def fine_tune(model: nn.Module, optimizer: torch.optim.Optimizer, pos: torch.Tensor, neg: torch.Tensor,
              iterations: int, rng: np.random.Generator) -> list[float]:
    """``iterations`` steps of fc4–fc6 training on conv3 features ``pos`` / ``neg``; the losses."""
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"MDNet fine-tuning needs positives and negatives, got {len(pos)} and {len(neg)}")
    pos_idx = index_stream(rng, len(pos), BATCH_POS * iterations)
    neg_idx = index_stream(rng, len(neg), BATCH_NEG_CANDIDATES * iterations)
    losses = []
    model.train()
    for i in range(iterations):
        batch_pos = pos[torch.from_numpy(pos_idx[i * BATCH_POS:(i + 1) * BATCH_POS])]
        candidates = neg[torch.from_numpy(neg_idx[i * BATCH_NEG_CANDIDATES:(i + 1) * BATCH_NEG_CANDIDATES])]
        batch_neg = hardest(model, candidates, BATCH_NEG)
        loss = binary_loss(model.classify(batch_pos), model.classify(batch_neg))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], GRAD_CLIP)
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


class SampleMemory:
    """Per-frame feature sets: positives of the last ``long_frames`` frames, negatives of the
    last ``short_frames`` frames."""

    def __init__(self, long_frames: int = LONG_TERM_FRAMES, short_frames: int = SHORT_TERM_FRAMES):
        self.short_frames = short_frames
        self.positives: deque[torch.Tensor] = deque(maxlen=long_frames)
        self.negatives: deque[torch.Tensor] = deque(maxlen=short_frames)

    def add(self, pos: torch.Tensor, neg: torch.Tensor) -> None:
        self.positives.append(pos)
        self.negatives.append(neg)

    def long_term(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All stored positives and negatives."""
        return torch.cat(list(self.positives)), torch.cat(list(self.negatives))

    def short_term(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Positives of the last ``short_frames`` frames, all stored negatives."""
        recent = list(self.positives)[-self.short_frames:]
        return torch.cat(recent), torch.cat(list(self.negatives))


def box_offsets(boxes: np.ndarray, target: np.ndarray) -> np.ndarray:
    """R-CNN regression targets ``[N, 4]`` from ``boxes`` (x, y, w, h) to ``target``."""
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    goal = target[:2] + target[2:] / 2
    return np.concatenate([(goal - centre) / boxes[:, 2:], np.log(target[2:] / boxes[:, 2:])], axis=1)


def apply_offsets(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boxes moved by R-CNN offsets (the inverse of :func:`box_offsets`)."""
    centre = boxes[:, :2] + boxes[:, 2:] / 2 + offsets[:, :2] * boxes[:, 2:]
    size = boxes[:, 2:] * np.exp(offsets[:, 2:])
    return np.concatenate([centre - size / 2, size], axis=1)


class BoxRegressor:
    """Ridge regression ``Y = (X − mean_X) W + mean_Y`` (intercept not penalised)."""

    def __init__(self, alpha: float = RIDGE_ALPHA):
        self.alpha = float(alpha)
        self.weights: np.ndarray | None = None

    def fit(self, features: np.ndarray, boxes: np.ndarray, target) -> BoxRegressor:
        x = np.asarray(features, dtype=np.float64)
        if len(x) == 0:
            raise ValueError("the MDNet box regressor needs at least one training sample")
        y = box_offsets(np.asarray(boxes, dtype=np.float64), np.asarray(target, dtype=np.float64))
        self.x_mean, self.y_mean = x.mean(axis=0), y.mean(axis=0)
        xc, yc = x - self.x_mean, y - self.y_mean
        gram = xc @ xc.T + self.alpha * np.eye(len(xc))            # dual form: N << feature size
        self.weights = xc.T @ np.linalg.solve(gram, yc)
        return self

    def predict(self, features: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """``boxes`` corrected by the regressed offsets of their ``features``."""
        if self.weights is None:
            raise RuntimeError("BoxRegressor.predict before fit")
        offsets = (np.asarray(features, dtype=np.float64) - self.x_mean) @ self.weights + self.y_mean
        return apply_offsets(np.asarray(boxes, dtype=np.float64), offsets)
