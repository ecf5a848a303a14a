"""ClipDataset: modalities from the spec, (seed, epoch, index) randomness, flow sources, bad videos."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from deepvideo.data.dataset import ClipDataset, build_loader, collate_clips
from deepvideo.data.record import DatasetIndex, VideoRecord
from deepvideo.data.samplers import EpochSampler, ShardSampler
from deepvideo.data.sampling import build_sampler
from deepvideo.io import write_video
from deepvideo.spec import InputSpec

RGB = InputSpec(modalities=("rgb",), num_frames=3, frame_stride=2, crop_size=8)
FLOW = InputSpec(modalities=("flow",), flow_stack=2, crop_size=8)
BOTH = InputSpec(modalities=("rgb", "flow"), num_frames=1, flow_stack=2, crop_size=8)


def identity(sample, rng):
    """No augmentation: [T,H,W,3] -> [3,T,H,W], [T,2,H,W] -> [2,T,H,W] (values kept)."""
    out = {}
    if "rgb" in sample:
        out["rgb"] = sample["rgb"].permute(3, 0, 1, 2).float()
    if "flow" in sample:
        out["flow"] = sample["flow"].permute(1, 0, 2, 3).float()
    return out


def random_crop(sample, rng):
    rgb = sample["rgb"]
    y, x = (int(v) for v in rng.integers(0, 9, size=2))
    return {"rgb": rgb[:, y : y + 8, x : x + 8].permute(3, 0, 1, 2).float()}


def frames_of(seed: int, t: int = 10, size: int = 16) -> np.ndarray:
    """Grey frames whose level encodes the frame number (survives H.264 within +-8), with texture."""
    rng = np.random.default_rng(seed)
    f = np.repeat((np.arange(t) * 20 + 10)[:, None, None, None], 3, axis=3)
    f = f + rng.integers(-4, 5, size=(1, size, size, 1))
    return np.broadcast_to(f, (t, size, size, 3)).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> tuple[Path, DatasetIndex]:
    root = tmp_path_factory.mktemp("videos")
    records = []
    for c in range(2):
        for i in range(3):
            path = write_video(root / f"c{c}" / f"v{i}.mp4", frames_of(10 * c + i), fps=10, gop=2)
            records.append(VideoRecord(str(path), c, num_frames=10, source=f"list.txt:{len(records) + 1}"))
    return root, DatasetIndex(records, ["c0", "c1"])


def test_train_item_shapes_and_only_needed_modalities(videos):
    _, index = videos
    ds = ClipDataset(index, RGB, train=True, transform=identity)
    item = ds[(4, 0)]
    assert set(item) == {"rgb", "label", "index"}
    assert item["rgb"].shape == (3, 3, 16, 16) and item["label"] == 1 and item["index"] == 4
    # frame numbers decoded from the red channel follow the sampler's stride of 2
    frame_no = ((item["rgb"][0].mean(dim=(1, 2)) - 10) / 20).round()
    assert torch.equal(frame_no.diff(), torch.full((2,), 2.0))


def test_test_mode_has_a_view_dimension(videos):
    _, index = videos
    ds = ClipDataset(index, RGB, train=False, num_clips=4, transform=identity)
    item = ds[0]
    assert item["rgb"].shape == (4, 3, 3, 16, 16)
    expected = build_sampler(RGB, train=False, num_clips=4)(10, None)["rgb"]
    got = ((item["rgb"][:, 0].mean(dim=(2, 3)) - 10) / 20).round().long().numpy()
    assert np.array_equal(got, expected)


def test_randomness_is_a_function_of_seed_epoch_index(videos):
    _, index = videos
    ds = ClipDataset(index, RGB, train=True, transform=random_crop, seed=5)
    a, b = ds[(2, 0)]["rgb"], ds[(2, 0)]["rgb"]
    assert torch.equal(a, b)
    assert any(not torch.equal(a, ds[(2, e)]["rgb"]) for e in range(1, 6))  # epoch changes the clip
    other = ClipDataset(index, RGB, train=True, transform=random_crop, seed=6)
    assert any(not torch.equal(ds[(2, e)]["rgb"], other[(2, e)]["rgb"]) for e in range(5))
    ds.set_epoch(3)
    assert torch.equal(ds[2]["rgb"], ds[(2, 3)]["rgb"])


def test_loader_batches_do_not_depend_on_worker_count(videos):
    _, index = videos
    ds = ClipDataset(index, RGB, train=True, transform=random_crop, seed=1)
    batches = {}
    for workers in (0, 2):
        loader = build_loader(ds, 2, train=True, num_workers=workers, seed=9,
                              multiprocessing_context="forkserver")  # pytest runs many threads
        assert isinstance(loader.sampler, EpochSampler) and not loader.pin_memory
        assert loader.persistent_workers == (workers > 0)
        for epoch in (1, 2):  # persistent workers see the new epoch through the sampler's keys
            loader.sampler.set_epoch(epoch)
            batches[workers, epoch] = [(b["index"].clone(), b["rgb"].clone()) for b in loader]
    assert len(batches[0, 1]) == 3
    for epoch in (1, 2):
        for (i0, x0), (i2, x2) in zip(batches[0, epoch], batches[2, epoch], strict=True):
            assert torch.equal(i0, i2) and torch.equal(x0, x2)
    order = torch.cat([i for i, _ in batches[0, 1]]).tolist()
    g = torch.Generator().manual_seed(9 + 1)
    assert order == torch.randperm(6, generator=g).tolist()  # DistributedSampler's (seed, epoch) order
    first = {int(i): x for idx, xs in batches[2, 1] for i, x in zip(idx, xs, strict=True)}
    second = {int(i): x for idx, xs in batches[2, 2] for i, x in zip(idx, xs, strict=True)}
    assert any(not torch.equal(first[i], second[i]) for i in first)  # new epoch, new crops


def test_bad_video_is_skipped_logged_and_recorded(videos, tmp_path, caplog):
    _, index = videos
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    records = [VideoRecord(str(bad), 0, source="list.txt:99")] + list(index.records)
    ds = ClipDataset(DatasetIndex(records, index.classes), RGB, train=True, transform=identity)
    with caplog.at_level(logging.WARNING, logger="deepvideo.data"):
        item = ds[(0, 0)]
    assert item["index"] != 0
    assert item["bad_items"][0]["path"] == str(bad) and item["bad_items"][0]["source"] == "list.txt:99"
    assert str(bad) in caplog.text
    assert [b["path"] for b in ds.bad_items] == [str(bad)]
    again = ds[(0, 0)]  # deterministic replacement
    assert again["index"] == item["index"] and torch.equal(again["rgb"], item["rgb"])
    batch = collate_clips([ds[(0, 1)], ds[(1, 1)]])
    assert [b["path"] for b in batch["bad_items"]] == [str(bad)] and batch["rgb"].shape[0] == 2
    ds.record_bad(batch["bad_items"])
    assert len(ds.bad_items) == 1  # deduplicated

    all_bad = ClipDataset(
        DatasetIndex([VideoRecord(str(bad), 0)], ["c0"]), RGB, train=True, transform=identity, max_retries=2
    )
    with pytest.raises(RuntimeError, match="3 videos in a row could not be read.*broken.mp4"):
        all_bad[0]


def test_stored_flow_from_a_mirrored_flow_root_without_decoding(videos, tmp_path):
    from deepvideo.flow.store import read_flow, write_flow

    root, index = videos
    flow_root = tmp_path / "flow"
    rng = np.random.default_rng(0)
    for rec in index.records:
        rel = Path(rec.path).relative_to(root).with_suffix("")
        write_flow(flow_root / rel, rng.uniform(-5, 5, size=(9, 2, 16, 16)).astype(np.float32))
    records = [
        VideoRecord(str(tmp_path / "gone" / Path(r.path).relative_to(root)), r.label) for r in index.records
    ]  # videos absent: flow-only models never decode
    ds = ClipDataset(
        DatasetIndex(records, index.classes),
        FLOW,
        train=False,
        num_clips=2,
        flow_root=flow_root,
        video_root=tmp_path / "gone",
        transform=identity,
    )
    item = ds[3]
    assert set(item) == {"flow", "label", "index"} and item["flow"].shape == (2, 2, 2, 16, 16)
    fidx = build_sampler(FLOW, train=False, num_clips=2)(10, None)["flow"]
    stored = read_flow(flow_root / "c1" / "v0", fidx.reshape(-1)).reshape(2, 2, 2, 16, 16)
    torch.testing.assert_close(item["flow"], stored.permute(0, 2, 1, 3, 4))
    assert ds.bad_items == []
    # flow extracted from a sub-folder of the dataset root ("gone/" here) is found too
    ds.video_root = tmp_path
    assert ds.flow_path(records[3]) == flow_root / "c1" / "v0"
    ds.flow_root = tmp_path / "elsewhere"
    assert ds.flow_path(records[3]) is None  # then it would be computed from the video


def test_flow_computed_on_the_fly_with_dis(videos):
    from deepvideo.flow import compute_flow
    from deepvideo.io import open_video

    _, index = videos
    ds = ClipDataset(index, BOTH, train=False, transform=identity)
    item = ds[0]
    assert item["rgb"].shape == (1, 3, 1, 16, 16) and item["flow"].shape == (1, 2, 2, 16, 16)
    fidx = build_sampler(BOTH, train=False)(10, None)["flow"][0]
    with open_video(index.records[0].path) as r:
        frames = r.get_frames(list(range(10)))
    expected = compute_flow((frames[fidx], frames[fidx + 1]), method="dis")
    torch.testing.assert_close(item["flow"][0], expected.permute(1, 0, 2, 3))


def test_rawframes_folder_flow_and_frames(shared_data):
    folder = shared_data / "video" / "rawframes"
    if not (folder / "x_00001.jpg").exists():
        pytest.skip("rawframes sample missing")
    from deepvideo.flow.store import read_flow

    rec = VideoRecord(str(folder), 0, num_frames=6, start_index=1)
    ds = ClipDataset(DatasetIndex([rec], ["a"]), BOTH, train=False, transform=identity)
    assert ds.flow_path(rec) == folder
    item = ds[0]
    fidx = build_sampler(BOTH, train=False)(6, None)["flow"][0]
    torch.testing.assert_close(item["flow"][0], read_flow(folder, fidx).permute(1, 0, 2, 3))
    assert item["rgb"].shape[-2:] == item["flow"].shape[-2:]


def test_multilabel_padding_and_shard_sampler(videos):
    _, index = videos
    rec = VideoRecord(index.records[0].path, (0, 1), num_frames=10)
    spec = InputSpec(modalities=("rgb",), num_frames=6, frame_stride=3, crop_size=8)
    ds = ClipDataset(
        DatasetIndex([rec], ["c0", "c1", "c2"]), spec, train=False, transform=identity, short_policy="pad"
    )
    item = ds[0]
    assert torch.equal(item["label"], torch.tensor([1.0, 1.0, 0.0]))
    idx = build_sampler(spec, train=False, short_policy="pad")(10, None)["rgb"][0]
    assert (idx == -1).any()
    assert torch.all(item["rgb"][0, :, idx == -1] == 0)  # padding frames are black
    ds2 = ClipDataset(index, RGB, train=False, transform=identity)
    shards = [list(ShardSampler(ds2, 4, r)) for r in range(4)]
    assert sorted(i for s in shards for i, _ in s) == list(range(6))
    with pytest.raises(ValueError, match="no records"):
        ClipDataset(DatasetIndex([], []), RGB, train=True, transform=identity)


def test_training_flip_can_be_turned_off(tmp_path):
    """Left/right motion classes need flip=False: a flip would swap their labels."""
    frames = np.zeros((6, 16, 16, 3), np.uint8)
    frames[:, :, 8:] = 200  # bright right half
    path = write_video(tmp_path / "half.mp4", frames, fps=10)
    index = DatasetIndex([VideoRecord(str(path), 0, num_frames=6)], ["c"])
    spec = InputSpec(modalities=("rgb",), crop_size=16)

    def right_minus_left_signs(flip):
        ds = ClipDataset(index, spec, train=True, flip=flip)
        signs = set()
        for epoch in range(12):
            rgb = ds[(0, epoch)]["rgb"][0, 0]
            signs.add(bool(rgb[:, 10:].mean() > rgb[:, :6].mean()))
        return signs

    assert right_minus_left_signs(False) == {True}
    assert right_minus_left_signs(None) == {True, False}


def _with_bad_first(index: DatasetIndex, bad: VideoRecord) -> DatasetIndex:
    return DatasetIndex([bad] + list(index.records), index.classes)


def test_a_truncated_video_is_skipped_and_listed(videos, tmp_path):
    _, index = videos
    good = Path(index.records[0].path).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good[: len(good) // 2])
    ds = ClipDataset(_with_bad_first(index, VideoRecord(str(cut), 0, num_frames=10)), RGB, train=True,
                     transform=identity)
    batch = next(iter(build_loader(ds, 2, train=False, num_workers=0)))
    assert batch["index"].tolist()[0] != 0 and batch["rgb"].shape[0] == 2  # another video delivered
    assert [b["path"] for b in batch["bad_items"]] == [str(cut)]
    assert batch["bad_items"][0]["error"].startswith(f"VideoError: {cut}: ")


def broken_transform(sample, rng):
    raise ValueError("crop larger than the frame: a bug, not a bad video")


@pytest.mark.parametrize("workers", [0, 1])
def test_a_transform_bug_propagates_out_of_the_loader(videos, workers):
    _, index = videos
    ds = ClipDataset(index, RGB, train=True, transform=broken_transform)
    loader = build_loader(ds, 2, train=True, num_workers=workers, multiprocessing_context="forkserver")
    with pytest.raises(ValueError, match="a bug, not a bad video") as info:
        next(iter(loader))
    if workers:  # the worker's traceback travels with the error, down to the transform
        assert "Original Traceback" in str(info.value) and "in broken_transform" in str(info.value)
    assert ds.bad_items == []


def test_a_sampler_index_error_propagates(videos):
    _, index = videos

    def sampler(num_frames, rng):
        return {"rgb": np.arange(3)[[0, 1, 5]]}  # IndexError: a bug in the sampler

    ds = ClipDataset(index, RGB, train=True, sampler=sampler, transform=identity)
    with pytest.raises(IndexError):
        ds[(0, 0)]
    assert ds.bad_items == []


def test_stored_flow_errors_make_a_bad_video(videos, tmp_path):
    from deepvideo.flow.store import FlowStoreError, write_flow

    _, index = videos
    records = list(index.records)
    short = Path(write_flow(tmp_path / "short", np.zeros((3, 2, 16, 16), np.float32)))  # the video: 10
    broken = Path(write_flow(tmp_path / "broken", np.zeros((9, 2, 16, 16), np.float32)))
    for name in broken.glob("x_*.jpg"):
        name.write_bytes(b"not a jpeg")
    stored = {records[0].path: short, records[1].path: broken}
    ds = ClipDataset(DatasetIndex(records, index.classes), BOTH, train=False, transform=identity)
    ds.flow_path = lambda rec: stored.get(rec.path)  # the others: computed from the video
    for i, match in ((0, "shorter than its video, re-extract it"), (1, "cannot read flow image")):
        with pytest.raises(FlowStoreError, match=match):
            ds.load(i, ds.rng(i, 0))
    item = ds[0]  # skipped and listed; the replacement is a readable video
    assert item["index"] not in (0, 1) and item["flow"].shape == (1, 2, 2, 16, 16)
    assert ds.bad_items[0]["path"] == records[0].path
    assert ds.bad_items[0]["error"].startswith(f"FlowStoreError: {short}: flow field index")


def test_a_one_frame_video_cannot_give_computed_flow(videos, tmp_path):
    _, index = videos
    one = write_video(tmp_path / "one.mp4", frames_of(0, t=1), fps=10)
    ds = ClipDataset(_with_bad_first(index, VideoRecord(str(one), 0)), BOTH, train=True,
                     transform=identity)
    item = ds[(0, 0)]
    assert item["index"] != 0
    assert item["bad_items"][0]["error"] == (f"VideoError: {one}: too short to compute optical flow "
                                             "(a field needs two frames)")


def test_an_annotation_with_a_negative_frame_count_is_an_error_not_a_bad_video(videos):
    _, index = videos
    rec = VideoRecord(index.records[0].path, 0, num_frames=-4, source="list.txt:7")
    ds = ClipDataset(DatasetIndex([rec], ["c0"]), RGB, train=True, transform=identity)
    with pytest.raises(ValueError, match="list.txt:7: the record says .*v0.mp4 has -4 frames; fix the"):
        ds[0]
    assert ds.bad_items == []
