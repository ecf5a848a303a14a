"""Evaluation: view folding, score maps, collected scores, saved outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from deepvideo.engine import evaluate as E
from deepvideo.engine.fusion import load_scores


class MeanColour(nn.Module):
    """Scores = per-channel mean of the rgb clip (3 classes): deterministic and checkable."""

    def __init__(self, maps: bool = False):
        super().__init__()
        self.maps = maps
        self.calls = 0

    def forward(self, batch):
        self.calls += 1
        x = batch["rgb"]  # [N, 3, T, H, W]
        if self.maps:
            return x.mean(dim=2)  # [N, 3, H, W] score maps
        return x.mean(dim=(2, 3, 4))


def test_reduce_logits_averages_maps_and_reads_dicts():
    x = torch.arange(24.0).view(2, 3, 4)
    torch.testing.assert_close(E.reduce_logits(x), x.mean(dim=2))
    maps = torch.randn(2, 3, 2, 5, 5)
    torch.testing.assert_close(E.reduce_logits(maps), maps.flatten(2).mean(2))
    torch.testing.assert_close(E.reduce_logits({"logits": x[:, :, 0], "aux_a": x}), x[:, :, 0])
    with pytest.raises(ValueError, match="without 'logits'"):
        E.reduce_logits({"aux": x})
    with pytest.raises(ValueError, match="must be a"):
        E.reduce_logits(torch.zeros(3))


def test_split_views_folds_and_checks():
    batch = {"rgb": torch.randn(2, 4, 3, 1, 8, 8), "flow": torch.randn(2, 4, 2, 5, 8, 8),
             "label": torch.tensor([0, 1])}
    flat, n, v = E.split_views(batch)
    assert (n, v) == (2, 4)
    assert flat["rgb"].shape == (8, 3, 1, 8, 8) and flat["flow"].shape == (8, 2, 5, 8, 8)
    torch.testing.assert_close(flat["rgb"][5], batch["rgb"][1, 1])
    flat, n, v = E.split_views({"rgb": torch.randn(3, 3, 2, 8, 8)})
    assert (n, v) == (3, 1)
    with pytest.raises(ValueError, match="disagree"):
        E.split_views({"rgb": torch.randn(2, 4, 3, 1, 8, 8), "flow": torch.randn(2, 3, 2, 5, 8, 8)})
    with pytest.raises(ValueError, match="none of the modalities"):
        E.split_views({"label": torch.tensor([1])})


@pytest.mark.parametrize("maps", [False, True])
def test_forward_views_matches_per_view_forward_in_chunks(maps):
    model = MeanColour(maps)
    rgb = torch.randn(3, 5, 3, 2, 4, 4)
    out = E.forward_views(model, {"rgb": rgb}, chunk=4)
    assert out.shape == (3, 5, 3) and model.calls == 4  # 15 views in chunks of 4
    torch.testing.assert_close(out[2, 3], rgb[2, 3].mean(dim=(1, 2, 3)))


def _loader(n_videos=6, views=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_videos) % 3
    batches = []
    for start in range(0, n_videos, 4):
        idx = torch.arange(start, min(n_videos, start + 4))
        rgb = torch.randn(len(idx), views, 3, 1, 4, 4, generator=g) * 0.1
        rgb[torch.arange(len(idx)), :, labels[idx]] += 1.0  # the label's channel is brightest
        batches.append({"rgb": rgb, "label": labels[idx], "index": idx})
    return batches


def test_collect_scores_and_write_evaluation(tmp_path):
    model = MeanColour()
    model.train()
    collected = E.collect_scores(model, _loader())
    assert model.training  # restored
    assert collected.view_logits.shape == (6, 2, 3)
    np.testing.assert_array_equal(collected.indices, np.arange(6))
    ids = [f"class{i % 3}/v{i}.mp4" for i in range(6)]
    scores = E.make_score_set(collected, ids, ["red", "green", "blue"], "mean", {"model": "mean_colour"})
    hist = tmp_path / "metrics.csv"
    hist.write_text("epoch,train_loss,val_top1\n1,1.0,50\n2,0.5,80\n")
    m = E.write_evaluation(tmp_path / "out", scores, title="t", history_csv=hist)
    assert m["video_hit@1"] == 1.0 and m["clip_hit@1"] == 1.0
    assert "video_hit@5" not in m  # only 3 classes: hit@5 would be trivially 1
    saved = load_scores(tmp_path / "out")
    assert saved.video_ids == ids and saved.class_names == ["red", "green", "blue"]
    np.testing.assert_allclose(saved.scores, collected.view_logits.mean(1), rtol=1e-6)
    payload = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert payload["metrics"]["video_hit@1"] == 1.0
    assert payload["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| mean_colour | 100.0 | 100.0 |" in report and "curves.png" in report


def test_collect_scores_drops_substituted_duplicates_and_reports_bad_items():
    batches = _loader(4, 1)
    batches[0]["index"] = torch.tensor([0, 1, 1, 3])  # video 2 was unreadable; 1 delivered twice
    batches[0]["bad_items"] = [{"path": "v2.mp4", "error": "VideoError: broken"}]
    collected = E.collect_scores(MeanColour(), batches)
    np.testing.assert_array_equal(collected.indices, [0, 1, 3])
    assert collected.bad_items == ["v2.mp4: VideoError: broken"]


def test_collect_scores_empty_is_an_error():
    with pytest.raises(ValueError, match="no test videos"):
        E.collect_scores(MeanColour(), [])


def test_mean_over_splits():
    per = {"1": {"video_hit@1": 0.5, "confusion": np.eye(2)}, "2": {"video_hit@1": 0.7},
           "3": {"video_hit@1": 0.9}}
    assert E.mean_over_splits(per) == {"video_hit@1": pytest.approx(0.7)}
