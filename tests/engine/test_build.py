"""Config -> ClipDataset arguments written once; the scoring path reads only the model's keys."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepvideo.engine.build import dataset_kwargs
from deepvideo.engine.config import load_config
from deepvideo.engine.scoring import autocast_dtype, forward_views, model_inputs
from deepvideo.spec import InputSpec


def _cfg():
    return load_config(overrides=[
        "model.name=x", "seed=7", "data.train={format: folder, root: /data/train}",
        "data.val={format: folder, root: /data/val}", "data.short_side=128", "data.flip=false",
        "data.recipe=two_stream", "eval.num_clips=5", "eval.test_crops=3", "eval.flip=true",
        "eval.short_side=160", "data.flow_root=/flow", "data.max_retries=2"])


def test_dataset_kwargs_per_mode():
    cfg = _cfg()
    common = {"short_policy": "loop", "flow_root": "/flow", "flow_method": "dis", "seed": 7,
              "max_retries": 2, "recipe": "two_stream"}
    assert dataset_kwargs(cfg, "train", "train") == {
        **common, "train": True, "num_clips": 1, "test_crops": 1, "flip": False, "short_side": 128,
        "video_root": "/data/train"}
    assert dataset_kwargs(cfg, "val", "val") == {
        **common, "train": False, "num_clips": 1, "test_crops": 1, "flip": False, "short_side": 128,
        "video_root": "/data/val"}
    # data.test is empty: the test split is data.val, with the eval views
    assert dataset_kwargs(cfg, "test", "test") == {
        **common, "train": False, "num_clips": 5, "test_crops": 3, "flip": True, "short_side": 160,
        "video_root": "/data/val"}
    cfg.eval.fully_convolutional = True
    with pytest.raises(ValueError, match="InputSpec"):
        dataset_kwargs(cfg, "test", "test")
    kw = dataset_kwargs(cfg, "test", "test", InputSpec(crop_size=112))
    assert "test_crops" not in kw and "recipe" not in kw and kw["transform"].num_views == 2
    with pytest.raises(ValueError, match="mode must be one of train, val, test"):
        dataset_kwargs(cfg, "train", "eval")


class FlowOnly(nn.Module):
    input_spec = InputSpec(modalities=("flow",), num_frames=2, crop_size=4, flow_stack=1)

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, batch):
        self.seen.append(sorted(batch))
        return batch["flow"].mean(dim=(2, 3, 4))  # [N, 2]


def test_scoring_reads_only_the_models_keys():
    model = FlowOnly()
    batch = {"rgb": torch.randn(2, 3, 3, 2, 4, 4), "flow": torch.randn(2, 3, 2, 2, 4, 4),
             "label": torch.ones(2)}
    assert model_inputs(batch, model.input_spec) == ["flow"]
    assert model_inputs(batch, InputSpec(modalities=("rgbdiff",))) == ["rgb"]
    out = forward_views(model, batch)
    assert model.seen == [["flow"]] and out.shape == (2, 3, 2)
    torch.testing.assert_close(out[1, 2], batch["flow"][1, 2].mean(dim=(1, 2, 3)))


def test_autocast_dtype():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("auto", cuda) == torch.float16
    assert autocast_dtype("bf16", cpu) == torch.bfloat16 and autocast_dtype("none", cuda) is None
    assert autocast_dtype("fp16", cpu, training=False) is None  # a CUDA-trained run tested on the CPU
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        autocast_dtype("fp16", cpu)
