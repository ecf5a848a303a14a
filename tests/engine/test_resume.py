"""Exact resume: a run killed with SIGKILL and resumed ends with the uninterrupted run's weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from engine_helpers import SLOW_ENV, TINY_MODEL, TensorClips, TinyNet, make_videos, state_of, write_recipe

from deepvideo.engine.config import load_config
from deepvideo.engine.loop import train


def _launch(recipe, *overrides, slow: float | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != SLOW_ENV}
    env["OMP_NUM_THREADS"] = "1"
    if slow:
        env[SLOW_ENV] = str(slow)
    return subprocess.Popen(
        [sys.executable, "-m", "deepvideo", "train", str(recipe), *overrides],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = 200) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"training failed:\n{out}\n{err}"
    return out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_mid_training_then_resume_matches_uninterrupted_run(tmp_path):
    videos = tmp_path / "videos"
    make_videos(videos, classes=2, per_class=6, frames=12)  # 12 videos: 3 iterations of 4 per epoch
    common = {
        "train": {"epochs": 3, "checkpoint_every_iters": 1, "optimizer": "sgd", "momentum": 0.9},
        "model": {"name": "engine_test_tiny3d_bn", "kwargs": {"dropout": 0.3}},
        "data": {"num_workers": 1},
    }
    ref_recipe = write_recipe(tmp_path / "ref.yaml", videos, tmp_path / "ref", **common)
    cut_recipe = write_recipe(tmp_path / "cut.yaml", videos, tmp_path / "cut", **common)
    ref = _launch(ref_recipe)  # runs alongside the interrupted one
    cut = _launch(cut_recipe, slow=0.25)
    meta_path = tmp_path / "cut" / "checkpoints" / "last" / "checkpoint.json"
    deadline = time.monotonic() + 200
    meta = None
    while time.monotonic() < deadline and cut.poll() is None:
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            meta = None
        if meta and meta["epoch"] >= 1 and meta["iter_in_epoch"] >= 1:  # epoch 1 done, inside epoch 2
            break
        time.sleep(0.02)
    assert cut.poll() is None, f"the run ended before it could be killed:\n{cut.communicate()}"
    cut.send_signal(signal.SIGKILL)
    cut.communicate(timeout=60)
    assert cut.returncode == -signal.SIGKILL
    killed_at = json.loads(meta_path.read_text())
    assert killed_at["epoch"] < 3  # really interrupted mid-training

    _finish(_launch(cut_recipe, "resume=true"))
    _finish(ref)
    a, b = state_of(tmp_path / "ref"), state_of(tmp_path / "cut")
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    ref_rows = (tmp_path / "ref" / "metrics.csv").read_text().splitlines()
    cut_rows = (tmp_path / "cut" / "metrics.csv").read_text().splitlines()
    assert len(ref_rows) == 4
    for r, c in zip(ref_rows, cut_rows, strict=True):  # same history up to the timing columns
        assert r.split(",")[:8] == c.split(",")[:8]
    log = (tmp_path / "cut" / "train.log").read_text()
    assert f"resumed from {tmp_path / 'cut' / 'checkpoints' / 'last'}" in log


def test_resume_at_an_epoch_boundary_in_process(tmp_path):
    def cfg(out, epochs, resume=False):
        return load_config(
            overrides=[
                f"model.name={TINY_MODEL}",
                f"output_dir={out}",
                "data.num_workers=0",
                "train.amp=none",
                f"train.epochs={epochs}",
                "train.batch_size=4",
                "train.schedule=step",
                "train.milestones=[1]",
                "deterministic=true",
                f"resume={str(resume).lower()}",
                "train.optimizer=adamw",
                "train.lr=0.01",
            ]
        )

    torch.manual_seed(0)
    full = TinyNet(2, dropout=0.2)
    train(cfg(tmp_path / "a", 2), model=full, train_dataset=TensorClips(12), progress=False)
    torch.manual_seed(0)
    train(
        cfg(tmp_path / "b", 1), model=TinyNet(2, dropout=0.2), train_dataset=TensorClips(12), progress=False
    )
    resumed = TinyNet(2, dropout=0.2)  # fresh weights: everything must come from the checkpoint
    result = train(
        cfg(tmp_path / "b", 2, resume=True), model=resumed, train_dataset=TensorClips(12), progress=False
    )
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert len((tmp_path / "b" / "metrics.csv").read_text().splitlines()) == 3


class _Interrupted(RuntimeError):
    pass


class _DiesAt(TensorClips):
    """TensorClips whose ``die_at``-th item read raises (a run killed mid-epoch)."""

    def __init__(self, n: int, die_at: int):
        super().__init__(n)
        self.reads, self.die_at = 0, die_at

    def __getitem__(self, key):
        self.reads += 1
        if self.reads == self.die_at:
            raise _Interrupted("killed")
        return super().__getitem__(key)


def test_mid_epoch_checkpoint_written_before_engine_ii_resumes_exactly(tmp_path):
    """train_state.pt files of earlier versions hold the running sums as [loss*n, top-1 hits, n]."""

    def cfg(out, resume=False):
        return load_config(overrides=[f"model.name={TINY_MODEL}", f"output_dir={out}", "data.num_workers=0",
                                      "train.amp=none", "train.epochs=2", "train.batch_size=4",
                                      "train.lr=0.05", "train.checkpoint_every_iters=1", "deterministic=true",
                                      f"resume={str(resume).lower()}"])

    torch.manual_seed(0)
    ref = train(cfg(tmp_path / "a"), model=TinyNet(2), train_dataset=TensorClips(12), progress=False)
    torch.manual_seed(0)
    with pytest.raises(_Interrupted):  # 3 iterations of 4 clips per epoch: dies in epoch 2, iteration 2
        train(cfg(tmp_path / "b"), model=TinyNet(2), train_dataset=_DiesAt(12, 12 + 4 + 1), progress=False)
    state_file = tmp_path / "b" / "checkpoints" / "last" / "train_state.pt"
    state = torch.load(state_file, weights_only=True)
    assert (state["epoch"], state["iter_in_epoch"]) == (1, 1)
    sums = state["epoch_sums"]
    state["epoch_sums"] = [sums["loss"], sums["top1"] / 100.0, sums["n"]]  # the earlier layout
    torch.save(state, state_file)
    resumed = train(cfg(tmp_path / "b", resume=True), model=TinyNet(2), train_dataset=TensorClips(12),
                    progress=False)
    assert resumed.history[-1]["train_loss"] == ref.history[-1]["train_loss"]
    assert resumed.history[-1]["train_top1"] == ref.history[-1]["train_top1"]
    a, b = state_of(tmp_path / "a"), state_of(tmp_path / "b")
    for k in a:
        assert torch.equal(a[k], b[k]), k
