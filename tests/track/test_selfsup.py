"""Self-supervised pairs from unlabelled videos: PairDataset's item format, crop geometry and
defaults; texture and forward-backward cycle checks; determinism; the sources it accepts."""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from deepvideo.track.pairs import PairDataset, context_side
from deepvideo.track.registry import create_tracker
from deepvideo.track.selfsup import (
    FrameSource,
    SelfSupError,
    SelfSupPairs,
    cycle_error,
    gradient_energy,
    video_sources,
)
from deepvideo.track.sequence_files import SequenceError

STEP = (3, 2)  # pixels per frame the scene moves (right, down)


def texture(size: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture (uint8), structured at a few pixels' scale."""
    noise = np.random.default_rng(seed).random((size // 4, size // 4, 3)).astype(np.float32)
    return (cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


def write_folder(folder: Path, frames) -> Path:
    folder.mkdir(parents=True)
    for k, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f"img_{k + 1:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def panning(n: int = 8, side: int = 96) -> list[np.ndarray]:
    """Frames of a textured world seen through a window moving by STEP per frame: the content
    moves by -STEP in the image."""
    world = texture(200)
    return [world[10 + STEP[1] * k:10 + STEP[1] * k + side, 10 + STEP[0] * k:10 + STEP[0] * k + side]
            for k in range(n)]


@pytest.fixture(scope="module")
def pan_folder(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("pan") / "pan", panning())


def test_defaults_are_pair_datasets():
    mine, theirs = inspect.signature(SelfSupPairs).parameters, inspect.signature(PairDataset).parameters
    shared = ["exemplar_size", "search_size", "context", "max_gap", "pairs_per_epoch", "shift", "scale",
              "gray_share", "seed"]
    assert [k for k in shared if mine[k].default != theirs[k].default] == ["max_gap"]  # a few frames


def test_region_items_have_the_pair_format_and_the_crop_geometry(tmp_path):
    still = write_folder(tmp_path / "still", [texture(96)] * 3)  # nothing moves: search = exemplar's scene
    pairs = SelfSupPairs(still, mode="region", shift=0.0, scale=0.0, gray_share=0.0, pairs_per_epoch=5)
    assert len(pairs) == 5
    for key in range(5):
        item = pairs[key]
        assert item["exemplar"].shape == (3, 127, 127) and item["search"].shape == (3, 255, 255)
        assert item["exemplar"].dtype == item["search"].dtype == item["target"].dtype == torch.float32
        x, y, w, h = item["target"].tolist()
        assert (x + w / 2, y + h / 2) == pytest.approx((127.5, 127.5), abs=1e-3)  # no shift: centred
        # SiamFC's scale: the box with its context margin is 127 pixels in both crops
        assert context_side(w, h) == pytest.approx(127, rel=1e-5)
        _, box, _, same = pairs.pick(np.random.default_rng([0, 0, key]), key)
        assert np.array_equal(box, same)  # region mode: the same region in the second frame
        assert 0.15 * 96 <= np.sqrt(box[2] * box[3]) <= 0.4 * 96 and 0.5 <= box[2] / box[3] <= 2
        assert box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= 96 and box[1] + box[3] <= 96
        # the exemplar is the search crop's centre (same frame, same scale)
        np.testing.assert_allclose(item["search"][:, 64:191, 64:191], item["exemplar"], atol=1.0)


def test_items_are_pure_functions_of_key_and_seed(pan_folder):
    pairs = SelfSupPairs(pan_folder, mode="region", pairs_per_epoch=4)
    a, b = pairs[(1, 0)], pairs[(1, 0)]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(pairs[1]["target"], a["target"])  # a plain index is epoch 0
    assert not torch.equal(pairs[(1, 1)]["search"], a["search"])
    other = SelfSupPairs(pan_folder, mode="region", pairs_per_epoch=4, seed=1)
    assert not torch.equal(other[(1, 0)]["search"], a["search"])
    copy = pickle.loads(pickle.dumps(pairs))  # goes to DataLoader workers
    assert torch.equal(copy[(1, 0)]["exemplar"], a["exemplar"])


def test_cycle_follows_the_motion_and_comes_back():
    frames = panning(n=5)
    box = np.array([30.0, 28.0, 32.0, 30.0])
    end, overlap = cycle_error(lambda: create_tracker("kcf"), frames, box)
    expected = box - [4 * STEP[0], 4 * STEP[1], 0, 0]  # the content moves by -STEP per frame
    np.testing.assert_allclose(end, expected, atol=1.5)
    assert overlap > 0.9


def test_cycle_pairs_put_the_tracked_box_in_the_search_crop(pan_folder):
    pairs = SelfSupPairs(pan_folder, mode="cycle", max_gap=3, shift=0.0, scale=0.0, gray_share=0.0,
                         pairs_per_epoch=3)
    rng = np.random.default_rng([0, 0, 2])
    first, box, second, end = pairs.pick(rng, 2)
    gap = round((box[0] - end[0]) / STEP[0])
    assert 1 <= gap <= 3
    np.testing.assert_allclose(end, box - [gap * STEP[0], gap * STEP[1], 0, 0], atol=1.5)
    assert first.shape == second.shape == (96, 96, 3) and not np.array_equal(first, second)
    item = pairs[2]
    assert item["target"][:2].add(item["target"][2:] / 2).tolist() == pytest.approx([127.5, 127.5], abs=1e-3)


def test_unfollowable_and_flat_videos_fail_loudly(tmp_path):
    noise = [np.random.default_rng(k).integers(0, 256, (64, 64, 3), dtype=np.uint8) for k in range(4)]
    pairs = SelfSupPairs(write_folder(tmp_path / "noise", noise), mode="cycle", min_cycle_iou=0.99, tries=3)
    with pytest.raises(SelfSupError, match=r"item 0: no pair in 3 draws \(\{'backward track missed the "
                                           r"start': 3\}\) from noise; lower"):
        pairs[0]
    flat = [np.full((64, 64, 3), 90, np.uint8)] * 3
    pairs = SelfSupPairs(write_folder(tmp_path / "flat", flat), mode="region", tries=2)
    with pytest.raises(SelfSupError, match=r"\{'flat region': 2\}"):
        pairs[(0, 1)]


def test_gradient_energy_of_a_grating():
    assert gradient_energy(np.full((32, 32, 3), 77, np.uint8)) == 0.0
    a, period = 50.0, 32
    x = np.arange(256)
    grey = (128 + a * np.sin(2 * np.pi * x / period))[None, :].repeat(16, axis=0)
    image = np.repeat(grey.round().astype(np.uint8)[..., None], 3, axis=2)
    assert gradient_energy(image) == pytest.approx(4 * a / period, rel=0.03)


def test_sources_and_their_errors(tmp_path, pan_folder):
    from deepvideo.io import write_video

    videos = tmp_path / "videos"
    videos.mkdir()
    clip = write_video(videos / "a.mp4", np.stack(panning(n=6, side=64)), fps=10)
    write_folder(videos / "frames", panning(n=3, side=64))
    (videos / "notes.txt").write_text("x")
    assert video_sources(videos) == [clip, videos / "frames"]
    assert video_sources([clip, pan_folder]) == [clip, pan_folder]
    assert len(FrameSource(clip)) == 6 and FrameSource(clip).frames([5])[0].shape == (64, 64, 3)
    with pytest.raises(SequenceError, match="notes.txt: not a video file"):
        video_sources(videos / "notes.txt")
    with pytest.raises(SequenceError, match=r"empty: no video files"):
        (tmp_path / "empty").mkdir()
        video_sources(tmp_path / "empty")
    one = write_folder(tmp_path / "one", panning(n=1))
    with pytest.raises(SequenceError, match=r"one: 1 frame\(s\); a training pair needs two"):
        SelfSupPairs(one)
    with pytest.raises(ValueError, match="mode: expected one of region, cycle"):
        SelfSupPairs(pan_folder, mode="flow")
    with pytest.raises(ValueError, match="tracker 'no_such_tracker': .*kcf"):
        SelfSupPairs(pan_folder, tracker="no_such_tracker")
    with pytest.raises(ValueError, match="tracker 'kcf': .*unexpected keyword argument 'speed'"):
        SelfSupPairs(pan_folder, tracker_params={"speed": 2})


def test_real_video_gives_a_cycle_checked_pair(test_mp4):
    item = SelfSupPairs(test_mp4, pairs_per_epoch=1)[0]
    assert item["search"].shape == (3, 255, 255) and torch.isfinite(item["target"]).all()


def test_rawframes_folders_give_their_rgb_frames(shared_data, tmp_path):
    rawframes = shared_data / "video" / "rawframes"  # img_00001..10.jpg beside x_/y_ flow images
    source = FrameSource(rawframes)
    assert len(source) == 10 and [p.name for p in source.files[:2]] == ["img_00001.jpg", "img_00002.jpg"]
    assert source.frames([9])[0].shape == (240, 320, 3)
    assert rawframes in video_sources(shared_data / "video")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("cam_00001.png", "other_00001.png"):
        cv2.imwrite(str(mixed / name), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(SequenceError, match="two frames with the same number"):
        FrameSource(mixed)  # not a rawframes folder: every image is a frame, and they clash
