"""UpdateNet: a learned update of a Siamese tracker's template, and its training windows.

L. Zhang, A. Gonzalez-Garcia, J. van de Weijer, M. Danelljan, F. S. Khan, "Learning the Model
Update for Siamese Trackers", ICCV 2019 (Sec. 3), with the sizes of the authors' SiamFC
variant (github.com/zhanglichao/updatenet, ``code/updatenet.py``: ``UpdateResNet256``, 768 -> 96
-> 256 for SiamFC's 256 channels) and their loss (``templates_generate/train_updateNet.py``):

- ``T̃_i = ψ(T_0, T̃_{i-1}, T_i) + T_0``: the initial template ``T_0`` (from the first frame's
  ground truth), the accumulated template ``T̃_{i-1}`` and the template ``T_i`` extracted at
  the position found in frame ``i`` are concatenated along channels (``3C``) and ψ is two
  1×1 convolutions, ``3C -> 96``, ReLU, ``96 -> C`` (``HIDDEN = 96``); the skip connection
  adds ``T_0``. The last convolution starts at zero, so an untrained UpdateNet keeps ``T_0``
  (the fixed template of SiamFC).
- Training: the target of ``T̃_i`` is the ground-truth template of the next frame
  ``T^GT_{i+1}``, the loss ``‖T̃_i − T^GT_{i+1}‖²`` summed over the template's elements
  (:func:`template_loss`, per item; the authors' ``MSELoss(size_average=False)`` over the
  batch size). In the paper's first stage ``T_i`` is taken at the ground truth and the
  accumulated template is the linear update's (rate 0.0102, as CFNet's SiamFC baseline);
  later stages feed UpdateNet's own accumulated template (``accumulate="updatenet"`` here).

:class:`TemplateWindows` gives the training items: runs of consecutive frames of one
sequence where the target is visible, each cropped around its ground-truth box as the
tracker crops the exemplar (context 0.5, 127 pixels, the frame's mean colour outside).
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

import numpy as np
import torch
from torch import nn

from deepvideo.track.dcf import box_to_center, mean_filled_patch
from deepvideo.track.pairs import context_side, visible_frames

HIDDEN = 96
LINEAR_RATE = 0.0102  # CFNet's SiamFC baseline (bertinetto/cfnet, run_baseline5_evaluation.m: zLR)
ACCUMULATE = ("linear", "updatenet")


class UpdateNet(nn.Module):
    """``forward(t0, accumulated, current) -> ψ([t0, accumulated, current]) + t0``; each
    template ``[N, C, h, w]``."""

    def __init__(self, channels: int = 256, hidden: int = HIDDEN):
        super().__init__()
        if channels < 1 or hidden < 1:
            raise ValueError(f"UpdateNet needs positive channels and hidden, got {channels}, {hidden}")
        self.channels = int(channels)
        self.update = nn.Sequential(nn.Conv2d(3 * channels, hidden, 1), nn.ReLU(inplace=True),
                                    nn.Conv2d(hidden, channels, 1))
        nn.init.zeros_(self.update[2].weight)
        nn.init.zeros_(self.update[2].bias)

    def forward(self, t0: torch.Tensor, accumulated: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        if not t0.shape == accumulated.shape == current.shape or t0.shape[1] != self.channels:
            raise ValueError(f"UpdateNet({self.channels} channels): templates of shapes {tuple(t0.shape)}, "
                             f"{tuple(accumulated.shape)}, {tuple(current.shape)}")
        return self.update(torch.cat([t0, accumulated, current], dim=1)) + t0

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], source: str = "state dict") -> UpdateNet:
        """An UpdateNet whose sizes are read from ``state`` (loud on other keys)."""
        if "update.0.weight" not in state or "update.2.weight" not in state:
            raise ValueError(f"{source}: not UpdateNet weights (no update.0.weight / update.2.weight; "
                             f"keys: {', '.join(sorted(state)[:6])})")
        hidden, channels = state["update.2.weight"].shape[1], state["update.2.weight"].shape[0]
        model = cls(channels, hidden)
        own = set(model.state_dict())
        if set(state) != own:
            raise ValueError(f"{source}: keys matching nothing in UpdateNet: {sorted(set(state) - own)}; "
                             f"missing: {sorted(own - set(state))}")
        model.load_state_dict(state)
        return model


def linear_update(accumulated: torch.Tensor, current: torch.Tensor,
                  rate: float = LINEAR_RATE) -> torch.Tensor:
    """CFNet's running average ``(1 − rate) T̃_{i−1} + rate T_i``."""
    return (1 - rate) * accumulated + rate * current


def template_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``‖predicted − target‖²`` summed over each template, averaged over the batch."""
    return (predicted.float() - target.float()).pow(2).flatten(1).sum(dim=1).mean()


def unrolled_losses(model: UpdateNet, templates: torch.Tensor, accumulate: str = "linear",
                    rate: float = LINEAR_RATE) -> dict[str, torch.Tensor]:
    """Losses over windows of ground-truth templates ``[N, L, C, h, w]`` (``L >= 3``): at each
    ``i = 1 .. L−2``, UpdateNet's ``T̃_i`` against ``T_{i+1}``; also the fixed template ``T_0``'s
    and the linear update's losses against the same targets (the baselines, no gradient).
    ``accumulate``: the ``T̃_{i−1}`` fed to UpdateNet comes from the linear update of the
    ground-truth templates, or from UpdateNet's own previous output (detached)."""
    if accumulate not in ACCUMULATE:
        raise ValueError(f"accumulate must be one of {ACCUMULATE}, got {accumulate!r}")
    if templates.dim() != 5 or templates.shape[1] < 3:
        raise ValueError(f"expected template windows [N, L >= 3, C, h, w], got {tuple(templates.shape)}")
    t0 = templates[:, 0]
    linear, own = t0, t0
    losses = {"loss": 0.0, "fixed": 0.0, "linear": 0.0}
    steps = templates.shape[1] - 2
    for i in range(1, steps + 1):
        current, target = templates[:, i], templates[:, i + 1]
        fed = linear if accumulate == "linear" else own
        predicted = model(t0, fed, current)
        linear = linear_update(linear, current, rate)
        own = predicted.detach()
        losses["loss"] = losses["loss"] + template_loss(predicted, target) / steps
        losses["fixed"] += float(template_loss(t0, target)) / steps
        losses["linear"] += float(template_loss(linear, target)) / steps
    return {k: v if isinstance(v, torch.Tensor) else torch.tensor(v) for k, v in losses.items()}


class TemplateWindows(torch.utils.data.Dataset):
    """Runs of ``length`` consecutive visible frames of one sequence, each frame's exemplar crop
    at its ground-truth box: item -> ``{"exemplars": float32 [length, 3, size, size]}`` (RGB 0..255).

    Items are keyed ``(index, epoch)`` or a plain index (epoch 0), a pure function of the key and
    ``seed``. ``jitter`` shifts each crop after the first by a normal offset of ``jitter`` times
    the target's size (0: the paper's first stage, crops at the ground truth).
    """

    def __init__(self, sequences: Seq, length: int = 6, items_per_epoch: int = 1000,
                 exemplar_size: int = 127, context: float = 0.5, jitter: float = 0.0, seed: int = 0):
        if length < 3 or items_per_epoch < 1 or jitter < 0:
            raise ValueError(f"bad TemplateWindows arguments: length={length} (>= 3), "
                             f"items_per_epoch={items_per_epoch} (>= 1), jitter={jitter} (>= 0)")
        self.sequences = list(sequences)
        self.starts = [self.window_starts(s, length) for s in self.sequences]
        usable = [i for i, starts in enumerate(self.starts) if len(starts)]
        if not usable:
            raise ValueError(f"no sequence has {length} consecutive frames with the target visible "
                             f"({len(self.sequences)} sequences)")
        self.usable = usable
        self.length, self.items_per_epoch = int(length), int(items_per_epoch)
        self.exemplar_size, self.context, self.jitter, self.seed = int(exemplar_size), context, jitter, seed

    @staticmethod
    def window_starts(sequence, length: int) -> np.ndarray:
        """First frames ``s`` such that frames ``s .. s+length−1`` all show the target."""
        visible = np.zeros(len(sequence.boxes), bool)
        visible[visible_frames(sequence)] = True
        run = np.convolve(visible.astype(np.int64), np.ones(length, np.int64), mode="valid")
        return np.flatnonzero(run == length)

    def __len__(self) -> int:
        return self.items_per_epoch

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        which = self.usable[int(rng.integers(len(self.usable)))]
        sequence = self.sequences[which]
        start = int(self.starts[which][rng.integers(len(self.starts[which]))])
        crops = []
        fill = None
        for k in range(start, start + self.length):
            frame = sequence.frame(k)
            if fill is None:
                fill = tuple(float(v) for v in frame.reshape(-1, 3).mean(axis=0))
            (cx, cy), (w, h) = box_to_center(np.asarray(sequence.boxes[k], np.float64))
            if self.jitter and k > start:
                cx, cy = cx + rng.normal() * self.jitter * w, cy + rng.normal() * self.jitter * h
            side = context_side(w, h, self.context)
            crops.append(mean_filled_patch(frame, (cx, cy), side, self.exemplar_size, fill))
        array = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2)
        return {"exemplars": torch.from_numpy(np.ascontiguousarray(array))}
