"""Sequence formats: every reader on a tiny synthetic folder, every named error, the real
OTB and VOT sequences in ../shared/data/tracking."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepvideo.io import write_video
from deepvideo.track.datasets import (
    OTB_FRAME_RANGES,
    SequenceError,
    detect_format,
    load_dataset,
    load_sequence,
    video_sequence,
)

NAN = math.nan


def make_frames(folder: Path, names, height: int = 6, width: int = 8) -> Path:
    """PNG frames whose red channel is ``10 * i`` for the ``i``-th name, green 200 everywhere."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        rgb = np.zeros((height, width, 3), np.uint8)
        rgb[..., 0], rgb[..., 1] = 10 * i, 200
        assert cv2.imwrite(str(folder / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def otb(tmp_path: Path, boxes: str, names=("0001.png", "0002.png", "0003.png"), name="Seq") -> Path:
    folder = tmp_path / name
    make_frames(folder / "img", names)
    write(folder / "groundtruth_rect.txt", boxes)
    return folder


# -- OTB ------------------------------------------------------------------------------------------

def test_otb_any_separator_one_based_to_zero_based(tmp_path):
    seq = load_sequence(otb(tmp_path, "11,21,5,6\n12\t22\t5\t6\n13 23 5 6\n\n"))
    assert seq.format == "otb" and seq.name == "Seq" and len(seq) == 3 and seq.origin == 1
    np.testing.assert_array_equal(seq.boxes, [[10, 20, 5, 6], [11, 21, 5, 6], [12, 22, 5, 6]])
    assert seq.init_box == (10.0, 20.0, 5.0, 6.0)
    assert not seq.absent.any()
    frames = list(seq.frames(1))
    assert [f[0, 0, 0] for f in frames] == [10, 20] and frames[0].shape == (6, 8, 3)
    assert seq.frame(0)[0, 0].tolist() == [0, 200, 0]  # RGB, not BGR


def test_otb_nan_and_zero_boxes_after_the_first_are_absent(tmp_path):
    seq = load_sequence(otb(tmp_path, "1,1,5,6\nNaN,NaN,NaN,NaN\n0,0,0,0\n"))
    assert seq.absent.tolist() == [False, True, True]
    assert np.isnan(seq.boxes[1:]).all()


def test_otb_two_targets_are_two_sequences(tmp_path):
    folder = tmp_path / "Jogging"
    make_frames(folder / "img", ["0001.jpg", "0002.jpg"])
    write(folder / "groundtruth_rect.1.txt", "1,1,2,2\n2,2,2,2\n")
    write(folder / "groundtruth_rect.2.txt", "5,5,3,3\n6,6,3,3\n")
    write(folder / "groundtruth_rect.3.txt", "")  # an empty target file (OTB Human4) holds no target
    assert [s.name for s in load_dataset(tmp_path)] == ["Jogging.1", "Jogging.2"]
    assert load_sequence(folder, target=2).boxes[0].tolist() == [4, 4, 3, 3]
    with pytest.raises(SequenceError, match=r"2 targets \(Jogging\.1, Jogging\.2\): pass target=k"):
        load_sequence(folder)
    with pytest.raises(SequenceError, match=r"no target 5 \(targets: Jogging\.1, Jogging\.2\)"):
        load_sequence(folder, target=5)


def test_otb_frame_range_selects_images_by_number(tmp_path, monkeypatch):
    assert OTB_FRAME_RANGES["David"] == (300, 770)  # the benchmark annotates David's images 300..770
    monkeypatch.setitem(OTB_FRAME_RANGES, "Ranged", (2, 3))
    folder = otb(tmp_path, "1,1,2,2\n2,2,2,2\n", names=[f"{i:04d}.png" for i in range(1, 6)], name="Ranged")
    seq = load_sequence(folder)
    assert [p.name for p in seq.frame_paths] == ["0002.png", "0003.png"]
    assert seq.frame(0)[0, 0, 0] == 10


# -- VOT ------------------------------------------------------------------------------------------

def vot(root: Path, name: str = "ball") -> Path:
    folder = root / name
    make_frames(folder / "color", [f"{i:08d}.jpg" for i in range(1, 5)])
    write(folder / "groundtruth.txt", "0,0,4,0,4,2,0,2\n1.5,2,3,4\n0\nnan,nan,nan,nan\n")
    write(folder / "occlusion.tag", "0\n1\n1\n0\n")
    write(folder / "camera_motion.tag", "1\n")  # shorter: 0 for the remaining frames (VOT toolkit)
    return folder


def test_vot_polygons_rectangles_specials_and_tags(tmp_path):
    seq = load_sequence(vot(tmp_path))
    assert seq.format == "vot" and len(seq) == 4 and seq.origin == 0
    np.testing.assert_array_equal(seq.boxes[:2], [[0, 0, 4, 2], [1.5, 2, 3, 4]])
    assert np.isnan(seq.boxes[2:]).all() and seq.absent.tolist() == [False, False, True, True]
    assert seq.attributes["occlusion"].tolist() == [False, True, True, False]
    assert seq.attributes["camera_motion"].tolist() == [True, False, False, False]


def test_vot_mask_line_gives_the_box_of_its_pixels(tmp_path):
    folder = vot(tmp_path)
    # a 4x2 patch at (2, 3): runs 5 zeros, 2 ones, 1 zero -> pixels (row 1, cols 1..2)
    write(folder / "groundtruth.txt", "1,1,2,2\nm2,3,4,2,5,2,1\n1,1,2,2\n1,1,2,2\n")
    assert load_sequence(folder).boxes[1].tolist() == [3, 4, 2, 1]


def test_vot_list_and_sequence_file(tmp_path):
    vot(tmp_path, "b")
    folder = tmp_path / "a"
    make_frames(folder / "frames", ["00000001.jpg", "00000002.jpg"])
    write(folder / "groundtruth.txt", "1,1,2,2\n1,1,2,2\n")
    write(folder / "sequence", "channels.color=frames/%08d.jpg\nfps=30\n")
    write(tmp_path / "list.txt", "b\na\n")
    sequences = load_dataset(tmp_path / "list.txt")
    assert [s.name for s in sequences] == ["a", "b"] and sequences[0].meta["fps"] == "30"
    assert sequences[0].frame_paths[0].parent.name == "frames"


# -- GOT-10k --------------------------------------------------------------------------------------

def got10k_val(root: Path) -> Path:
    folder = root / "val" / "GOT-10k_Val_000001"
    make_frames(folder, [f"{i:08d}.jpg" for i in range(1, 4)])
    write(folder / "groundtruth.txt", "11,21,5,6\n0,0,0,0\n13,23,5,6\n")
    write(folder / "absence.label", "0\n1\n0\n")
    write(folder / "cover.label", "8\n0\n5\n")
    write(folder / "cut_by_image.label", "0\n0\n1\n")
    write(folder / "meta_info.ini", "[METAINFO]\nobject_class: car\nurl: https://example.org/v\n")
    write(root / "val" / "list.txt", "GOT-10k_Val_000001\n")
    return folder


def test_got10k_labels_absence_cover_and_meta(tmp_path):
    seq = load_sequence(got10k_val(tmp_path))
    assert seq.format == "got10k" and seq.origin == 1
    np.testing.assert_array_equal(seq.boxes[[0, 2]], [[10, 20, 5, 6], [12, 22, 5, 6]])
    assert seq.absent.tolist() == [False, True, False]
    assert seq.values["cover"].tolist() == [8, 0, 5]
    assert seq.attributes == {"cut_by_image": seq.attributes["cut_by_image"]}
    assert seq.attributes["cut_by_image"].tolist() == [False, False, True]
    assert seq.meta == {"object_class": "car", "url": "https://example.org/v"}


def test_got10k_test_split_has_only_the_first_box(tmp_path):
    got10k_val(tmp_path)
    folder = tmp_path / "test" / "GOT-10k_Test_000001"
    make_frames(folder, [f"{i:08d}.jpg" for i in range(1, 4)])
    write(folder / "groundtruth.txt", "11,21,5,6\n")
    write(tmp_path / "test" / "list.txt", "GOT-10k_Test_000001\n")
    seq = load_sequence(folder)
    assert seq.boxes[0].tolist() == [10, 20, 5, 6] and np.isnan(seq.boxes[1:]).all()
    assert seq.absent is None and len(seq) == 3
    assert [s.name for s in load_dataset(tmp_path)] == ["GOT-10k_Test_000001", "GOT-10k_Val_000001"]


def test_label_count_must_match_frames(tmp_path):
    folder = got10k_val(tmp_path)
    write(folder / "cover.label", "8\n9\n1\n")
    with pytest.raises(SequenceError, match=r"cover\.label, line 2: label 9 is not an integer in 0\.\.8"):
        load_sequence(folder)
    write(folder / "cover.label", "8\n1\n")
    with pytest.raises(SequenceError, match=r"cover\.label: 2 labels for 3 frames"):
        load_sequence(folder)


# -- LaSOT ----------------------------------------------------------------------------------------

def test_lasot_class_folders_flags_and_nlp(tmp_path):
    folder = tmp_path / "cat" / "cat-1"
    make_frames(folder / "img", [f"{i:08d}.jpg" for i in range(1, 4)])
    write(folder / "groundtruth.txt", "1,1,5,6\n2,2,5,6\n3,3,5,6\n")
    write(folder / "full_occlusion.txt", "0,1,0\n")
    write(folder / "out_of_view.txt", "0,0,1")
    write(folder / "nlp.txt", "white cat on a sofa\n")
    other = tmp_path / "dog" / "dog-2"
    make_frames(other / "img", ["00000001.jpg"])
    write(other / "groundtruth.txt", "1,1,1,1\n")
    sequences = load_dataset(tmp_path)
    assert [s.name for s in sequences] == ["cat-1", "dog-2"]
    seq = sequences[0]
    assert seq.format == "lasot" and seq.boxes[2].tolist() == [2, 2, 5, 6]
    assert seq.absent.tolist() == [False, True, True]
    assert seq.attributes["full_occlusion"].tolist() == [False, True, False]
    assert seq.meta["nlp"] == "white cat on a sofa"


# -- TrackingNet ----------------------------------------------------------------------------------

def test_trackingnet_numeric_frame_order_and_test_split(tmp_path):
    make_frames(tmp_path / "TRAIN_0" / "frames" / "seqA", [f"{i}.jpg" for i in range(12)])
    write(tmp_path / "TRAIN_0" / "anno" / "seqA.txt", "".join(f"{i},0,4,4\n" for i in range(12)))
    make_frames(tmp_path / "TEST" / "frames" / "seqB", ["0.jpg", "1.jpg"])
    write(tmp_path / "TEST" / "anno" / "seqB.txt", "1.5,2.5,3,4\n")
    seq = load_sequence(tmp_path / "TRAIN_0" / "frames" / "seqA")
    assert seq.format == "trackingnet" and seq.origin == 0
    assert [p.name for p in seq.frame_paths[8:11]] == ["8.jpg", "9.jpg", "10.jpg"]
    assert seq.boxes[10].tolist() == [10, 0, 4, 4]  # 0-based: unchanged
    sequences = load_dataset(tmp_path)
    assert [s.name for s in sequences] == ["seqA", "seqB"]
    assert sequences[1].boxes[0].tolist() == [1.5, 2.5, 3, 4] and sequences[1].absent is None
    assert detect_format(tmp_path / "TEST" / "anno" / "seqB.txt") == "trackingnet"


# -- plain video ----------------------------------------------------------------------------------

def test_video_sequence_streams_frames_and_has_only_the_first_box(tmp_path):
    frames = np.zeros((5, 16, 16, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(5)[:, None, None] * 50
    path = write_video(tmp_path / "clip.mp4", frames, fps=10)
    seq = video_sequence(path, (1, 2, 3, 4))
    assert seq.name == "clip" and len(seq) == 5 and seq.format == "video"
    assert seq.boxes[0].tolist() == [1, 2, 3, 4] and np.isnan(seq.boxes[1:]).all()
    decoded = list(seq.frames(1))
    assert len(decoded) == 4 and decoded[0].shape == (16, 16, 3)
    assert [int(f[..., 0].mean() + 25) // 50 for f in decoded] == [1, 2, 3, 4]
    np.testing.assert_array_equal(seq.frame(3), decoded[2])
    with pytest.raises(SequenceError, match=r"first box is empty/NaN: .*clip\.mp4"):
        video_sequence(path, (1, 2, 0, 4))


# -- errors ---------------------------------------------------------------------------------------

def test_missing_frame_folder_and_no_images(tmp_path):
    folder = tmp_path / "Seq"
    write(folder / "groundtruth_rect.txt", "1,1,2,2\n")
    with pytest.raises(SequenceError, match=r"Seq/img: frame folder not found"):
        load_sequence(folder)
    (folder / "img").mkdir()
    with pytest.raises(SequenceError, match=r"Seq/img: no images"):
        load_sequence(folder)


def test_gap_in_frame_numbering(tmp_path):
    folder = otb(tmp_path, "1,1,2,2\n" * 3, names=["0001.png", "0002.png", "0004.png"])
    with pytest.raises(SequenceError, match=r"img: frames missing in the numbering \(1 missing\): "
                                            r"0002\.png is followed by 0004\.png"):
        load_sequence(folder)


@pytest.mark.parametrize("lines, message", [
    (2, r"groundtruth_rect\.txt: fewer boxes than frames: 2 boxes, 3 frames in .*img"),
    (4, r"groundtruth_rect\.txt: more boxes than frames: 4 boxes, 3 frames in .*img"),
])
def test_box_count_must_match_frame_count(tmp_path, lines, message):
    with pytest.raises(SequenceError, match=message):
        load_sequence(otb(tmp_path, "1,1,2,2\n" * lines))


@pytest.mark.parametrize("first", ["NaN,NaN,NaN,NaN", "5,5,0,0", "5,5,3,-1"])
def test_empty_or_nan_first_box(tmp_path, first):
    folder = otb(tmp_path, f"{first}\n1,1,2,2\n1,1,2,2\n")
    with pytest.raises(SequenceError, match=r"first box is empty/NaN: .*groundtruth_rect\.txt, line 1"):
        load_sequence(folder)


@pytest.mark.parametrize("text, message", [
    ("1,1,2,2\n1,x,2,2\n1,1,2,2\n", r"groundtruth_rect\.txt, line 2: not numbers: '1,x,2,2'"),
    ("1,1,2,2\n1,1,2\n1,1,2,2\n", r"groundtruth_rect\.txt, line 2: expected 4 numbers x, y, w, h, got 3"),
    ("1,1,2,2\n\n1,1,2,2\n1,1,2,2\n", r"groundtruth_rect\.txt, line 2: empty line"),
])
def test_malformed_box_lines_name_file_and_line(tmp_path, text, message):
    with pytest.raises(SequenceError, match=message):
        load_sequence(otb(tmp_path, text))


def test_vot_line_of_odd_length_names_file_and_line(tmp_path):
    folder = vot(tmp_path)
    write(folder / "groundtruth.txt", "1,1,2,2\n1,1,2,2,3\n1,1,2,2\n1,1,2,2\n")
    with pytest.raises(SequenceError, match=r"groundtruth\.txt, line 2: 5 numbers is neither"):
        load_sequence(folder)


def test_unreadable_image_names_the_file(tmp_path):
    folder = otb(tmp_path, "1,1,2,2\n" * 3)
    (folder / "img" / "0002.png").write_bytes(b"not an image")
    seq = load_sequence(folder)
    with pytest.raises(SequenceError, match=r"img/0002\.png: not a readable image \(frame 1 of Seq\)"):
        seq.frame(1)


def test_list_naming_a_missing_folder_and_unknown_folders(tmp_path):
    vot(tmp_path, "b")
    write(tmp_path / "list.txt", "b\nmissing\n")
    with pytest.raises(SequenceError, match=r"list\.txt, line 2: sequence folder 'missing' not found"):
        load_dataset(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SequenceError, match=r"empty: not a tracking sequence in a known format"):
        load_sequence(tmp_path / "empty")
    with pytest.raises(SequenceError, match=r"empty: neither a tracking sequence nor a folder of them"):
        load_dataset(tmp_path / "empty")


# -- the real sequences ---------------------------------------------------------------------------

def test_real_otb_crossing(shared_data):
    seq = load_sequence(shared_data / "tracking" / "Crossing")
    assert seq.format == "otb" and len(seq) == 120 and len(seq.frame_paths) == 120
    assert seq.boxes[0].tolist() == [204, 150, 17, 50]  # file: 205 151 17 50, 1-based
    assert seq.frame(119).shape == (240, 360, 3) and not seq.absent.any()


def test_real_vot_bag(shared_data):
    seq = load_sequence(shared_data / "tracking" / "bag")
    assert seq.format == "vot" and len(seq) == 196
    # first polygon 334.02,128.36,438.19,188.78,396.39,260.83,292.23,200.41: min/max corners
    np.testing.assert_allclose(seq.boxes[0], [292.23, 128.36, 438.19 - 292.23, 260.83 - 128.36])
    assert seq.frame(195).shape == (360, 480, 3)
