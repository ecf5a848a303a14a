"""One scoring path: validation during training and `deepvideo test` give identical scores;
`deepvideo test` says how many videos it evaluated and names the unreadable ones; epoch lines."""

from __future__ import annotations

import io
import json
import re
import shutil

import pytest
import torch
import torch.nn.functional as F

from deepvideo.engine.config import load_config
from deepvideo.engine.evaluate import evaluate_checkpoint
from deepvideo.engine.loop import main_train, train
from deepvideo.engine.runlog import RunLogger, read_csv


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory, helpers):
    """A TinyNet returning [N,K,T'] score maps, trained 2 epochs with a validation set; its test
    split is the same videos with one of them corrupt."""
    root = tmp_path_factory.mktemp("scoring")
    helpers.make_videos(root / "videos", classes=2, per_class=3)
    shutil.copytree(root / "videos", root / "test_videos")
    broken = root / "test_videos" / "class1" / "v1.mp4"
    broken.write_bytes(b"\x00garbage, not an mp4" * 20)
    folder = {"format": "folder", "root": str(root / "videos")}
    recipe = helpers.write_recipe(root / "r.yaml", root / "videos", root / "run",
                          model={"kwargs": {"dense": True}},
                          data={"val": folder, "test": {**folder, "root": str(root / "test_videos")}},
                          eval={"num_clips": 1, "test_crops": 1, "flip": False, "batch_size": 4})
    return main_train(recipe, ["train.batch_size=2"], progress=False), broken


def test_validation_and_test_give_identical_scores_for_score_maps(dense_run):
    run, _ = dense_run
    val = run.history[-1]  # validated with the weights of checkpoints/last
    res = evaluate_checkpoint(run.last_checkpoint, subset="val", progress=False)
    assert res.scores.view_logits.shape == (6, 1, 2)
    scores = torch.from_numpy(res.scores.view_logits).mean(dim=1)
    labels = torch.from_numpy(res.scores.labels)
    assert val["val_top1"] == 100.0 * float((scores.argmax(1) == labels).float().mean())
    assert val["val_top1"] == 100.0 * res.metrics["clip_hit@1"]
    assert val["val_loss"] == pytest.approx(float(F.cross_entropy(scores, labels)), rel=1e-6, abs=0)
    assert res.metrics["videos_total"] == res.metrics["videos_evaluated"] == 6


def test_test_reports_unreadable_videos_and_never_shrinks_silently(dense_run, tmp_path):
    from typer.testing import CliRunner

    from deepvideo.cli.main import app

    run, broken = dense_run
    res = evaluate_checkpoint(run.last_checkpoint, out_dir=tmp_path / "t", progress=False)
    assert res.metrics["videos_total"] == 6 and res.metrics["videos_evaluated"] == 5
    assert [b["path"] for b in res.unreadable] == [str(broken)] and res.unreadable[0]["error"]
    assert len(res.scores.video_ids) == 5 and "class1/v1.mp4" not in res.scores.video_ids
    payload = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert payload["metrics"]["videos_evaluated"] == 5 and payload["unreadable"][0]["path"] == str(broken)
    assert "5 of 6 videos evaluated" in (tmp_path / "t" / "report.md").read_text()
    out = CliRunner().invoke(app, ["test", str(run.last_checkpoint), "--out", str(tmp_path / "cli")])
    assert out.exit_code == 0, out.output
    assert "evaluated 5 of 6 videos" in out.output and f"unreadable (not scored): {broken}" in out.output


def test_epoch_lines_when_stdout_is_not_a_terminal(tmp_path, capsys, helpers):
    cfg = load_config(overrides=[f"model.name={helpers.TINY_MODEL}", f"output_dir={tmp_path / 'run'}",
                                 "data.num_workers=0", "train.amp=none", "train.epochs=3",
                                 "train.batch_size=4", "train.lr=0.1"])
    torch.manual_seed(0)
    train(cfg, model=helpers.TinyNet(2), train_dataset=helpers.TensorClips(8),
          val_dataset=helpers.TensorClips(4, seed=1),
          progress=None)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch ")]
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert len(lines) == 3
    pattern = (r"epoch (\d)/3  train loss (\d+\.\d{4})  top-1 (\d+\.\d)%  val top-1 (\d+\.\d)%  "
               r"\d+\.\d clips/s  \d+\.\d s  ETA (\d+\.\d) s")
    for line, row in zip(lines, rows, strict=True):
        m = re.fullmatch(pattern, line)
        assert m, line
        assert int(m[1]) == row["epoch"] and float(m[2]) == pytest.approx(row["train_loss"], abs=5e-5)
        assert float(m[3]) == pytest.approx(row["train_top1"], abs=0.05)
        assert float(m[4]) == pytest.approx(row["val_top1"], abs=0.05)
    assert lines[-1].endswith("ETA 0.0 s")


class _Tty:
    def __init__(self):
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def test_no_epoch_lines_beside_the_live_bar_on_a_terminal(tmp_path):
    tty = _Tty()
    logger = RunLogger(tmp_path, tensorboard=False, progress=True, stream=tty)
    logger.start_epoch(1, 2, 8)
    logger.end_epoch()
    logger.log_epoch({"epoch": 1, "step": 2, "train_loss": 0.5, "epoch_time_s": 1.0})
    assert tty.text == ""
    stream = io.StringIO()
    piped = RunLogger(tmp_path / "b", tensorboard=False, progress=True, stream=stream)
    piped.start_epoch(1, 2, 8)
    piped.end_epoch()
    piped.log_epoch({"epoch": 1, "step": 2, "train_loss": 0.5, "epoch_time_s": 2.0})
    assert stream.getvalue() == "epoch 1/2  train loss 0.5000  2.0 s  ETA 2.0 s\n"
