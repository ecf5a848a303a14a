"""VID layout: XML round trip, error messages with file and line, split lists, synthetic set, pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deepvideo.detect.ap import pairwise_iou
from deepvideo.detect.evaluate import motion_iou, speed_of
from deepvideo.detect.pairs import FramePairs, collate_pairs, det_frames, unpad
from deepvideo.detect.vid import (
    VidFrame,
    VidObject,
    VidVideo,
    read_det_list,
    read_frame_xml,
    read_split,
    write_frame_xml,
)
from deepvideo.detect.vid_synth import CLASSES, SPEEDS, render_vid_set, render_video

REAL_XML = """<annotation>
\t<folder>ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000</folder>
\t<filename>000000</filename>
\t<source>
\t\t<database>ILSVRC_2015</database>
\t</source>
\t<size>
\t\t<width>1280</width>
\t\t<height>720</height>
\t</size>
\t<object>
\t\t<trackid>0</trackid>
\t\t<name>n01674464</name>
\t\t<bndbox>
\t\t\t<xmax>1050</xmax>
\t\t\t<xmin>{xmin}</xmin>
\t\t\t<ymax>489</ymax>
\t\t\t<ymin>230</ymin>
\t\t</bndbox>
\t\t<occluded>1</occluded>
\t\t<generated>0</generated>
\t</object>
</annotation>
"""


def test_reads_real_vid_xml(tmp_path):
    path = tmp_path / "000000.xml"
    path.write_text(REAL_XML.format(xmin=289))
    frame = read_frame_xml(path)
    assert frame.size == (1280, 720)
    assert frame.objects == [VidObject(0, "n01674464", (289.0, 230.0, 1050.0, 489.0), True)]


def test_bad_xml_names_file_and_line(tmp_path):
    path = tmp_path / "000001.xml"
    path.write_text(REAL_XML.format(xmin="abc"))
    with pytest.raises(ValueError, match=r"000001\.xml:16: <xmin> must be float, got 'abc'"):
        read_frame_xml(path)
    path.write_text(REAL_XML.format(xmin=289).replace("\t\t<name>n01674464</name>\n", ""))
    with pytest.raises(ValueError, match=r"000001\.xml:11: <object> has no <name>"):
        read_frame_xml(path)
    path.write_text("<annotation>\n<size><width>3</width></size\n</annotation>")
    with pytest.raises(ValueError, match=r"000001\.xml:3: not well-formed"):
        read_frame_xml(path)


def test_write_read_round_trip_and_det_without_trackid(tmp_path):
    objects = [VidObject(3, "star", (1.0, 2.0, 10.0, 12.0), False),
               VidObject(7, "cross", (5, 5, 9, 30), True)]
    write_frame_xml(tmp_path / "a" / "000004.xml", (64, 48), objects)
    assert read_frame_xml(tmp_path / "a" / "000004.xml").objects == objects
    det = tmp_path / "det.xml"
    det.write_text(REAL_XML.format(xmin=1).replace("\t\t<trackid>0</trackid>\n", "")
                   .replace("<occluded>1</occluded>", ""))
    (frame,) = det_frames([det], [tmp_path / "det.JPEG"])
    assert frame.objects[0].trackid == 0 and not frame.objects[0].occluded


def test_synthetic_video_is_deterministic_with_exact_tracks():
    a = render_video(5, 1, frames=8, size=(64, 48))
    b = render_video(5, 1, frames=8, size=(64, 48))
    assert np.array_equal(a.frames, b.frames) and a.objects == b.objects
    assert not np.array_equal(a.frames, render_video(5, 1, frames=8, size=(64, 48), split="val").frames)
    assert set(a.speeds) <= set(SPEEDS)
    for objects in a.objects:
        assert len({o.trackid for o in objects}) == len(objects)
        for o in objects:
            x1, y1, x2, y2 = o.box
            assert o.name in CLASSES and 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 48


def test_speed_classes_are_the_motion_iou_classes_and_balanced():
    # the generator's speed classes should be the ones ImageNet VID's motion IoU gives
    assert SPEEDS["slow"][1] * 10 < 0.03 and SPEEDS["fast"][0] * 10 > 0.5  # sides moved in 10 frames
    # a fast object moves over a third of its side per frame: IoU (1 - m) / (1 + m) < 0.5
    assert SPEEDS["fast"][0] > 1 / 3
    agree, counts = 0, {s: 0 for s in SPEEDS}
    consecutive = {s: [] for s in SPEEDS}  # IoU of an object's boxes in consecutive frames
    for index in range(8):
        video = render_video(0, index, frames=21, size=(64, 48))
        frames = [VidFrame(Path(f"{k}"), (64, 48), objects) for k, objects in enumerate(video.objects)]
        for row in motion_iou(VidVideo("v", frames)):
            for tid, value in row.items():
                counts[speed_of(value)] = counts.get(speed_of(value), 0) + 1  # None: no neighbours
                agree += speed_of(value) == video.speeds[tid]
        for now, after in zip(video.objects[:-1], video.objects[1:], strict=True):
            boxes = {o.trackid: o.box for o in after}
            for o in now:
                if o.trackid in boxes:
                    iou = pairwise_iou(o.box, boxes[o.trackid])[0, 0]
                    consecutive[video.speeds[o.trackid]].append(iou)
    total = sum(counts.values())
    assert agree >= 0.9 * total and min(counts[s] for s in SPEEDS) >= total / 5
    # tracks, not overlaps, must link fast objects; slow and medium ones barely move per frame
    assert np.mean(np.array(consecutive["fast"]) < 0.5) > 0.8
    assert min(consecutive["slow"] + consecutive["medium"]) > 0.5


def test_vid_set_frames_per_split(tmp_path):
    render_vid_set(tmp_path / "vid", {"train": 2, "val": 1}, frames={"train": 2, "val": 3}, size=(32, 32),
                   progress=False)
    assert [len(v.frames) for v in read_split(tmp_path / "vid", "train")] == [2, 2]
    assert [len(v.frames) for v in read_split(tmp_path / "vid", "val")] == [3]


def test_vid_set_split_lists_and_pairs(tmp_path):
    names = render_vid_set(tmp_path / "vid", {"train": 2}, frames=3, size=(32, 32), progress=False)
    videos = read_split(tmp_path / "vid", "train")
    assert [v.name for v in videos] == [f"train/{n}" for n in names["train"]]
    assert (tmp_path / "vid" / "Data" / "VID" / "train" / names["train"][0] / "000002.JPEG").is_file()
    listing = tmp_path / "vid" / "ImageSets" / "VID" / "bad.txt"
    listing.write_text("train/synth_00000/000000 1\ntrain/nope/000000 2\n")
    with pytest.raises(FileNotFoundError, match=r"bad\.txt:2: no annotation folder"):
        read_split(tmp_path / "vid", "bad")
    pairs = FramePairs(videos, CLASSES, stride=1)
    assert len(pairs) == 4
    batch = collate_pairs([pairs[0], pairs[1]])
    assert batch["rgb_a"].shape == (2, 3, 32, 32)
    first = videos[0].frames[0].objects
    assert batch["labels_a"][0].tolist() == [CLASSES.index(o.name) + 1 for o in first]
    assert batch["tracks_b"][0].tolist() == [o.trackid for o in videos[0].frames[1].objects]


def test_det_images_are_pairs_of_one_image_with_zero_motion(tmp_path):
    import cv2

    image = tmp_path / "det.JPEG"
    cv2.imwrite(str(image), np.zeros((24, 32, 3), np.uint8))
    write_frame_xml(tmp_path / "det.xml", (32, 24), [VidObject(0, "cross", (2, 3, 12, 14))])
    pairs = FramePairs([], CLASSES, det=det_frames([tmp_path / "det.xml"], [image]), pad_to=2)
    item = pairs[(0, 3)]
    assert torch.equal(item["rgb_a"], item["rgb_b"]) and torch.equal(item["boxes_a"], item["boxes_b"])
    assert item["labels_a"].tolist() == [CLASSES.index("cross") + 1, -1]
    batch = unpad(collate_pairs([item]))
    assert batch["boxes_b"][0].tolist() == [[2, 3, 12, 14]] and batch["tracks_a"][0].tolist() == [0]


def _det_root(tmp_path) -> Path:
    """A tiny ILSVRC DET layout: the devkit's per-class list and a list relative to Annotations/DET."""
    import cv2

    for entry, objects in (("ILSVRC2013_train/n0/n0_1", [VidObject(0, "cross", (2, 3, 12, 14)),
                                                        VidObject(1, "n99", (1, 1, 5, 5))]),
                           ("ILSVRC2013_train/n0/n0_2", [VidObject(0, "n99", (1, 1, 5, 5))])):
        write_frame_xml(tmp_path / "Annotations" / "DET" / "train" / f"{entry}.xml", (32, 24), objects)
        image = tmp_path / "Data" / "DET" / "train" / f"{entry}.JPEG"
        image.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(image), np.zeros((24, 32, 3), np.uint8))
    lists = tmp_path / "ImageSets" / "DET"
    lists.mkdir(parents=True)
    # positive, partial positive, negative (a negative need not have an XML)
    (lists / "train_1.txt").write_text("ILSVRC2013_train/n0/n0_1 1\nILSVRC2013_train/n0/n0_2 0\n"
                                       "ILSVRC2013_train/n0/n0_3 -1\n")
    (lists / "ours.txt").write_text("train/ILSVRC2013_train/n0/n0_2 1\n")
    return tmp_path


def test_det_lists_of_the_devkit_layout(tmp_path):
    root = _det_root(tmp_path)
    (frame,) = read_det_list(root, "ImageSets/DET/train_1.txt")  # positives only
    assert frame.image == root / "Data" / "DET" / "train" / "ILSVRC2013_train/n0/n0_1.JPEG"
    assert [o.name for o in frame.objects] == ["cross", "n99"] and frame.image.is_file()
    assert len(read_det_list(root, "ImageSets/DET/train_1.txt", keep=(1, 0))) == 2
    (frame,) = read_det_list(root, root / "ImageSets" / "DET" / "ours.txt")  # relative to Annotations/DET
    assert frame.objects[0].name == "n99"
    with pytest.raises(FileNotFoundError, match=r"train_1\.txt:3: no annotation .*n0_3\.xml"):
        read_det_list(root, "ImageSets/DET/train_1.txt", keep=(1, -1))
    (root / "ImageSets" / "DET" / "bad.txt").write_text("a b c\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: expected '<image_id> \[<label>\]'"):
        read_det_list(root, "ImageSets/DET/bad.txt")
