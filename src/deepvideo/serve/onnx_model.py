"""A clip scorer over an exported ONNX file (onnxruntime, CPU): no run folder, no model code.

The file's ``deepvideo`` metadata (written by :func:`deepvideo.serve.export.export_model`)
gives the InputSpec, the class names and the decode short side; frames go through the same
test transform as in PyTorch (:class:`deepvideo.serve.scorer.ClipTransform`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from deepvideo.engine.build import spec_overrides
from deepvideo.serve.export import read_metadata
from deepvideo.serve.scorer import ClipTransform, check_rgb_only
from deepvideo.spec import InputSpec


class OnnxScorer:
    """``logits(clips)`` of an exported model; ``threads`` onnxruntime intra-op threads (0: default)."""

    def __init__(self, path: str | Path, threads: int = 0):
        import onnxruntime as ort

        self.path = Path(path)
        meta = read_metadata(self.path)
        try:
            self.spec = InputSpec(**spec_overrides(meta["input_spec"]))
            self.class_names = [str(c) for c in meta["class_names"]]
            self.short_side = int(meta["short_side"])
            self.name = str(meta.get("model_name") or self.path.stem)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{self.path}: damaged deepvideo metadata ({type(err).__name__}: {err})") \
                from None
        check_rgb_only(self.spec, str(self.path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.to_batch = ClipTransform(self.spec, self.short_side)

    def logits(self, clips: Sequence[torch.Tensor]) -> np.ndarray:
        batch = self.to_batch(clips).numpy()
        return self.session.run(None, {self.input_name: batch})[0].astype(np.float32)
