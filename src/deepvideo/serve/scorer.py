"""A clip scorer: what windowed, stream and server prediction need from a model.

A scorer has the model's ``spec`` (:class:`~deepvideo.spec.InputSpec`), its ``class_names``,
the ``short_side`` frames are decoded at, and ``logits(clips)``: ``uint8 [T, H, W, 3]`` clips
-> float32 ``[N, K]`` scores. :class:`TorchScorer` wraps a trained run (``deepvideo predict``'s
:func:`~deepvideo.engine.evaluate.load_for_inference`); ``deepvideo.serve.onnx_model`` gives
the same interface over an exported ONNX file. Both use the test transform of the training
code (:func:`~deepvideo.data.transforms.build_transforms`: short-side resize, centre crop,
normalisation), one view per clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from deepvideo.data.transforms import build_transforms
from deepvideo.spec import InputSpec


class UnsupportedModelError(ValueError):
    """The model needs an input windowed prediction cannot give (e.g. optical flow)."""


def default_short_side(spec: InputSpec, short_side: int | None) -> int:
    """The short side frames are resized to before the centre crop (crop * 256 / 224 by default)."""
    return int(short_side) if short_side else round(spec.crop_size * 256 / 224)


def check_rgb_only(spec: InputSpec, name: str) -> None:
    """Windowed prediction decodes RGB frames only: a flow model is an :class:`UnsupportedModelError`."""
    if spec.batch_keys != ("rgb",):
        raise UnsupportedModelError(
            f"{name}: the model reads {', '.join(spec.batch_keys)}; windowed, stream and server "
            "prediction feed RGB frames only (use `deepvideo predict RUN VIDEO` for flow models)")


class ClipTransform:
    """``uint8 [T, H, W, 3]`` clips -> the float ``[N, 3, T, crop, crop]`` batch of a spec."""

    def __init__(self, spec: InputSpec, short_side: int):
        self.transform = build_transforms(spec, train=False, short_side=short_side, test_crops=1)

    def __call__(self, clips: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.stack([self.transform({"rgb": c})["rgb"] for c in clips])


@dataclass
class TorchScorer:
    """A PyTorch model from a run folder (``predictor``: :class:`~deepvideo.engine.evaluate.Predictor`)."""

    predictor: object
    short_side: int = 0

    def __post_init__(self) -> None:
        cfg = self.predictor.cfg
        self.spec: InputSpec = self.predictor.model.input_spec
        self.class_names = list(self.predictor.class_names)
        self.name = str(cfg.model.name)
        check_rgb_only(self.spec, self.predictor.checkpoint or self.name)
        self.short_side = default_short_side(self.spec, self.short_side or cfg.eval.short_side
                                             or cfg.data.short_side)
        self.to_batch = ClipTransform(self.spec, self.short_side)

    @torch.no_grad()
    def logits(self, clips: Sequence[torch.Tensor]) -> np.ndarray:
        from deepvideo.engine.scoring import forward_views

        batch = {"rgb": self.to_batch(clips)}
        views = forward_views(self.predictor.model, batch, self.predictor.device, spec=self.spec)
        return views[:, 0].numpy()


def load_scorer(run, device: str | None = None, allow_imports: bool = False) -> TorchScorer:
    """A :class:`TorchScorer` for a run or checkpoint folder."""
    from deepvideo.engine.evaluate import load_for_inference

    return TorchScorer(load_for_inference(run, device=device, allow_imports=allow_imports))
