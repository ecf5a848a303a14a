"""`deepvideo train / test / predict / fuse / demo`: arguments, outputs and error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.engine.fusion import ScoreSet, load_scores, save_scores

runner = CliRunner()


def _scores(path, scores, labels=(0, 1, 2, 0), ids=None):
    scores = np.asarray(scores, dtype=np.float32)
    ids = ids or [f"v{i}.mp4" for i in range(len(labels))]
    return save_scores(path, ScoreSet(ids, np.array(labels), scores[:, None], scores, ["a", "b", "c"]))


@pytest.fixture
def two_streams(tmp_path):
    # stream a is right on videos 0, 1; stream b is right on 2, 3 and more confident
    a = _scores(tmp_path / "a" / "scores.npz", [[2, 0, 0], [0, 2, 0], [2, 0, 0], [0, 2, 0]])
    b = _scores(tmp_path / "b" / "scores.npz", [[0, 0, 1], [0, 0, 1], [0, 0, 5], [5, 0, 0]])
    return a, b


def test_commands_are_registered():
    result = runner.invoke(app, ["--help"])
    for name in ("train", "test", "predict", "fuse", "demo"):
        assert name in result.output


def test_fuse_weighted_prints_table_and_writes(two_streams, tmp_path):
    a, b = two_streams
    result = runner.invoke(app, ["fuse", str(a), str(b), "--weights", "1,3", "--space", "logits",
                                 "--out", str(tmp_path / "fused")])
    assert result.exit_code == 0, result.output
    assert "fused (1,3)" in result.output and "Late fusion" in result.output
    fused = load_scores(tmp_path / "fused")
    np.testing.assert_allclose(fused.scores[2], [0.5, 0, 3.75])
    report = (tmp_path / "fused" / "report.md").read_text()
    assert "| fused (1,3) |" in report


def test_fuse_svm(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.arange(12) % 3
    good = rng.normal(0, 0.1, (12, 3))
    good[np.arange(12), labels] += 2
    noise = rng.normal(size=(12, 3))
    ids = [f"t{i}" for i in range(12)]
    tr = [_scores(tmp_path / f"tr{i}.npz", s, labels, ids) for i, s in enumerate((noise, good))]
    te = [_scores(tmp_path / f"te{i}.npz", s, labels, ids) for i, s in enumerate((noise, good))]
    result = runner.invoke(app, ["fuse", str(te[0]), str(te[1]), "--svm", f"{tr[0]},{tr[1]}"])
    assert result.exit_code == 0, result.output
    assert "fused (svm)" in result.output and "100.0" in result.output


@pytest.mark.parametrize("args, message", [
    (["--weights", "1,x"], "--weights must be comma-separated numbers"),
    (["--weights", "1,2,3"], "3 weights given for 2"),
    (["--svm", "only_one.npz"], "--svm needs one train scores file per model"),
])
def test_fuse_argument_errors(two_streams, args, message):
    a, b = two_streams
    result = runner.invoke(app, ["fuse", str(a), str(b), *args])
    assert result.exit_code != 0
    assert message in result.output


def test_fuse_mismatched_videos_names_the_file(two_streams, tmp_path):
    a, _ = two_streams
    other = _scores(tmp_path / "other.npz", np.eye(3)[[0, 1, 2, 0]], ids=["x0", "x1", "x2", "x3"])
    result = runner.invoke(app, ["fuse", str(a), str(other)])
    assert result.exit_code == 1
    assert "other.npz: videos differ" in result.output


def test_fuse_missing_file(tmp_path):
    result = runner.invoke(app, ["fuse", str(tmp_path / "nope.npz")])
    assert result.exit_code == 1 and "nope.npz: no such scores file" in result.output


def test_train_reports_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: demo_spatial_cnn}\ntrain: {epochs: 0}\n")
    result = runner.invoke(app, ["train", str(bad)])
    assert result.exit_code == 2
    assert "train.epochs must be >= 1" in result.output
    result = runner.invoke(app, ["train", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "missing.yaml" in result.output


def test_test_and_predict_argument_checks(tmp_path):
    result = runner.invoke(app, ["test", str(tmp_path), "--crops", "5"])
    assert result.exit_code == 2 and "--crops must be 1, 3 or 10" in result.output
    result = runner.invoke(app, ["test", str(tmp_path), "--aggregate", "median"])
    assert result.exit_code == 2 and "--aggregate must be one of" in result.output
    result = runner.invoke(app, ["test", str(tmp_path)])
    assert result.exit_code == 1 and "not a deepvideo checkpoint" in result.output
    result = runner.invoke(app, ["predict", str(tmp_path), "x.mp4"])
    assert result.exit_code == 1 and "not a deepvideo checkpoint" in result.output



@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`deepvideo train` on a tiny appearance recipe over rendered motion-shapes videos."""
    from deepvideo.engine.demo import data_overrides, make_data

    root = tmp_path_factory.mktemp("cli")
    data = make_data(root / "data", {"set": "motion-shapes", "videos_per_class": 3, "size": 32, "frames": 8,
                                     "seed": 1, "workers": 1}, False)
    recipe = root / "tiny.yaml"
    recipe.write_text("model: {name: demo_spatial_cnn, spec: {crop_size: 24}}\n"
                      "train: {epochs: 1, batch_size: 4, monitor: train_loss}\n"
                      "data: {num_workers: 0}\neval: {num_clips: 2, batch_size: 4}\ndevice: cpu\n")
    overrides = [o for o in data_overrides(data, root / "flow", 1) if "flow_root" not in o]
    result = runner.invoke(app, ["train", str(recipe), *overrides, f"output_dir={root / 'run'}"])
    assert result.exit_code == 0, result.output
    return root / "run", data


def test_train_then_test_cli(cli_run):
    run, _ = cli_run
    assert (run / "checkpoints" / "last" / "model.safetensors").is_file()
    result = runner.invoke(app, ["test", str(run), "--views", "3", "--crops", "1", "--flip",
                                 "--aggregate", "softmax", "--out", str(run / "t3")])
    assert result.exit_code == 0, result.output
    assert "video hit@1" in result.output and str(run / "t3") in result.output.replace("\n", "")
    s = load_scores(run / "t3")
    assert s.view_logits.shape == (10, 6, 10) and s.aggregate == "softmax"
    np.testing.assert_allclose(s.scores.sum(axis=1), 1.0, rtol=1e-5)  # averaged probabilities


def test_predict_cli_text_json_and_bad_video(cli_run, tmp_path):
    run, data = cli_run
    good = data / "videos" / "Grow" / "v_Grow_g01_c01.mp4"
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 10)
    result = runner.invoke(app, ["predict", str(run), str(good), "--top-k", "2"])
    assert result.exit_code == 0, result.output
    assert str(good) in result.output and "  1. " in result.output and "  3. " not in result.output
    result = runner.invoke(app, ["predict", str(run), str(bad), str(good), "--json"])
    assert result.exit_code == 1
    assert "error: " in result.output and "bad.mp4" in result.output
    doc = json.loads(result.output[result.output.index("{"): result.output.rindex("}") + 1])
    preds = {p["video"]: p for p in doc["predictions"]}
    assert len(preds[str(good)]["top"]) == 5 and "error" in preds[str(bad)]


def test_train_splits_option(tmp_path, monkeypatch):
    import deepvideo.engine.splits as splits

    seen = {}

    def fake(config, overrides, splits):
        seen.update(config=str(config), overrides=overrides, splits=splits)
        return {"per_split": {"split 1": {"video_hit@1": 0.5}, "split 2": {"video_hit@1": 0.7}},
                "mean": {"video_hit@1": 0.6}, "out_dir": tmp_path}

    monkeypatch.setattr(splits, "three_split_protocol", fake)
    result = runner.invoke(app, ["train", "r.yaml", "train.lr=0.1", "--splits", "1,2"])
    assert result.exit_code == 0, result.output
    assert seen == {"config": "r.yaml", "overrides": ["train.lr=0.1"], "splits": [1, 2]}
    assert "60.0" in result.output and "split 2" in result.output
    result = runner.invoke(app, ["train", "r.yaml", "--splits", "one"])
    assert result.exit_code == 2 and "--splits must be comma-separated" in result.output
