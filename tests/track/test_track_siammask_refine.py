"""SiamMask's refinement stage: parameters trained, refined-mask loss, RoW windows, tracker path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepvideo.engine.checkpoint import read_weights, save_checkpoint
from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.loop import train
from deepvideo.engine.task import create_task
from deepvideo.engine.tasks.siamrpn import REFINE_TRAINED
from deepvideo.track.siamrpn import SiamMask, row_windows, score_size
from deepvideo.track.siamrpn_loss import MASK_WEIGHT, refined_mask_loss, row_mask_iou
from deepvideo.track.trackers import siamrpn as T

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "track"
KWARGS = "{width: 0.125, blocks: [1, 1, 1], channels: 8, refine: true}"


def tiny_base() -> SiamMask:
    torch.manual_seed(0)
    return SiamMask(width=0.125, blocks=(1, 1, 1), channels=8)


class SquarePairs143(torch.utils.data.Dataset):
    """A red square on noise, 60 px, near the centre of a 143-pixel search crop; ``mask`` the square."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, key) -> dict:
        i = int(key[0]) if isinstance(key, (tuple, list)) else int(key)
        g = torch.Generator().manual_seed(i)
        exemplar = (110 + 40 * torch.randn(3, 127, 127, generator=g)).clamp(0, 255)
        search = (110 + 40 * torch.randn(3, 143, 143, generator=g)).clamp(0, 255)
        red = torch.tensor([230.0, 40, 40])[:, None, None]
        exemplar[:, 33:93, 33:93] = red
        x0 = 38 + 2 * i
        search[:, x0:x0 + 60, x0:x0 + 60] = red
        mask = torch.zeros(143, 143)
        mask[x0:x0 + 60, x0:x0 + 60] = 1
        return {"exemplar": exemplar, "search": search, "mask": mask,
                "target": torch.tensor([x0, x0, 60, 60], dtype=torch.float32)}


def refine_overrides(out, base, *extra: str) -> list[str]:
    return ["task=siamrpn", "model.name=siammask", f"model.kwargs={KWARGS}", f"output_dir={out}",
            f"model.init_from=[{{checkpoint: {base}}}]", "data.num_workers=0", "train.amp=none",
            "train.batch_size=2",
            "train.lr=0.05", "train.optimizer=sgd", "train.momentum=0.9", "train.weight_decay=0.0001",
            "train.monitor=val_mask_iou", "train.epochs=1", "deterministic=true", "seed=0", *extra]


def test_refine_stage_trains_only_the_refinement_module_and_mask_convs(tmp_path):
    torch.set_num_threads(1)
    base = save_checkpoint(tmp_path / "base", tiny_base(), {"network": "siammask"})
    before = read_weights(base)
    cfg = load_config(overrides=refine_overrides(tmp_path / "run", base))
    result = train(cfg, train_dataset=SquarePairs143(), val_dataset=SquarePairs143(), progress=False)
    after = read_weights(result.last_checkpoint)
    assert any(k.startswith("refine.") for k in after)
    trained = {k for k in before if k.startswith(REFINE_TRAINED)}
    assert trained and {k.split(".")[1] for k in trained} == {"template", "search"}   # mask.template/search
    for key, value in before.items():   # backbone, adjust, RPN, mask head (and their BN statistics) unchanged
        if key not in trained:
            assert torch.equal(after[key], value), key
    changed = [k for k in trained if k.endswith("weight") and not torch.equal(after[k], before[k])]
    assert changed, "the mask branch's convs did not move"
    row = result.history[-1]
    assert set(row) >= {"train_loss", "train_mask_iou", "val_loss", "val_mask_iou", "val_mask_iou_branch"}
    assert 0 <= row["val_mask_iou"] <= 1 and 0 <= row["val_mask_iou_branch"] <= 1


def test_refine_stage_config_errors(tmp_path):
    no_base = create_task(load_config(overrides=["task=siamrpn", "model.name=siammask",
                                                 f"model.kwargs={KWARGS}"]))
    with pytest.raises(ConfigError, match=r"refinement module.*set model.init_from"):
        no_base.build_model()
    rpn = create_task(load_config(overrides=["task=siamrpn", "model.name=siamrpnpp",
                                             "model.kwargs={refine: true}",
                                             f"model.init_from=[{{checkpoint: {tmp_path}}}]"]))
    with pytest.raises(ConfigError, match="SiamMask's refinement stage; model.name is 'siamrpnpp'"):
        rpn.build_model()


def test_refined_mask_loss_is_the_logistic_loss_over_the_rows_window():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 127, 127, generator=g) * 3
    masks = torch.zeros(1, 143, 143)
    masks[0, 30:90, 50:120] = 1
    rows = torch.tensor([[0, 5, 5], [0, 0, 1]])      # the centre RoW of 11×11 and one past the border
    labels = np.full((2, 127, 127), -1.0)
    for p, (_, r, c) in enumerate(rows.tolist()):
        top, left = 8 + 8 * (r - 5), 8 + 8 * (c - 5)  # the centre RoW's window starts at pixel 8
        for y in range(max(0, -top), min(127, 143 - top)):
            for x in range(max(0, -left), min(127, 143 - left)):
                if masks[0, top + y, left + x] > 0.5:
                    labels[p, y, x] = 1.0
    m = logits[:, 0].double().numpy()
    expected = np.log1p(np.exp(-labels * m)).mean()   # (1 / P·127²) Σ log(1 + exp(-c m))
    assert float(refined_mask_loss(logits, masks, rows, score_size(143))) == pytest.approx(expected, rel=1e-5)
    truth = torch.from_numpy(labels)
    assert torch.equal(row_mask_iou(truth, truth), torch.ones(2))
    pred = (torch.from_numpy(m) > 0) & (truth > 0)
    union = ((torch.from_numpy(m) > 0) | (truth > 0)).flatten(1).sum(1)
    assert torch.allclose(row_mask_iou(logits[:, 0], truth), pred.flatten(1).sum(1) / union)
    assert MASK_WEIGHT == 36.0                        # the authors' refinement-stage weight


def test_row_windows_match_pysot_paddings_on_a_255_search():
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(1, 2, side, side, generator=g) for side in (125, 63, 31)]   # 255-pixel search
    rows = torch.tensor([[0, 0, 24], [0, 12, 3]])
    windows = row_windows(feats, rows, 25)
    for level, (pad, step, win) in enumerate(((16, 4, 61), (8, 2, 31), (4, 1, 15))):
        padded = F.pad(feats[level], [pad] * 4)
        for p, (_, r, c) in enumerate(rows.tolist()):
            want = padded[0, :, step * r:step * r + win, step * c:step * c + win]
            assert torch.equal(windows[level][p], want)


def test_score_size_and_refined_rows_on_a_143_search():
    model = SiamMask(width=0.125, blocks=(1, 1, 1), channels=8, refine=True).eval()
    rows = torch.tensor([[0, 5, 5], [1, 4, 6]])
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 127, 127), torch.rand(2, 3, 143, 143) * 255, rows=rows)
        assert out["cls"].shape[-1] == score_size(143) == 11
        assert out["refined"].shape == (2, 1, 127, 127)
        alone = model.refined_mask(model.match(model.embed_template(torch.zeros(1, 3, 127, 127)),
                                               torch.zeros(1, 3, 255, 255)), 12, 12)
    assert alone.shape == (1, 1, 127, 127)


class RefinedOutputs(torch.nn.Module):
    """Foreground only at anchor 2 of RoW (12, 16); the 63×63 branch says all foreground, the
    refinement says foreground only in the left half of the 127×127 window."""

    def __init__(self):
        super().__init__()
        self.refine = torch.nn.Identity()
        self.calls = []

    def embed_template(self, z):
        return z.mean()

    def match(self, zf, x):
        cls = torch.full((1, 10, 25, 25), -10.0)
        cls[0, 5 + 2, 12, 16] = 10.0
        return {"cls": cls, "loc": torch.zeros(1, 20, 25, 25), "mask": torch.full((1, 63 * 63, 25, 25), 10.0)}

    def refined_mask(self, out, row, col):
        self.calls.append((row, col))
        logits = torch.full((1, 1, 127, 127), -10.0)
        logits[..., :63] = 10.0
        return logits


def test_tracker_takes_the_mask_from_the_refinement_module():
    model = RefinedOutputs()
    tracker = T.SiamMaskTracker(model=model)
    frame = np.full((200, 200, 3), 100, np.uint8)
    tracker.initialize(frame, (80, 80, 40, 40))
    result = tracker.track(frame)
    assert model.calls == [(12, 16)]
    shift = 4 * 8 * 80 / 127                          # RoW (12, 16): the window 80 frame pixels wide
    mask = result.extras["mask"]
    assert mask[100, int(100 + shift - 20)] and not mask[100, int(100 + shift + 20)]
    mx, _, mw, mh = result.extras["mask_box"]
    assert mx == pytest.approx(60 + shift, abs=1.5)
    assert (mw, mh) == pytest.approx((40, 80), abs=2)


def test_recipe_is_the_authors_refinement_stage():
    cfg = load_config(RECIPES / "siammask_refine.yaml")
    assert cfg.model.kwargs["refine"] is True and cfg.model.init_from
    assert cfg.train.lr == 0.01 and cfg.train.min_lr == 0.0025 and cfg.train.optimizer == "sgd"
    pairs = dict(cfg.data.train["pairs"])
    assert pairs["search_size"] == 143 and pairs["shift"] == 8 and pairs["search_blur"] == 0.18
    assert pairs["exemplar_shift"] == 4 and pairs["exemplar_scale"] == 0.05 and pairs["gray_share"] == 0.25


def test_refine_convs_start_kaiming_uniform_a1_as_the_authors():
    refine = SiamMask(width=0.125, blocks=(1, 1, 1), channels=8, refine=True).refine
    conv = refine.skip[0][0]                           # 8 -> 16 channels, 3×3: fan_in 72
    weight = conv.weight.detach()
    fan_in = conv.in_channels * 9
    bound = math.sqrt(6 / ((1 + 1.0 ** 2) * fan_in))    # Kaiming uniform, a = 1
    assert float(weight.abs().max()) <= bound
    assert float(weight.abs().max()) > 1 / math.sqrt(fan_in)   # beyond PyTorch's default bound
