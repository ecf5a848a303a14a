"""The RoI action head: dilated res5 (stride 16), RoI pooling rule, baselines."""

import pytest
import torch
from torch import nn

from deepvideo.detect.actions.model import (
    DROPOUT,
    ROI_RESOLUTION,
    SPATIAL_STRIDE,
    ActionDetector,
    CropClassifier,
    crop_clips,
    dilate_stage,
    jitter_boxes,
    roi_features,
)
from deepvideo.models.registry import create_model
from deepvideo.nn.backbones2d import resnet


def test_paper_numbers():
    assert ROI_RESOLUTION == 7 and DROPOUT == 0.5 and SPATIAL_STRIDE == 16


def test_slowfast_detector_has_stride_16_and_pools_both_pathways():
    torch.manual_seed(0)
    model = ActionDetector(create_model("slowfast_r50", num_classes=3, width=8), 3).eval()
    rgb = torch.randn(1, 3, 8, 64, 64)
    maps = model.features(rgb)
    assert [m.shape[-1] for m in maps] == [64 // SPATIAL_STRIDE] * 2  # res5 dilated: stride 16, not 32
    assert model.classifier.in_features == maps[0].shape[1] + maps[1].shape[1]
    logits = model({"rgb": rgb, "rois": torch.tensor([[0, 0, 0, 32, 32], [0, 16, 16, 64, 64.0]])})
    assert logits.shape == (2, 3)


def test_roi_features_are_temporal_mean_then_max():
    fmap = torch.zeros(1, 1, 2, 4, 4)
    fmap[0, 0, 0, 1, 1] = 4.0  # one frame: the temporal mean halves it
    fmap[0, 0, 1, 3, 3] = 2.0  # outside the RoI below
    out = roi_features([fmap], torch.tensor([[0, 0, 0, 32.0, 32.0]]), image_width=64)
    # the box covers cells 0..1 of the 4x4 map (scale 1/16); max of the bilinear samples <= 2
    assert 0 < out.item() <= 2.0 + 1e-6
    whole = roi_features([fmap], torch.tensor([[0, 0, 0, 64.0, 64.0]]), image_width=64)
    assert whole.item() > 0


def test_dilate_stage_keeps_size_and_sets_dilation():
    stage = nn.Sequential(nn.Conv3d(2, 2, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
                          nn.Conv3d(2, 2, 1, stride=(1, 2, 2)))
    dilate_stage(stage)
    assert stage[0].stride == (1, 1, 1) and stage[0].dilation == (1, 2, 2) and stage[0].padding == (0, 2, 2)
    assert stage(torch.zeros(1, 2, 1, 6, 6)).shape[-1] == 6


def test_crop_clips_takes_each_box_in_every_frame():
    rgb = torch.arange(2 * 3 * 2 * 8 * 8, dtype=torch.float32).reshape(2, 3, 2, 8, 8)
    crops = crop_clips(rgb, torch.tensor([[1, 0, 0, 8, 8.0]]), 8)
    assert crops.shape == (1, 3, 2, 8, 8)
    torch.testing.assert_close(crops[0], rgb[1], atol=1e-4, rtol=0)


def test_baselines_run():
    rgb = torch.randn(2, 3, 8, 32, 32)
    rois = torch.tensor([[0, 0, 0, 16, 16], [1, 8, 8, 32, 32.0]])
    frame = ActionDetector(resnet(18, width=0.125), 4)
    assert frame({"rgb": rgb, "rois": rois}).shape == (2, 4)
    crop = CropClassifier(create_model("slowfast_r50", num_classes=4, width=8), 32)
    assert crop({"rgb": rgb, "rois": rois}).shape == (2, 4)


def test_jitter_boxes_bounded():
    boxes = torch.tensor([[10.0, 10.0, 30.0, 50.0]])
    g = torch.Generator().manual_seed(0)
    out = jitter_boxes(boxes.repeat(100, 1), 0.1, 64, 64, g)
    assert (out - boxes).abs().max() <= torch.tensor(4.0) + 1e-5  # 0.1 * 40 at most
    assert (out - boxes).abs().max() > 0
    assert jitter_boxes(torch.tensor([[0.0, 0.0, 64.0, 64.0]]), 0.5, 64, 64, g).min() >= 0
    with pytest.raises(KeyError):
        ActionDetector(resnet(18, width=0.125), 4)({"rgb": torch.zeros(1, 3, 1, 32, 32)})
