"""ImageNet VID and YouTube-VOS readers: tiny layouts written in tmp folders (XML, palette PNG,
meta.json) read back exactly, format detection, and every named error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_datasets import make_frames, write

from deepvideo.track.datasets import SequenceError, detect_format, load_dataset, load_sequence

NAN = math.nan


def vid_xml(objects: list[tuple]) -> str:
    """A VID annotation: objects ``(trackid, synset, xmin, ymin, xmax, ymax, occluded)``."""
    body = "".join(
        f"  <object>\n    <trackid>{t}</trackid>\n    <name>{n}</name>\n    <bndbox>\n"
        f"      <xmax>{x1}</xmax>\n      <xmin>{x0}</xmin>\n"
        f"      <ymax>{y1}</ymax>\n      <ymin>{y0}</ymin>\n"
        f"    </bndbox>\n    <occluded>{o}</occluded>\n    <generated>0</generated>\n  </object>\n"
        for t, n, x0, y0, x1, y1, o in objects)
    return ("<annotation>\n  <folder>v</folder>\n  <filename>000000</filename>\n  <size>\n"
            f"    <width>8</width>\n    <height>6</height>\n  </size>\n{body}</annotation>\n")


def vid_snippet(root: Path, rel: str, per_frame: list[list[tuple]]) -> Path:
    names = [f"{k:06d}.JPEG" for k in range(len(per_frame))]
    folder = make_frames(root / "Data" / "VID" / rel, names)
    for k, objects in enumerate(per_frame):
        write(root / "Annotations" / "VID" / rel / f"{k:06d}.xml", vid_xml(objects))
    return folder


@pytest.fixture
def vid_root(tmp_path) -> Path:
    root = tmp_path / "ILSVRC2015"
    cat, dog = "n02121808", "n02084071"
    vid_snippet(root, "val/ILSVRC2015_val_00000000", [
        [(0, cat, 1, 2, 4, 5, 0)],
        [(0, cat, 2, 2, 5, 5, 0), (1, dog, 0, 0, 2, 1, 1)],
        [(1, dog, 1, 0, 3, 1, 0)],                        # track 0 absent here
        [(0, cat, 3, 1, 6, 4, 1)],
    ])
    vid_snippet(root, "train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000",
                [[(3, dog, 0, 0, 7, 5, 0)], [(3, dog, 0, 0, 6, 5, 0)]])
    make_frames(root / "Data" / "VID" / "test" / "ILSVRC2015_test_00000000", ["000000.JPEG"])  # no labels
    return root


def test_vid_tracks_become_sequences(vid_root):
    sequences = load_dataset(vid_root)
    assert [s.name for s in sequences] == ["ILSVRC2015_train_00000000.3", "ILSVRC2015_val_00000000.0",
                                           "ILSVRC2015_val_00000000.1"]
    train, cat, dog = sequences
    assert all(s.format == "imagenet_vid" and s.origin == 0 for s in sequences)
    # box = (xmin, ymin, xmax - xmin + 1, ymax - ymin + 1)
    np.testing.assert_array_equal(cat.boxes, [[1, 2, 4, 4], [2, 2, 4, 4], [NAN] * 4, [3, 1, 4, 4]])
    np.testing.assert_array_equal(cat.absent, [False, False, True, False])
    np.testing.assert_array_equal(cat.attributes["occluded"], [False, False, False, True])
    assert [p.name for p in cat.frame_paths] == [f"{k:06d}.JPEG" for k in range(4)]
    # track 1 starts at frame 1: its sequence starts there
    np.testing.assert_array_equal(dog.boxes, [[0, 0, 3, 2], [1, 0, 3, 2]])
    assert [p.name for p in dog.frame_paths] == ["000001.JPEG", "000002.JPEG"]
    assert dog.meta == {"synset": "n02084071", "first_frame": "1"}
    assert abs(int(dog.frame(0)[0, 0, 0]) - 10) <= 2  # the red channel of frame 1 (make_frames), JPEG
    np.testing.assert_array_equal(dog.attributes["occluded"], [True, False])
    np.testing.assert_array_equal(train.boxes, [[0, 0, 8, 6], [0, 0, 7, 6]])


def test_vid_detection_and_roots(vid_root):
    snippet = vid_root / "Data" / "VID" / "val" / "ILSVRC2015_val_00000000"
    assert detect_format(snippet) == "imagenet_vid"
    assert detect_format(vid_root / "Data" / "VID" / "test" / "ILSVRC2015_test_00000000") is None
    assert load_sequence(snippet, target=1).name == "ILSVRC2015_val_00000000.1"
    with pytest.raises(SequenceError, match=r"2 targets .*pass target=k"):
        load_sequence(snippet)
    assert [s.name for s in load_dataset(vid_root / "Data" / "VID" / "val")] == [
        "ILSVRC2015_val_00000000.0", "ILSVRC2015_val_00000000.1"]
    assert len(load_dataset(vid_root / "Data" / "VID" / "train", "imagenet_vid")) == 1


@pytest.mark.parametrize("text, message", [
    ("<annotation>\n  <object>\n    <trackid>0</trackid>\n  </object\n</annotation>",
     r"000001.xml, line 5: not well-formed XML"),
    ("<annotation>\n  <object>\n    <trackid>0</trackid>\n    <name>n1</name>\n  </object>\n</annotation>",
     r"000001.xml, line 2: <object> has no <bndbox>"),
    (vid_xml([(0, "n1", 1, 1, 2, 2, 0)]).replace("<xmin>1</xmin>", "<xmin>one</xmin>"),
     r"000001.xml, line 13: <xmin> is not an integer: 'one'"),
    (vid_xml([(0, "n1", 3, 1, 2, 2, 0)]), r"000001.xml, line 11: <bndbox> xmax/ymax \(2, 2\) below"),
    (vid_xml([(0, "n1", 1, 1, 2, 2, 0)]).replace("<trackid>0</trackid>", ""),
     r"000001.xml, line 8: <object> has no <trackid>"),
    (vid_xml([(0, "n1", 1, 1, 2, 2, 0), (0, "n1", 1, 1, 2, 2, 0)]),
     r"000001.xml: track id 0 has two <object> elements"),
])
def test_vid_errors_name_file_and_line(tmp_path, text, message):
    folder = vid_snippet(tmp_path, "val/v", [[(0, "n1", 1, 1, 2, 2, 0)]] * 2)
    write(tmp_path / "Annotations" / "VID" / "val" / "v" / "000001.xml", text)
    with pytest.raises(SequenceError, match=message):
        load_sequence(folder, "imagenet_vid")


def test_vid_missing_annotation_file_is_named(tmp_path):
    folder = vid_snippet(tmp_path, "val/v", [[(0, "n1", 1, 1, 2, 2, 0)]] * 2)
    (tmp_path / "Annotations" / "VID" / "val" / "v" / "000001.xml").unlink()
    with pytest.raises(SequenceError, match=r"v/000001.xml: file not found"):
        load_sequence(folder)
    empty = vid_snippet(tmp_path, "val/empty", [[], []])  # a snippet without objects
    with pytest.raises(SequenceError, match="empty: no target is annotated in any frame"):
        load_sequence(empty)
    with pytest.raises(SequenceError, match="no annotation folder"):
        load_sequence(make_frames(tmp_path / "plain", ["000000.JPEG"]), "imagenet_vid")


# -- YouTube-VOS -----------------------------------------------------------------------------------

def palette_png(path: Path, ids: np.ndarray) -> None:
    """An index PNG as YouTube-VOS stores it: mode P, the pixel value is the object id."""
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 236, 95, 103, 249, 145, 87] + [0] * (256 * 3 - 9))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def vos_ids(k: int) -> np.ndarray:
    ids = np.zeros((6, 8), np.uint8)
    ids[1:3, 2:5] = 1                 # object 1 in every frame
    if k >= 1:
        ids[4:6, 6 - k:8 - k] = 2     # object 2 from the second kept frame
    return ids


@pytest.fixture
def vos_split(tmp_path) -> Path:
    split = tmp_path / "youtube_vos" / "train"
    stems = ["00000", "00005", "00010"]
    make_frames(split / "JPEGImages" / "abc123", [f"{s}.jpg" for s in stems])
    for k, stem in enumerate(stems):
        palette_png(split / "Annotations" / "abc123" / f"{stem}.png", vos_ids(k))
    meta = {"videos": {"abc123": {"objects": {"1": {"category": "penguin", "frames": stems},
                                              "2": {"category": "seal", "frames": stems[1:]}}}}}
    write(split / "meta.json", json.dumps(meta))
    return split


def test_vos_objects_become_sequences_with_their_masks(vos_split):
    sequences = load_dataset(vos_split)
    assert [s.name for s in sequences] == ["abc123.1", "abc123.2"]
    penguin, seal = sequences
    assert penguin.format == seal.format == "youtube_vos"
    assert penguin.meta == {"category": "penguin", "first_frame": "00000"}
    np.testing.assert_array_equal(penguin.boxes, [[2, 1, 3, 2]] * 3)
    assert [p.name for p in seal.frame_paths] == ["00005.jpg", "00010.jpg"]  # from its first mask
    np.testing.assert_array_equal(seal.boxes, [[5, 4, 2, 2], [4, 4, 2, 2]])
    assert abs(int(seal.frame(0)[0, 0, 0]) - 10) <= 2 and seal.mask_value == 2
    for k in range(2):
        np.testing.assert_array_equal(seal.mask(k), vos_ids(k + 1) == 2)
        np.testing.assert_array_equal(penguin.mask(k), vos_ids(k) == 1)
    assert detect_format(vos_split / "JPEGImages" / "abc123") == "youtube_vos"
    assert [s.name for s in load_dataset(vos_split.parent)] == ["abc123.1", "abc123.2"]  # the root too


def test_vos_frames_without_png_and_empty_masks(vos_split):
    (vos_split / "Annotations" / "abc123" / "00010.png").unlink()        # valid split: sparse PNGs
    palette_png(vos_split / "Annotations" / "abc123" / "00005.png", vos_ids(1) * (vos_ids(1) == 2))
    penguin = load_sequence(vos_split / "JPEGImages" / "abc123", target=1)
    np.testing.assert_array_equal(penguin.boxes, [[2, 1, 3, 2], [NAN] * 4, [NAN] * 4])
    np.testing.assert_array_equal(penguin.absent, [False, True, True])
    # listed in 00005 by meta.json but not drawn in its PNG: not annotated there, like 00010
    assert penguin.mask_paths[1] is None and penguin.mask_paths[2] is None
    with pytest.raises(SequenceError, match="frame 2 has no mask"):
        penguin.mask(2)
    # not listed in 00005: the empty mask says it is not there
    meta = json.loads((vos_split / "meta.json").read_text())
    meta["videos"]["abc123"]["objects"]["1"]["frames"] = ["00000"]
    write(vos_split / "meta.json", json.dumps(meta))
    penguin = load_sequence(vos_split / "JPEGImages" / "abc123", target=1)
    assert penguin.mask_paths[1] is not None and not penguin.mask(1).any()
    np.testing.assert_array_equal(penguin.absent, [False, True, True])


@pytest.mark.parametrize("meta, message", [
    ('{"videos": {\n  "other": {}\n', r"meta.json, line 3: not valid JSON"),
    ('{"videos": {"other": {"objects": {"1": {}}}}}', r"meta.json: no objects for video 'abc123'"),
    ('{"videos": {"abc123": {"objects": {"x": {}}}}}', r"object 'x' is not an id 1..255"),
    ('{"videos": {"abc123": {"objects": {"1": {"frames": ["00001"]}}}}}',
     r"object 1 lists frame '00001', which JPEGImages/abc123 lacks"),
    ('{"videos": {"abc123": {"objects": {"7": {"frames": []}}}}}', r"object 7 of .*meta.json is in no mask"),
])
def test_vos_meta_errors(vos_split, meta, message):
    write(vos_split / "meta.json", meta)
    with pytest.raises(SequenceError, match=message):
        load_dataset(vos_split)


def test_vos_rgb_mask_and_missing_meta_are_named(vos_split):
    Image.new("RGB", (8, 6)).save(vos_split / "Annotations" / "abc123" / "00005.png")
    with pytest.raises(SequenceError, match=r"00005.png: a RGB image, expected a palette"):
        load_dataset(vos_split)
    (vos_split / "meta.json").unlink()
    with pytest.raises(SequenceError, match=r"meta.json: file not found"):
        load_dataset(vos_split)
