"""ATOM's online target classifier: a 2-layer convolutional filter learnt while tracking by
Gauss-Newton and conjugate gradient, with a weighted sample memory and hard-negative updates.

M. Danelljan, G. Bhat, F. S. Khan, M. Felsberg, "ATOM: Accurate Tracking by Overlap
Maximization", CVPR 2019 (Sec. 3.3, 3.4), with the values of the authors' parameter file
(github.com/visionml/pytracking, ``pytracking/parameter/atom/default.py``):

- score ``s(x; w) = w2 ∗ (w1 ∗ x)``: ``w1`` a 1×1 conv projecting the (instance-L2-normalised)
  block4 features to 64 channels, ``w2`` a 4×4 filter (``compressed_dim = 64``,
  ``kernel_size = (4, 4)``); the score map of an ``H × W`` feature map is ``(H+1) × (W+1)``
  (padding 2), its cell ``o`` centred at feature coordinate ``o`` (cell ``i`` of the features
  spans ``i..i+1``);
- objective ``L(w) = Σ_j γ_j ||s(x_j; w) − y_j||² + Σ_k λ_k ||w_k||²`` with ``λ = 0.1`` for the
  filter and ``1e-4`` for the projection (``filter_reg``, ``projection_reg``); ``y_j`` a
  Gaussian at the target centre with ``σ = 1/4`` of the target size (``output_sigma_factor``;
  ``σ = √(w h) / 4`` feature cells);
- first frame: 6 Gauss-Newton iterations of 10 conjugate-gradient steps each (``init_GN_iter
  = 6``, ``init_CG_iter = 60`` in total) on projection and filter; afterwards the projection is
  fixed and the filter gets 5 CG steps (``CG_iter``) every 10th frame (``train_skipping``) or at
  once, with learning rate 0.02 (``hard_negative_learning_rate``), when a hard negative
  (distractor) was seen;
- sample memory of 250 samples (``sample_memory_size``): each new sample enters with weight
  ``0.01`` (``learning_rate``) while the others decay by ``(1 − 0.01)``; when full, the
  lowest-weight non-initial sample is replaced; the initial samples keep at least ``0.25`` of
  the total weight (``init_samples_minimum_weight``);
- localisation (``advanced_localization``): no target when the peak is below 0.25
  (``target_not_found_threshold``); a second peak outside 2.2 target sizes of the first
  (``target_neighborhood_scale``) above 0.8 of it (``distractor_threshold``): when only one of
  the two peaks lies within ``0.8 · √(H W) / 2`` cells of the previous position
  (``dispalcement_scale``) that one is chosen and the frame is a hard negative, else the frame is
  uncertain (the highest peak, not learnt); a second peak above 0.5 of the first
  (``hard_negative_threshold``) and above 0.25 makes a hard negative.

- activation of the scores inside the objective (``response_activation = ('mlu', 0.05)``):
  MLU, ``mlu(s) = elu(leaky_relu(s, 1/a), a)`` with ``a = 0.05`` (``s`` for ``s ≥ 0``,
  ``a (exp(s/a) − 1)`` below), so background cells may go negative at little cost; the scores
  used to localise stay linear (pytracking's ``apply_filter``); ``activation="none"`` drops it;
- projection initialised from ``N(0, 1/C)`` and the filter from ``N(0, 1/numel)``
  (``proj_init_method``, ``filter_init_method = 'randn'``).

The Gauss-Newton and CG steps are exact: Jacobian products come from
:func:`torch.func.jvp` / :func:`torch.func.vjp`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

COMPRESSED_DIM = 64
KERNEL = 4
FILTER_REG = 0.1
PROJECTION_REG = 1e-4
SIGMA_FACTOR = 0.25
LEARNING_RATE = 0.01
MEMORY = 250
INIT_MIN_WEIGHT = 0.25
INIT_GN_ITER = 6
INIT_CG_ITER = 60
CG_ITER = 5
TRAIN_SKIPPING = 10
HARD_NEGATIVE_LR = 0.02
HARD_NEGATIVE_CG_ITER = 5
NOT_FOUND = 0.25
DISTRACTOR = 0.8
HARD_NEGATIVE = 0.5
NEIGHBOURHOOD = 2.2
DISPLACEMENT_SCALE = 0.8
MLU_ALPHA = 0.05
ACTIVATIONS = ("mlu", "none")

Params = tuple[torch.Tensor, ...]


def instance_l2_norm(x: torch.Tensor, scale: float = 1.0, eps: float = 1e-5) -> torch.Tensor:
    """Each map of ``x [N, C, H, W]`` scaled to mean square ``scale²`` over ``C·H·W``."""
    size = x.shape[1] * x.shape[2] * x.shape[3]
    energy = (x * x).flatten(1).sum(dim=1)[:, None, None, None]
    return x * (scale * torch.sqrt(size / (energy + eps)))


def mlu(x: torch.Tensor, alpha: float = MLU_ALPHA) -> torch.Tensor:
    """ATOM's response activation ``elu(leaky_relu(x, 1/alpha), alpha)``: ``x`` for ``x ≥ 0``,
    ``alpha (exp(x/alpha) − 1)`` below (bounded by ``−alpha``)."""
    return F.elu(F.leaky_relu(x, 1 / alpha), alpha)


def gaussian_labels(size: tuple[int, int], centers: torch.Tensor,
                    sigma: torch.Tensor | float) -> torch.Tensor:
    """Gaussians ``[N, H, W]`` peaking (value 1) at ``centers [N, 2]`` (``x, y`` map cells)."""
    h, w = size
    sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1, 1, 1)
    ys = torch.arange(h, dtype=torch.float32)[None, :, None] - centers[:, 1, None, None].float()
    xs = torch.arange(w, dtype=torch.float32)[None, None, :] - centers[:, 0, None, None].float()
    return torch.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma))


def conjugate_gradient(apply_a: Callable[[Params], Params], b: Params, iters: int) -> Params:
    """``iters`` conjugate-gradient steps on ``A x = b`` from ``x = 0`` (``A`` symmetric positive
    definite, given by its product ``apply_a``; tensors in tuples)."""
    def dot(u: Params, v: Params) -> torch.Tensor:
        return sum((p * q).sum() for p, q in zip(u, v, strict=True))

    x = tuple(torch.zeros_like(t) for t in b)
    r = tuple(t.clone() for t in b)
    p = r
    rr = dot(r, r)
    for _ in range(iters):
        if float(rr) <= 1e-30:
            break
        ap = apply_a(p)
        alpha = rr / dot(p, ap)
        x = tuple(xi + alpha * pi for xi, pi in zip(x, p, strict=True))
        r = tuple(ri - alpha * qi for ri, qi in zip(r, ap, strict=True))
        rr_new = dot(r, r)
        p = tuple(ri + (rr_new / rr) * pi for ri, pi in zip(r, p, strict=True))
        rr = rr_new
    return x


def gauss_newton_step(residual: Callable[..., torch.Tensor], params: Params, regs: Sequence[float],
                      cg_iters: int) -> Params:
    """One Gauss-Newton step on ``||residual(*params)||² + Σ_k regs[k] ||params[k]||²``: the
    increment ``Δ`` solving ``(JᵀJ + Λ) Δ = −(Jᵀ r + Λ w)`` by ``cg_iters`` CG steps."""
    r, pullback = torch.func.vjp(residual, *params)

    def normal(d: Params) -> Params:
        _, jd = torch.func.jvp(residual, tuple(params), tuple(d))
        return tuple(g + lam * di for g, lam, di in zip(pullback(jd), regs, d, strict=True))

    grad = tuple(g + lam * w for g, lam, w in zip(pullback(r), regs, params, strict=True))
    return conjugate_gradient(normal, tuple(-g for g in grad), cg_iters)


class SampleMemory:
    """Weighted training samples (features, labels): see the module docstring for the rule."""

    def __init__(self, capacity: int = MEMORY, min_init_weight: float = INIT_MIN_WEIGHT):
        self.capacity, self.min_init_weight = int(capacity), float(min_init_weight)
        self.features: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.weights = torch.zeros(0, dtype=torch.float64)
        self.num_init = 0

    def initialize(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        if len(features) > self.capacity:
            raise ValueError(f"{len(features)} initial samples exceed the memory of {self.capacity}")
        self.features, self.labels = list(features), list(labels)
        self.num_init = len(features)
        self.weights = torch.full((self.num_init,), 1.0 / self.num_init, dtype=torch.float64)

    def add(self, feature: torch.Tensor, label: torch.Tensor, rate: float) -> None:
        """Decay the weights by ``1 − rate``, add the sample with weight ``rate``."""
        w = self.weights * (1 - rate)
        if len(self.features) < self.capacity:
            self.features.append(feature)
            self.labels.append(label)
            w = torch.cat([w, w.new_tensor([rate])])
        else:
            slot = self.num_init + int(torch.argmin(w[self.num_init:]))
            self.features[slot], self.labels[slot] = feature, label
            w[slot] = rate
        init = float(w[:self.num_init].sum())
        if self.num_init and init < self.min_init_weight:
            w[:self.num_init] *= self.min_init_weight / init
            rest = float(w[self.num_init:].sum())
            w[self.num_init:] *= (1 - self.min_init_weight) / max(rest, 1e-30)
        self.weights = w / w.sum()

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(features [M, ...], labels [M, ...], weights [M])``."""
        return torch.stack(self.features), torch.stack(self.labels), self.weights.float()


def localize(scores: np.ndarray, target_cells: tuple[float, float], previous: tuple[float, float]
             ) -> tuple[tuple[int, int], str, float]:
    """ATOM/DiMP's advanced localisation on a score map ``[H, W]``: the chosen peak ``(row,
    col)``, a flag (``"normal"``, ``"not_found"``, ``"uncertain"``, ``"hard_negative"``) and the
    highest score. ``target_cells`` is the target's ``(w, h)`` in map cells and ``previous``
    the ``(row, col)`` where the target was expected (the map's centre)."""
    peak1 = np.unravel_index(int(np.argmax(scores)), scores.shape)
    max1 = float(scores[peak1])
    if max1 < NOT_FOUND:
        return (int(peak1[0]), int(peak1[1])), "not_found", max1
    half_w = NEIGHBOURHOOD * target_cells[0] / 2
    half_h = NEIGHBOURHOOD * target_cells[1] / 2
    rows, cols = np.ogrid[:scores.shape[0], :scores.shape[1]]
    near = (np.abs(rows - peak1[0]) <= half_h) & (np.abs(cols - peak1[1]) <= half_w)
    rest = np.where(near, -np.inf, scores)
    peak2 = np.unravel_index(int(np.argmax(rest)), scores.shape)
    max2 = float(rest[peak2])
    p1, p2 = (int(peak1[0]), int(peak1[1])), (int(peak2[0]), int(peak2[1]))
    if max2 > DISTRACTOR * max1:
        threshold = DISPLACEMENT_SCALE * math.sqrt(scores.shape[0] * scores.shape[1]) / 2
        near1 = math.dist(p1, previous) < threshold
        near2 = math.dist(p2, previous) < threshold
        if near1 and not near2:
            return p1, "hard_negative", max1
        if near2 and not near1:
            return p2, "hard_negative", max2
        return p1, "uncertain", max1
    if max2 > HARD_NEGATIVE * max1 and max2 > NOT_FOUND:
        return p1, "hard_negative", max1
    return p1, "normal", max1


def score_offset(kernel: int) -> float:
    """Feature coordinate of score cell 0 for a ``kernel``-sized filter with padding
    ``kernel // 2`` (0 for even kernels, 0.5 for odd ones)."""
    return (kernel % 2) / 2


class ATOMClassifier:
    """ATOM's online classifier (see the module docstring), usable on any feature map.

    - ``initialize(features, box)``: ``features [N, C, H, W]`` (N ≥ 1: the first frame and
      optionally augmented copies), ``box`` the target ``(x, y, w, h)`` in feature coordinates
      (image pixels / stride; cell ``i`` spans ``i..i+1``), one box or ``[N, 4]``; learns the
      projection and the filter (Gauss-Newton + CG).
    - ``score(features) -> [H, W]``: the response of ``features [1, C, H, W]`` at each feature
      cell (the ``(H+1)×(W+1)`` raw map of :meth:`raw_scores` averaged over 2×2 neighbours so
      cell ``i`` is centred at ``i + 0.5``, like the features).
    - ``update(features, box, hard_negative=False)``: stores a sample with its label and
      re-optimises the filter every ``train_skipping`` updates, or at once for a hard negative.
    """

    def __init__(self, dim: int = COMPRESSED_DIM, kernel: int = KERNEL, filter_reg: float = FILTER_REG,
                 projection_reg: float = PROJECTION_REG, sigma_factor: float = SIGMA_FACTOR,
                 learning_rate: float = LEARNING_RATE, memory: int = MEMORY,
                 init_gn_iter: int = INIT_GN_ITER, init_cg_iter: int = INIT_CG_ITER, cg_iter: int = CG_ITER,
                 train_skipping: int = TRAIN_SKIPPING, seed: int = 0, activation: str = "mlu",
                 mlu_alpha: float = MLU_ALPHA):
        if activation not in ACTIVATIONS:
            raise ValueError(f"ATOMClassifier: activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation, self.mlu_alpha = activation, float(mlu_alpha)
        self.dim, self.kernel = int(dim), int(kernel)
        self.regs = (float(projection_reg), float(filter_reg))
        self.sigma_factor, self.learning_rate = float(sigma_factor), float(learning_rate)
        self.init_gn_iter, self.init_cg_iter = int(init_gn_iter), int(init_cg_iter)
        self.cg_iter = int(cg_iter)
        self.train_skipping = int(train_skipping)
        self.memory = SampleMemory(memory)
        self.generator = torch.Generator().manual_seed(seed)
        self.frames = 0

    def responses(self, projection: torch.Tensor, filt: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Raw score maps ``[N, H+1, W+1]`` (even kernel) of features ``x [N, C, H, W]``."""
        return F.conv2d(F.conv2d(x, projection), filt, padding=self.kernel // 2)[:, 0]

    def activate(self, scores: torch.Tensor) -> torch.Tensor:
        """The scores as the objective sees them (MLU, or unchanged with ``activation="none"``)."""
        return mlu(scores, self.mlu_alpha) if self.activation == "mlu" else scores

    def objective(self, projection: torch.Tensor, filt: torch.Tensor) -> float:
        """``Σ_j γ_j ||act(s(x_j; w)) − y_j||² + Σ_k λ_k ||w_k||²`` over the memory."""
        x, y, w = self.memory.tensors()
        data = (w[:, None, None] * (self.activate(self.responses(projection, filt, x)) - y) ** 2).sum()
        return float(data + self.regs[0] * projection.pow(2).sum() + self.regs[1] * filt.pow(2).sum())

    def labels(self, size: tuple[int, int], boxes: torch.Tensor) -> torch.Tensor:
        """Gaussian labels on the raw score grid for target boxes ``[N, 4]`` (feature coordinates)."""
        boxes = boxes.float()
        centers = boxes[:, :2] + boxes[:, 2:] / 2 - score_offset(self.kernel)
        sigma = self.sigma_factor * torch.sqrt(boxes[:, 2] * boxes[:, 3])
        return gaussian_labels(size, centers, sigma)

    def _boxes(self, box, n: int) -> torch.Tensor:
        boxes = torch.as_tensor(np.asarray(box, dtype=np.float32)).reshape(-1, 4)
        if len(boxes) == 1:
            boxes = boxes.expand(n, 4)
        if len(boxes) != n or not bool(torch.isfinite(boxes).all()) or bool((boxes[:, 2:] <= 0).any()):
            raise ValueError(f"ATOMClassifier: need one box or {n} boxes (x, y, w, h) with w, h > 0, "
                             f"got {box!r}")
        return boxes

    def initialize(self, features: torch.Tensor, box) -> None:
        features = self._check(features)
        n, c = features.shape[:2]
        boxes = self._boxes(box, n)
        size = (features.shape[2] + 1 - self.kernel % 2, features.shape[3] + 1 - self.kernel % 2)
        labels = self.labels(size, boxes)
        self.memory.initialize(features, labels)
        g = self.generator
        self.projection = torch.randn(self.dim, c, 1, 1, generator=g) / math.sqrt(c)
        numel = self.dim * self.kernel * self.kernel
        self.filter = torch.randn(1, self.dim, self.kernel, self.kernel, generator=g) / numel
        per_step = max(1, self.init_cg_iter // self.init_gn_iter)
        for _ in range(self.init_gn_iter):
            self.gauss_newton(per_step)
        self.frames = 0

    def gauss_newton(self, cg_iters: int) -> None:
        """One Gauss-Newton step on projection and filter over the whole memory."""
        x, y, w = self.memory.tensors()
        sw = w.sqrt()[:, None, None]

        def residual(projection, filt):
            return sw * (self.activate(self.responses(projection, filt, x)) - y)

        d = gauss_newton_step(residual, (self.projection, self.filter), self.regs, cg_iters)
        self.projection = self.projection + d[0]
        self.filter = self.filter + d[1]

    def optimize_filter(self, cg_iters: int) -> None:
        """Least squares in the filter alone (projection fixed): ``cg_iters`` CG steps."""
        x, y, w = self.memory.tensors()
        sw = w.sqrt()[:, None, None]
        projected = F.conv2d(x, self.projection)

        def residual(filt):
            return sw * (self.activate(F.conv2d(projected, filt, padding=self.kernel // 2)[:, 0]) - y)

        d = gauss_newton_step(residual, (self.filter,), self.regs[1:], cg_iters)
        self.filter = self.filter + d[0]

    def raw_scores(self, features: torch.Tensor) -> torch.Tensor:
        """The raw score map ``[H+1, W+1]`` of ``features [1, C, H, W]``."""
        return self.responses(self.projection, self.filter, self._check(features)[:1])[0]

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """The response ``[H, W]`` at each feature cell (see the class docstring)."""
        raw = self.raw_scores(features)
        if self.kernel % 2:
            return raw
        return F.avg_pool2d(raw[None, None], 2, stride=1)[0, 0]

    def update(self, features: torch.Tensor, box, hard_negative: bool = False) -> None:
        """Store ``features [1, C, H, W]`` with the label of ``box`` (feature coordinates) and
        re-optimise when due (see the class docstring)."""
        features = self._check(features)[:1]
        label = self.labels(tuple(self.memory.labels[0].shape), self._boxes(box, 1))[0]
        rate = HARD_NEGATIVE_LR if hard_negative else self.learning_rate
        self.memory.add(features[0], label, rate)
        self.frames += 1
        if hard_negative:
            self.optimize_filter(HARD_NEGATIVE_CG_ITER)
        elif self.frames % self.train_skipping == 0:
            self.optimize_filter(self.cg_iter)

    @staticmethod
    def _check(features: torch.Tensor) -> torch.Tensor:
        if not isinstance(features, torch.Tensor) or features.dim() != 4:
            raise ValueError(f"ATOMClassifier: features must be a tensor [N, C, H, W], got "
                             f"{getattr(features, 'shape', type(features).__name__)}")
        return features.detach().float()


__all__ = ["ATOMClassifier", "SampleMemory", "conjugate_gradient", "gauss_newton_step", "gaussian_labels",
           "instance_l2_norm", "localize", "mlu", "score_offset"]
