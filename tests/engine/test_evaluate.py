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


# --- end to end on a tiny trained run --------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A motion-stream run trained for one epoch on rendered 32x32 motion-shapes videos (+ DIS flow)."""
    from deepvideo.engine.config import load_config
    from deepvideo.engine.demo import data_overrides, make_data, make_flow
    from deepvideo.engine.loop import train

    root = tmp_path_factory.mktemp("tiny")
    data = make_data(root / "data", {"set": "motion-shapes", "videos_per_class": 3, "size": 32, "frames": 10,
                                     "seed": 0, "workers": 1}, False)
    make_flow(data / "videos", root / "flow", "dis", 8.0, False)
    cfg = load_config(None, [*data_overrides(data, root / "flow", 1), "model.name=demo_temporal_cnn",
                             "model.spec.crop_size=24", "train.epochs=1", "train.batch_size=4", "device=cpu",
                             "data.num_workers=0", "eval.num_clips=2", "eval.batch_size=4",
                             f"output_dir={root / 'run'}", "train.monitor=train_loss"])
    run = train(cfg, progress=False)
    return run, data


def test_evaluate_checkpoint_writes_everything(tiny_run):
    run, data = tiny_run
    res = E.evaluate_checkpoint(run.run_dir, progress=False)
    assert res.out_dir == run.run_dir / "test"
    for name in ("scores.npz", "metrics.json", "report.md", "confusion.csv", "confusion.png", "curves.png"):
        assert (res.out_dir / name).is_file(), name
    s = res.scores
    assert s.view_logits.shape == (10, 2, 10)  # 10 test videos, 2 clips each, 10 classes
    assert s.video_ids[0] == "MoveLeft/v_MoveLeft_g01_c01.mp4"  # relative to the video root
    assert s.meta["split"] == 1 and s.meta["num_clips"] == 2
    np.testing.assert_array_equal(sorted(s.labels), np.arange(10))
    assert 0 <= res.metrics["video_hit@1"] <= 1 and res.metrics["num_views"] == 2
    assert "2 clip(s) x 1 crop(s)" in (res.out_dir / "report.md").read_text()


def test_evaluate_views_crops_flips_and_full_frame(tiny_run, tmp_path):
    run, _ = tiny_run
    res = E.evaluate_checkpoint(run.run_dir, num_clips=1, test_crops=3, flip=True, out_dir=tmp_path / "a",
                                aggregation="max", progress=False)
    assert res.scores.view_logits.shape[1] == 6 and res.scores.aggregate == "max"
    np.testing.assert_allclose(res.scores.scores, res.scores.view_logits.max(axis=1))
    full = E.evaluate_checkpoint(run.run_dir, num_clips=1, fully_convolutional=True, flip=True,
                                 out_dir=tmp_path / "b", progress=False)
    assert full.scores.view_logits.shape[1] == 2  # whole frame + its mirror image
    assert "whole frame" in (tmp_path / "b" / "report.md").read_text()


def test_evaluate_train_subset_and_other_split(tiny_run, tmp_path):
    run, _ = tiny_run
    tr = E.evaluate_checkpoint(run.run_dir, subset="train", num_clips=1, progress=False)
    assert tr.out_dir.name == "test-train" and len(tr.scores.video_ids) == 20
    s2 = E.evaluate_checkpoint(run.run_dir, split=2, out_dir=tmp_path / "s2", progress=False)
    s1 = load_scores(run.run_dir / "test")
    assert s2.scores.meta["split"] == 2 and not set(s1.video_ids) & set(s2.scores.video_ids)


def test_predict_reports_bad_videos_and_keeps_going(tiny_run, tmp_path):
    run, data = tiny_run
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    good = data / "videos" / "MoveUp" / "v_MoveUp_g01_c01.mp4"
    predictor = E.load_for_inference(run.run_dir, num_clips=2)
    out = E.predict_videos(predictor, [str(bad), str(good), str(tmp_path / "missing.mp4")], top_k=3)
    assert "broken.mp4: not a readable video" in out[0]["error"] and "top" not in out[0]
    assert out[2]["error"] == "no such file or folder"
    top = out[1]["top"]
    assert len(top) == 3 and top[0]["class"] in predictor.class_names
    probs = [p["probability"] for p in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6


def test_three_split_protocol_loops_over_splits(tmp_path, monkeypatch):
    """Each split trains with its own split overrides and run folder; the mean is reported."""
    import deepvideo.engine.splits as splits
    from deepvideo.engine.loop import RunResult

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: ucf\noutput_dir: {tmp_path}/runs/ucf\nmodel: {{name: demo_spatial_cnn}}\n"
                      "data:\n  train: {format: ucf101, root: x, split: 1, subset: train}\n"
                      "  test: {format: ucf101, root: x, split: 1, subset: test}\n")
    calls = []

    def fake_train(config_path, overrides, progress=None):
        calls.append(list(overrides))
        split = int(next(o for o in overrides if o.startswith("data.train.split=")).split("=")[1])
        run_dir = tmp_path / "runs" / f"ucf_split{split}"
        return RunResult(run_dir=run_dir, last_checkpoint=run_dir / "checkpoints" / "last",
                         best_checkpoint=None)

    def fake_eval(ckpt, progress=None, name=None):
        split = int(name.split()[1])
        assert str(ckpt).endswith(f"ucf_split{split}/checkpoints/last")
        return E.EvalResult(name, {"video_hit@1": 0.5 + 0.1 * split, "clip_hit@1": 0.4, "num_videos": 10,
                                   "confusion": np.eye(2)}, tmp_path / f"t{split}", None, [])

    monkeypatch.setattr(splits, "main_train", fake_train)
    monkeypatch.setattr(splits, "evaluate_checkpoint", fake_eval)
    out = splits.three_split_protocol(recipe, ["train.epochs=1"])
    assert len(calls) == 3
    for s, ov in enumerate(calls, 1):
        assert ov[0] == "train.epochs=1"
        assert {f"data.train.split={s}", f"data.test.split={s}", f"name=ucf_split{s}"} <= set(ov)
        assert f"output_dir={tmp_path}/runs/ucf_split{s}" in ov
    assert out["mean"]["video_hit@1"] == pytest.approx(0.7)
    report = (tmp_path / "runs" / "ucf_splits" / "report.md").read_text()
    assert "| split 2 | 40.0 | 70.0 |" in report and "| mean | 40.0 | 70.0 |" in report
    summary = json.loads((tmp_path / "runs" / "ucf_splits" / "summary.json").read_text())
    assert summary["mean"]["num_videos"] == 10 and summary["splits"]["split 3"]["video_hit@1"] == 0.8
