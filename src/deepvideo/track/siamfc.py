"""SiamFC: a fully-convolutional Siamese network, its score map and its training loss.

L. Bertinetto, J. Valmadre, J. F. Henriques, A. Vedaldi, P. H. S. Torr, "Fully-Convolutional
Siamese Networks for Object Tracking", ECCV Workshops 2016 (Table 1, Sec. 2.2).

- Embedding φ (Table 1): conv 11×11/2 (96) - BN - ReLU - max-pool 3/2 - conv 5×5 (256, 2 groups)
  - BN - ReLU - max-pool 3/2 - conv 3×3 (384) - BN - ReLU - conv 3×3 (384, 2 groups) - BN - ReLU -
  conv 3×3 (256, 2 groups); no padding, total stride 8. An exemplar of 127 pixels gives 6×6
  features, a search image of 255 pixels 22×22, and their cross-correlation a 17×17 score map.
- Score ``f(z, x) = φ(z) ⋆ φ(x) + b`` times 0.001 (the "adjust" factor of the authors' released
  network, which keeps the initial scores small).
- Loss (Sec. 2.2): ``l(y, v) = log(1 + exp(-y v))`` per score position, ``y = +1`` when the
  position lies within ``R = 16`` search-image pixels of the target centre (2 cells of stride 8),
  else -1; positives and negatives each carry half of the weight (class balance, as in the
  authors' training code; the response scale 1e-3 and the radius 16 are also those of the
  released training parameters).

``width`` scales every channel count (rounded to an even number for the 2-group convolutions),
e.g. ``width=0.25`` for CPU-sized experiments. Inputs are RGB in 0..255 (no normalisation:
the first BN layer takes care of the range).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EXEMPLAR_SIZE = 127
SEARCH_SIZE = 255
STRIDE = 8
SCORE_SIZE = 17
CHANNELS = (96, 256, 384, 384, 256)
ADJUST = 0.001
RADIUS = 16.0


def scaled_channels(width: float) -> tuple[int, ...]:
    """The five channel counts of φ at ``width`` (each even, at least 2)."""
    if width <= 0:
        raise ValueError(f"SiamFC width must be positive, got {width}")
    return tuple(max(2, 2 * round(c * width / 2)) for c in CHANNELS)


def embedding(channels: tuple[int, ...]) -> nn.Sequential:
    """φ of Table 1 with the given five channel counts."""
    c1, c2, c3, c4, c5 = channels
    return nn.Sequential(
        nn.Conv2d(3, c1, 11, stride=2), nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c1, c2, 5, groups=2), nn.BatchNorm2d(c2), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c2, c3, 3), nn.BatchNorm2d(c3), nn.ReLU(inplace=True),
        nn.Conv2d(c3, c4, 3, groups=2), nn.BatchNorm2d(c4), nn.ReLU(inplace=True),
        nn.Conv2d(c4, c5, 3, groups=2),
    )


def cross_correlate(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Each exemplar embedding ``z [N, C, h, w]`` slid over its search embeddings ``x [N*k, C, H, W]``
    (``k`` search images per exemplar, e.g. scales): ``[N*k, 1, H-h+1, W-w+1]``, one grouped conv."""
    n, c = z.shape[:2]
    if x.shape[0] % n or x.shape[1] != c:
        raise ValueError(f"cross_correlate: {tuple(x.shape)} search features do not fit "
                         f"{tuple(z.shape)} exemplar features")
    k = x.shape[0] // n
    weight = z.repeat_interleave(k, dim=0)
    out = F.conv2d(x.reshape(1, -1, *x.shape[2:]), weight, groups=n * k)
    return out.reshape(n * k, 1, *out.shape[2:])


class SiamFC(nn.Module):
    """``forward(exemplar [N,3,127,127], search [N*k,3,255,255]) -> scores [N*k,1,17,17]``."""

    def __init__(self, width: float = 1.0, channels: tuple[int, ...] | None = None):
        super().__init__()
        self.channels = tuple(int(c) for c in channels) if channels else scaled_channels(width)
        if len(self.channels) != 5:
            raise ValueError(f"SiamFC needs 5 channel counts, got {self.channels}")
        self.features = embedding(self.channels)
        self.bias = nn.Parameter(torch.zeros(1))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)

    def score(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Score maps from embeddings (``z`` from :meth:`embed` of exemplars, ``x`` of searches)."""
        return (cross_correlate(z, x) + self.bias) * ADJUST

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return self.score(self.embed(exemplar), self.embed(search))

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], source: str = "state dict") -> SiamFC:
        """A SiamFC whose channel counts are read from ``state``'s convolutions, weights loaded;
        a ValueError naming ``source`` lists keys that match nothing and keys left missing."""
        conv_keys = [k for k in ("features.0.weight", "features.4.weight", "features.8.weight",
                                 "features.11.weight", "features.14.weight") if k in state]
        if len(conv_keys) != 5:
            raise ValueError(f"{source}: not SiamFC weights (no features.*.weight convolutions; "
                             f"keys: {', '.join(sorted(state)[:8])}...)")
        model = cls(channels=tuple(state[k].shape[0] for k in conv_keys))
        own = model.state_dict()
        unknown = sorted(set(state) - set(own))
        missing = sorted(set(own) - set(state))
        if unknown or missing:
            raise ValueError(f"{source}: keys matching nothing in SiamFC: {unknown}; missing: {missing}")
        model.load_state_dict(state)
        return model


def score_positions(size: int = SCORE_SIZE) -> torch.Tensor:
    """Search-image pixel coordinate (continuous, 0..255) of each score-map row/column centre."""
    return SEARCH_SIZE / 2 + (torch.arange(size, dtype=torch.float32) - (size - 1) / 2) * STRIDE


def labels(target: torch.Tensor, size: int = SCORE_SIZE, radius: float = RADIUS) -> torch.Tensor:
    """``[N, 1, size, size]`` of +1 / -1: +1 where a score position lies within ``radius`` search
    pixels of the centre of ``target [N, 4]`` (x, y, w, h in search-image pixels)."""
    pos = score_positions(size).to(target.device)
    cx = target[:, 0] + target[:, 2] / 2
    cy = target[:, 1] + target[:, 3] / 2
    d2 = (pos[None, None, :] - cx[:, None, None]) ** 2 + (pos[None, :, None] - cy[:, None, None]) ** 2
    return torch.where(d2 <= radius * radius, 1.0, -1.0).unsqueeze(1)


def balanced_weights(y: torch.Tensor) -> torch.Tensor:
    """Per-position weights of labels ``y [N, 1, h, w]``: per item, positives share 1/2 and
    negatives 1/2 (all of it when one class is absent)."""
    pos = (y > 0).float()
    n_pos = pos.sum(dim=(1, 2, 3), keepdim=True)
    n_neg = (1 - pos).sum(dim=(1, 2, 3), keepdim=True)
    both = (n_pos > 0) & (n_neg > 0)
    w_pos = torch.where(both, 0.5, 1.0) / n_pos.clamp(min=1)
    w_neg = torch.where(both, 0.5, 1.0) / n_neg.clamp(min=1)
    return pos * w_pos + (1 - pos) * w_neg


def logistic_loss(scores: torch.Tensor, target: torch.Tensor, radius: float = RADIUS) -> torch.Tensor:
    """Mean over items of the class-balanced ``Σ_u w[u] log(1 + exp(-y[u] v[u]))``."""
    y = labels(target, scores.shape[-1], radius)
    w = balanced_weights(y)
    return (w * F.softplus(-y * scores.float())).sum(dim=(1, 2, 3)).mean()


def peak_centre_error(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per item, the distance in search pixels from the score map's peak position to the centre
    of ``target [N, 4]``."""
    n, _, h, w = scores.shape
    flat = scores.reshape(n, -1).argmax(dim=1)
    pos = score_positions(h).to(scores.device)
    px, py = pos[flat % w], pos[flat // w]
    cx = target[:, 0] + target[:, 2] / 2
    cy = target[:, 1] + target[:, 3] / 2
    return torch.hypot(px - cx, py - cy)
