"""The synthetic tracking set: written in GOT-10k format, read back exactly, deterministic."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from deepvideo.track.datasets import load_dataset
from deepvideo.track.synth import SHAPES, mask_box, motion_blur, render_sequence, render_tracking_set

SIZE, FRAMES = (64, 48), 14


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "set"
    assert render_tracking_set(out, num_sequences=2, frames=FRAMES, size=SIZE, seed=5,
                               progress=False) == ["synth_0001", "synth_0002"]
    return out


def test_round_trip_through_load_dataset(written):
    sequences = load_dataset(written)
    assert [s.name for s in sequences] == ["synth_0001", "synth_0002"]
    for index, sequence in enumerate(sequences):
        truth = render_sequence(5, index, FRAMES, SIZE)
        assert sequence.format == "got10k" and len(sequence) == FRAMES
        assert sequence.meta["object_class"] == truth.shape and truth.shape in SHAPES
        np.testing.assert_allclose(sequence.boxes, truth.boxes, atol=1e-3)
        np.testing.assert_array_equal(sequence.absent, truth.absent)
        np.testing.assert_array_equal(sequence.values["cover"], truth.cover)
        np.testing.assert_array_equal(sequence.attributes["cut_by_image"], truth.cut)
        assert sequence.frame(0).shape == (SIZE[1], SIZE[0], 3)
        # the JPEG frames are the rendered frames up to compression
        assert np.abs(sequence.frame(3).astype(int) - truth.frames[3]).mean() < 6
        for k in range(FRAMES):
            mask = cv2.imread(str(written / sequence.name / "masks" / f"{k + 1:08d}.png"),
                              cv2.IMREAD_GRAYSCALE)
            assert set(np.unique(mask)) <= {0, 255}
            np.testing.assert_array_equal(mask == 255, truth.masks[k])
            np.testing.assert_array_equal(sequence.mask(k), truth.masks[k])


def test_missing_mask_is_named(written, tmp_path):
    import shutil

    from deepvideo.track.datasets import SequenceError

    copy = tmp_path / "set"
    shutil.copytree(written / "synth_0001", copy / "synth_0001")
    (copy / "synth_0001" / "masks" / "00000004.png").unlink()
    with pytest.raises(SequenceError, match=r"masks: no mask for 1 of 14 frames \(first: 00000004.png\)"):
        load_dataset(copy)
    shutil.rmtree(copy / "synth_0001" / "masks")
    sequence = load_dataset(copy)[0]
    assert not sequence.has_masks
    with pytest.raises(SequenceError, match="has no masks"):
        sequence.mask(0)


def test_masks_boxes_and_absence_agree():
    truth = render_sequence(5, 0, FRAMES, SIZE)
    unoccluded = truth.cover == 8
    assert unoccluded.any() and (truth.cover < 8).any(), "the occluder must pass over the target"
    for k in np.flatnonzero(unoccluded):
        np.testing.assert_array_equal(mask_box(truth.masks[k]), truth.boxes[k])
    np.testing.assert_array_equal(truth.absent, ~truth.masks.any(axis=(1, 2)))
    assert np.isfinite(truth.boxes).all()  # a box even where fully occluded


def test_full_occlusion_happens_and_is_absent():
    seqs = [render_sequence(5, i, FRAMES, SIZE) for i in range(2)]
    assert any(s.absent.any() for s in seqs)
    for s in seqs:
        assert (s.cover[s.absent] == 0).all()


def test_deterministic_and_seeded():
    a, b = render_sequence(2, 1, 6, SIZE), render_sequence(2, 1, 6, SIZE)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.frames, render_sequence(3, 1, 6, SIZE).frames)


def test_target_moves_scales_and_background_pans():
    truth = render_sequence(1, 0, 20, SIZE)
    centers = truth.boxes[:, :2] + truth.boxes[:, 2:] / 2
    assert np.ptp(centers, axis=0).max() > 5
    assert np.ptp(truth.boxes[:, 2] * truth.boxes[:, 3]) > 0


def test_real_backgrounds(shared_data, tmp_path):
    from deepvideo.io import VideoReader

    reader = VideoReader(shared_data / "video" / "test.mp4", threads=1)
    frame = reader.get_frame(0).numpy()
    reader.close()
    truth = render_sequence(0, 0, 4, SIZE, backgrounds=[frame])
    plain = render_sequence(0, 0, 4, SIZE)
    assert not np.array_equal(truth.frames, plain.frames)
    render_tracking_set(tmp_path / "real", num_sequences=1, frames=4, size=SIZE, backgrounds=[frame],
                        progress=False)
    np.testing.assert_allclose(load_dataset(tmp_path / "real")[0].boxes, truth.boxes, atol=1e-3)


def test_bad_input_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"backgrounds\[0\]"):
        render_tracking_set(tmp_path / "bad", num_sequences=1, frames=4, size=SIZE,
                            backgrounds=[np.zeros((10, 10))], progress=False)
    with pytest.raises(ValueError, match="frames must be at least 2"):
        render_tracking_set(tmp_path / "bad", num_sequences=1, frames=1, size=SIZE, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_motion_blur_spreads_along_the_motion():
    image = np.zeros((21, 21, 3), np.float32)
    image[10, 10] = 1.0
    blurred = motion_blur(image, (6.0, 0.0))
    row = blurred[10, :, 0]
    assert row.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(np.flatnonzero(row > 1e-6), np.arange(7, 14))  # centred, odd
    assert np.count_nonzero(blurred[:, 10, 0] > 1e-6) == 1
    np.testing.assert_array_equal(motion_blur(image, (1.0, 0.0)), image)  # under 2 px: unchanged


def test_existing_set_is_replaced_whole(tmp_path):
    render_tracking_set(tmp_path / "set", num_sequences=2, frames=3, size=SIZE, progress=False)
    render_tracking_set(tmp_path / "set", num_sequences=1, frames=3, size=SIZE, seed=1, progress=False)
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == ["list.txt", "synth.json", "synth_0001"]
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


# -- splits, real-image targets, image pools -------------------------------------------------------

def test_splits_draw_from_separate_streams(tmp_path):
    from deepvideo.track.synth import SPLITS

    plain = render_sequence(0, 0, 4, SIZE)
    by_split = {split: render_sequence(0, 0, 4, SIZE, split=split) for split in SPLITS}
    frames = [plain.frames] + [s.frames for s in by_split.values()]
    assert all(not np.array_equal(a, b) for i, a in enumerate(frames) for b in frames[i + 1:])
    # the test split of seed 0 is not any training sequence of seed 0 or 1
    train = [render_sequence(seed, i, 4, SIZE, split="train").frames for seed in (0, 1) for i in range(3)]
    assert not any(np.array_equal(t, by_split["test"].frames) for t in train)
    assert render_tracking_set(tmp_path / "test", num_sequences=2, frames=3, size=SIZE, split="test",
                               progress=False) == ["synth_test_0001", "synth_test_0002"]
    np.testing.assert_allclose(load_dataset(tmp_path / "test")[0].boxes,
                               render_sequence(0, 0, 3, SIZE, split="test").boxes, atol=1e-3)
    with pytest.raises(ValueError, match="split: expected one of train, val, test"):
        render_sequence(0, 0, 4, SIZE, split="holdout")


def test_real_target_patches_fill_the_shape():
    from deepvideo.data.synth.common import make_sprite
    from deepvideo.track.synth import real_sprite

    image = np.zeros((60, 80, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 200, 100, 50
    sprite = real_sprite(np.random.default_rng(4), [image], "star", 24)
    alpha = make_sprite(np.random.default_rng(4), "star", 24).rgba[..., 3]
    np.testing.assert_array_equal(sprite[..., 3], alpha)  # the shape's silhouette
    np.testing.assert_allclose(sprite[..., :3], np.array([200, 100, 50]) / 255 * alpha[..., None], atol=1e-5)
    textured = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    truth = render_sequence(3, 0, 5, SIZE, targets=[textured], target_share=1.0)
    assert truth.shape.startswith("real_") and truth.shape[5:] in SHAPES
    assert render_sequence(3, 0, 5, SIZE, targets=[textured], target_share=0.0).shape in SHAPES
    with pytest.raises(ValueError, match=r"targets\[0\]: expected an RGB image"):
        render_tracking_set("unused", num_sequences=1, targets=[np.zeros((9, 9))], progress=False)


def test_load_images_takes_each_split_from_its_part_of_a_video(tmp_path):
    from deepvideo.track.synth import load_images

    folder = tmp_path / "clip"
    folder.mkdir()
    for k in range(20):  # frame k is grey level 10 k: which frames were taken is readable
        cv2.imwrite(str(folder / f"img_{k + 1:05d}.png"), np.full((8, 8, 3), 10 * k, np.uint8))
    picked = {split: [int(im[0, 0, 0]) // 10 for im in load_images(folder, per_video=2, split=split)]
              for split in ("train", "val", "test")}
    assert picked == {"train": [0, 13], "val": [14, 15], "test": [16, 19]}
    assert [int(im[0, 0, 0]) // 10 for im in load_images([folder], per_video=3)] == [0, 10, 19]
