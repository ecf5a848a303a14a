"""Videos skipped during training are said on the console: a line each, the count per epoch."""

from __future__ import annotations

import io

from engine_helpers import TINY_SPEC, TinyNet, make_videos, simple_sampler, simple_transform

from deepvideo.data.dataset import ClipDataset
from deepvideo.data.record import DatasetIndex, VideoRecord
from deepvideo.engine.config import load_config
from deepvideo.engine.loop import train
from deepvideo.engine.runlog import RunLogger, epoch_line, skipped_line


def test_each_newly_skipped_video_gets_one_line_and_the_epoch_line_counts_them(tmp_path, capsys):
    index = make_videos(tmp_path / "videos", per_class=2)
    broken = tmp_path / "videos" / "class0" / "broken.mp4"
    broken.write_bytes(b"\x00" * 300)
    records = [VideoRecord(str(broken), 0, source="train.txt:7"), *index.records]
    ds = ClipDataset(DatasetIndex(records, index.classes), TINY_SPEC, train=True,
                     sampler=simple_sampler(), transform=simple_transform())
    cfg = load_config(overrides=["model.name=engine_test_tiny3d", f"output_dir={tmp_path / 'run'}",
                                 "data.num_workers=0", "train.amp=none", "train.epochs=2",
                                 "train.batch_size=5", "train.schedule=constant", "seed=1"])
    train(cfg, model=TinyNet(2), train_dataset=ds, progress=False)
    lines = capsys.readouterr().out.splitlines()
    skipped = [ln for ln in lines if ln.startswith("skipped unreadable video")]
    assert skipped == [skipped_line({"path": str(broken), "source": "train.txt:7",
                                     "error": ds.bad_items[0]["error"]})]  # once, though read every epoch
    assert "(listed at train.txt:7)" in skipped[0] and "VideoError" in skipped[0]
    epochs = [ln for ln in lines if ln.startswith("epoch ")]
    assert len(epochs) == 2 and all(ln.endswith("skipped 1") for ln in epochs)
    assert lines.index(skipped[0]) < lines.index(epochs[0])


def test_epoch_line_says_nothing_of_skips_when_there_are_none():
    row = {"epoch": 1, "train_loss": 0.5, "bad_items": 0}
    assert epoch_line(row, 3, None) == "epoch 1/3  train loss 0.5000"
    assert epoch_line({**row, "bad_items": 4}, 3, None) == "epoch 1/3  train loss 0.5000  skipped 4"


def test_skipped_lines_only_on_the_logging_process(tmp_path):
    item = {"path": "a/v.mp4", "source": None, "error": "VideoError: a/v.mp4: file not found"}
    out = io.StringIO()
    RunLogger(tmp_path, enabled=False, tensorboard=False, progress=False, stream=out).skipped(item)
    assert out.getvalue() == ""
    RunLogger(tmp_path, enabled=True, tensorboard=False, progress=False, stream=out).skipped(item)
    assert out.getvalue() == "skipped unreadable video a/v.mp4: VideoError: a/v.mp4: file not found\n"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_skipped_line_while_a_progress_display_runs(tmp_path):
    tty = _Tty()
    logger = RunLogger(tmp_path, tensorboard=False, progress=True, stream=tty)
    logger.start_epoch(1, 2, 8)  # stderr is not a terminal here: the display prints lines
    logger.skipped({"path": "v.mp4", "error": "VideoError: v.mp4: empty file (0 bytes)"})
    logger.advance(4, 0.5, 0.1)
    logger.end_epoch()
    assert tty.getvalue() == "skipped unreadable video v.mp4: VideoError: v.mp4: empty file (0 bytes)\n"


def test_a_resumed_run_does_not_report_its_old_skips_as_new(tmp_path, capsys):
    index = make_videos(tmp_path / "videos", per_class=2)
    broken = tmp_path / "videos" / "class0" / "broken.mp4"
    broken.write_bytes(b"\x00" * 300)
    records = [VideoRecord(str(broken), 0, source="train.txt:7"), *index.records]

    def dataset():
        return ClipDataset(DatasetIndex(records, index.classes), TINY_SPEC, train=True,
                           sampler=simple_sampler(), transform=simple_transform())

    base = ["model.name=engine_test_tiny3d", f"output_dir={tmp_path / 'run'}", "data.num_workers=0",
            "train.amp=none", "train.batch_size=5", "train.schedule=constant", "seed=1"]
    train(load_config(overrides=[*base, "train.epochs=1"]), model=TinyNet(2), train_dataset=dataset(),
          progress=False)
    capsys.readouterr()
    result = train(load_config(overrides=[*base, "train.epochs=2", "resume=true"]), model=TinyNet(2),
                   train_dataset=dataset(), progress=False)
    lines = capsys.readouterr().out.splitlines()
    assert not [ln for ln in lines if ln.startswith("skipped unreadable video")]
    assert [b["path"] for b in result.bad_items] == [str(broken)]
    assert [ln for ln in lines if ln.startswith("epoch ")][-1].endswith("skipped 1")
