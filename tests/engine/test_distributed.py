"""DDP with torchrun (2 CPU processes, gloo) ends with the single-process run's weights.

Both runs use the same global batch (4): each of the 2 ranks loads 2 clips per step. The
EpochSampler gives rank r the positions r, r+2, ... of the single process's (seed, epoch)
permutation, so the ranks' batches together are exactly the single process's batch; DDP's
averaged gradient equals the global-batch mean gradient. That holds under the conditions
docs/distributed.md states, which this run meets: batch norm frozen (eval mode, so no
per-process batch statistics) and dropout 0 (each process draws its own masks).
"""

from __future__ import annotations

import json

import pytest
import torch
from engine_helpers import TINY_BN_MODEL, make_videos, state_of, train_single_and_ddp, write_recipe
from hypothesis import given, settings
from hypothesis import strategies as st

from deepvideo.data.samplers import EpochSampler
from deepvideo.engine.runlog import read_csv


def test_sharded_order_is_the_single_process_order_interleaved():
    data = list(range(24))
    for epoch in (0, 3):
        single = EpochSampler(data, num_replicas=1, rank=0, seed=5)
        single.set_epoch(epoch)
        order = [i for i, _ in single]
        shards = []
        for rank in range(2):
            s = EpochSampler(data, num_replicas=2, rank=rank, seed=5)
            s.set_epoch(epoch)
            shards.append([i for i, e in s if e == epoch])
        b = 4  # global batch; 2 per rank
        for k in range(len(order) // b):
            ranks = shards[0][k * 2 : (k + 1) * 2] + shards[1][k * 2 : (k + 1) * 2]
            assert sorted(ranks) == sorted(order[k * b : (k + 1) * b])
    s = EpochSampler(data, seed=5)
    s.set_epoch(3)
    s.set_start(10)
    assert len(s) == 14 and [i for i, _ in s] == order[10:]


@settings(max_examples=40, deadline=None)
@given(
    world=st.integers(1, 4),
    per_rank=st.integers(1, 4),
    batches=st.integers(1, 5),
    seed=st.integers(0, 100),
    epoch=st.integers(0, 5),
    start_batches=st.integers(0, 4),
)
def test_rank_batches_union_is_the_global_batch(world, per_rank, batches, seed, epoch, start_batches):
    b = world * per_rank
    n = b * batches
    single = EpochSampler(range(n), seed=seed)
    single.set_epoch(epoch)
    order = [i for i, _ in single]
    assert sorted(order) == list(range(n))
    start = min(start_batches, batches) * per_rank  # resume: skip whole rank batches
    shards = []
    for rank in range(world):
        s = EpochSampler(range(n), num_replicas=world, rank=rank, seed=seed)
        s.set_epoch(epoch)
        s.set_start(start)
        shards.append([i for i, _ in s])
    first = min(start_batches, batches)
    for k in range(first, batches):
        got = [i for shard in shards for i in shard[(k - first) * per_rank : (k - first + 1) * per_rank]]
        assert sorted(got) == sorted(order[k * b : (k + 1) * b])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_torchrun_two_processes_match_one_process(tmp_path):
    videos = tmp_path / "videos"
    make_videos(videos, classes=2, per_class=4)  # 8 clips: 2 global batches of 4 per epoch
    val = tmp_path / "val"
    make_videos(val, classes=2, per_class=2)
    (val / "class1" / "v1.mp4").unlink()  # 3 clips: the ranks validate 2 and 1 batches of 1
    sections = {  # the documented conditions: batch norm frozen, dropout 0
        "model": {"name": TINY_BN_MODEL, "kwargs": {"dropout": 0.0}},
        "train": {"epochs": 2, "batch_size": 4, "optimizer": "sgd", "lr": 0.05, "freeze": ["norm.*"]},
        "data": {"val": {"format": "folder", "root": str(val)}},
        "eval": {"batch_size": 1},
    }
    single = write_recipe(tmp_path / "single.yaml", videos, tmp_path / "single", **sections)
    multi = write_recipe(tmp_path / "ddp.yaml", videos, tmp_path / "ddp", **sections)
    _, out2 = train_single_and_ddp(single, multi)
    assert len([line for line in out2.splitlines() if line.startswith("run written to")]) == 1  # rank 0 alone
    assert len([line for line in out2.splitlines() if line.startswith("epoch 2/")]) == 1  # epoch lines too
    a, b = state_of(tmp_path / "single"), state_of(tmp_path / "ddp")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5)
    ra, rb = read_csv(tmp_path / "single" / "metrics.csv"), read_csv(tmp_path / "ddp" / "metrics.csv")
    for x, y in zip(ra, rb, strict=True):  # metrics all-reduced over both ranks
        assert x["step"] == y["step"]
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4)
        assert x["train_top1"] == y["train_top1"] and x["val_top1"] == y["val_top1"]
        assert x["val_loss"] == pytest.approx(y["val_loss"], rel=1e-4)
    assert json.loads((tmp_path / "ddp" / "run_info.json").read_text())["world_size"] == 2
    assert len(list((tmp_path / "ddp" / "tensorboard").glob("events.*"))) == 1  # rank 0 logs alone
