"""Annotation formats: every loader on tiny hand-written layouts, the real MMAction2 samples,
and the errors (file:line + text) for malformed lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepvideo.data import DatasetIndex
from deepvideo.data.formats import (
    AnnotationError,
    load_dataset,
    load_dynamic_scenes,
    read_label_map,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- label maps
def test_read_label_map_plain_indexed_and_json(tmp_path):
    assert read_label_map(write(tmp_path / "a.txt", "b c\n\na\n")) == ["b c", "a"]
    # classInd style, 1-based, out of order on disk -> sorted by index
    assert read_label_map(write(tmp_path / "c.txt", "2 Archery\n1 ApplyEyeMakeup\n")) == [
        "ApplyEyeMakeup",
        "Archery",
    ]
    labels = {"Pushing something": "1", "Approaching something": "0"}
    assert read_label_map(write(tmp_path / "l.json", json.dumps(labels))) == [
        "Approaching something",
        "Pushing something",
    ]


def test_read_label_map_duplicate_names_the_line(tmp_path):
    path = write(tmp_path / "dup.txt", "a\nb\na\n")
    with pytest.raises(AnnotationError, match=r"dup\.txt:3: duplicate class name \(first on line 1\): 'a'"):
        read_label_map(path)
    with pytest.raises(AnnotationError, match="contiguous"):
        read_label_map(write(tmp_path / "gap.txt", "1 a\n3 b\n"))


def test_shared_label_maps_parse(shared_data):
    ann = shared_data / "annotations"
    sizes = {"ucf101": 101, "hmdb51": 51, "kinetics": 400, "sthv2": 174}
    for name, size in sizes.items():
        path = next(ann.glob(f"{name}_label_map*.txt"))
        names = read_label_map(path)
        assert len(names) == size and len(set(names)) == size
    assert read_label_map(ann / "ucf101_label_map.txt")[0] == "ApplyEyeMakeup"
    assert read_label_map(ann / "kinetics_label_map_k400.txt")[1] == "air drumming"


# ----------------------------------------------------------------------------- MMAction2 lists
def test_shared_video_lists(shared_data):
    ann = shared_data / "annotations"
    index = load_dataset("video_list", ann_file=ann / "video_test_list.txt", root="/videos")
    assert isinstance(index, DatasetIndex)
    assert [r.path for r in index] == ["/videos/test.mp4"] * 2
    assert [r.label for r in index] == [0, 0]
    assert index[1].source.endswith("video_test_list.txt:2")
    multi = load_dataset("video_list", ann_file=ann / "video_test_list_multi_label.txt", multi_label=True)
    assert [r.label for r in multi] == [(0, 3), (0, 2, 4)]
    assert multi.classes == ["0", "1", "2", "3", "4"]


def test_shared_rawframe_lists(shared_data):
    ann = shared_data / "annotations"
    k400 = ann / "kinetics_label_map_k400.txt"
    plain = load_dataset("rawframe_list", ann_file=ann / "rawframe_test_list.txt", root="r", classes=k400)
    assert [(r.path, r.num_frames, r.start_index, r.label) for r in plain] == [("r/imgs", 5, 1, 127)] * 2
    assert len(plain.classes) == 400
    offset = load_dataset(
        "rawframe_list", ann_file=ann / "rawframe_test_list_with_offset.txt", with_offset=True
    )
    assert [(r.num_frames, r.start_index, r.meta["offset"]) for r in offset] == [(5, 3, 2)] * 2
    multi = load_dataset(
        "rawframe_list", ann_file=ann / "rawframe_test_list_multi_label.txt", multi_label=True
    )
    assert [r.label for r in multi] == [(1,), (3, 5)]


@pytest.mark.parametrize(
    "line, options, reason",
    [
        ("a.mp4", {}, "expected 'path label', got 1 field"),
        ("a.mp4 1 2", {}, "expected .path label., got 3 field"),
        ("a.mp4 x", {}, "label 'x' is not an integer"),
        ("a.mp4 5", {"num_classes": 5}, r"label 5 out of range \(expected 0..4\)"),
        ("a.mp4 -1", {}, "label -1 out of range"),
    ],
)
def test_video_list_errors_name_file_line_and_text(tmp_path, line, options, reason):
    path = write(tmp_path / "list.txt", f"ok.mp4 0\n{line}\n")
    with pytest.raises(AnnotationError, match=rf"list\.txt:2: {reason}.*{line!r}"):
        load_dataset("video_list", ann_file=path, **options)


def test_rawframe_list_errors(tmp_path):
    path = write(tmp_path / "raw.txt", "imgs 5 1\nimgs five 1\n")
    with pytest.raises(AnnotationError, match=r"raw\.txt:2: offset / total_frames"):
        load_dataset("rawframe_list", ann_file=path)
    with pytest.raises(AnnotationError, match=r"raw\.txt:1: expected 'dir offset total_frames label'"):
        load_dataset("rawframe_list", ann_file=path, with_offset=True)


def test_non_strict_skips_and_records(tmp_path):
    path = write(tmp_path / "list.txt", "a.mp4 0\nbad\nb.mp4 1\nc.mp4 z\n")
    with pytest.warns(UserWarning, match="skipped 2 malformed"):
        index = load_dataset("video_list", ann_file=path, strict=False)
    assert [Path(r.path).name for r in index] == ["a.mp4", "b.mp4"]
    assert [s.source for s in index.skipped] == [f"{path}:2", f"{path}:4"]
    assert index.skipped[1].text == "c.mp4 z"


def test_check_exists(tmp_path):
    (tmp_path / "there.mp4").write_bytes(b"")
    path = write(tmp_path / "list.txt", "there.mp4 0\nmissing.mp4 0\n")
    assert len(load_dataset("video_list", ann_file=path)) == 2  # not checked by default
    with pytest.raises(AnnotationError, match=r"list\.txt:2: video not found"):
        load_dataset("video_list", ann_file=path, check_exists=True)


# ----------------------------------------------------------------------------- folder
def test_folder_per_class(tmp_path):
    for rel in ["b/x.mp4", "b/y.AVI", "a/z.webm", "a/notes.txt", ".hidden/q.mp4"]:
        write(tmp_path / rel, "")
    frames = tmp_path / "a" / "clip"
    for i in (3, 4, 5):
        write(frames / f"img_{i:05d}.jpg", "")
    index = load_dataset("folder", root=tmp_path, split="train")
    assert index.classes == ["a", "b"]
    assert [(Path(r.path).name, r.label) for r in index] == [("z.webm", 0), ("x.mp4", 1), ("y.AVI", 1)]
    assert all(r.split == "train" for r in index)
    with_frames = load_dataset("folder", root=tmp_path, frame_folders=True, extensions="mp4")
    rec = with_frames[0]
    assert (Path(rec.path).name, rec.num_frames, rec.start_index, rec.label) == ("clip", 3, 3, 0)
    assert [Path(r.path).name for r in with_frames] == ["clip", "x.mp4"]
    with pytest.raises(AnnotationError, match="not in the given class list"):
        load_dataset("folder", root=tmp_path, classes=["a"])


# ----------------------------------------------------------------------------- UCF101
def make_ucf(root: Path) -> Path:
    ann = root / "ucfTrainTestlist"
    write(ann / "classInd.txt", "1 ApplyEyeMakeup\n2 Archery\n3 HandstandPushups\n")
    write(
        ann / "trainlist01.txt",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
        "Archery/v_Archery_g08_c01.avi 2\n\nHandstandPushups/v_HandStandPushups_g08_c01.avi 3\n",
    )
    write(
        ann / "testlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nArchery/v_Archery_g01_c01.avi\n"
    )
    (root / "UCF-101").mkdir()
    return ann


def test_ucf101_train_and_test(tmp_path):
    make_ucf(tmp_path)
    train = load_dataset("ucf101", root=tmp_path, split=1, subset="train")
    assert train.classes == ["ApplyEyeMakeup", "Archery", "HandstandPushups"]
    assert [r.label for r in train] == [0, 1, 2]
    assert train[0].path == str(tmp_path / "UCF-101" / "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi")
    assert train[2].source.endswith("trainlist01.txt:4")  # the blank line still counts
    test = load_dataset("ucf101", root=str(tmp_path), split="1", subset="test")  # CLI-style strings
    assert [r.label for r in test] == [0, 1] and {r.split for r in test} == {"test"}
    assert len(load_dataset("ucf101", root=tmp_path, subset="all")) == 5


@pytest.mark.parametrize(
    "line, reason",
    [
        ("Archery/v_Archery_g08_c01.avi 4", r"label 4 out of range \(classInd is 1-based, 1..3\)"),
        ("Archery/v_Archery_g08_c01.avi 1", r"label 1 \(ApplyEyeMakeup\) disagrees with the class folder"),
        ("Archery/v_Archery_g08_c01.avi one", "label 'one' is not an integer"),
        ("a b c", "expected 'Class/video.avi \\[label\\]', got 3 fields"),
    ],
)
def test_ucf101_malformed_lines(tmp_path, line, reason):
    ann = make_ucf(tmp_path)
    write(ann / "trainlist02.txt", f"Archery/v_Archery_g08_c01.avi 2\n{line}\n")
    with pytest.raises(AnnotationError, match=rf"trainlist02\.txt:2: {reason}"):
        load_dataset("ucf101", root=tmp_path, split=2)


def test_ucf101_unknown_class_in_test_list(tmp_path):
    ann = make_ucf(tmp_path)
    write(ann / "testlist03.txt", "Juggling/v_Juggling_g01_c01.avi\n")
    with pytest.raises(AnnotationError, match=r"testlist03\.txt:1: unknown class folder 'Juggling'"):
        load_dataset("ucf101", root=tmp_path, split=3, subset="test")


def test_ucf101_missing_list_names_file(tmp_path):
    make_ucf(tmp_path)
    with pytest.raises(FileNotFoundError, match="trainlist02.txt"):
        load_dataset("ucf101", root=tmp_path, split=2)


# ----------------------------------------------------------------------------- HMDB51
def test_hmdb51_flags(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    write(splits / "wave_test_split1.txt", "w1.avi 1 \nw2.avi 2 \nw3.avi 0 \n")
    write(splits / "brush_hair_test_split1.txt", "b1.avi 2\nb2.avi 1\n")
    write(splits / "wave_test_split2.txt", "w1.avi 2\n")
    train = load_dataset("hmdb51", root=tmp_path, split=1, subset="train")
    assert train.classes == ["brush_hair", "wave"]
    assert [(Path(r.path).parent.name, Path(r.path).name, r.label) for r in train] == [
        ("brush_hair", "b2.avi", 0),
        ("wave", "w1.avi", 1),
    ]
    test = load_dataset("hmdb51", root=tmp_path, subset="test")
    assert [Path(r.path).name for r in test] == ["b1.avi", "w2.avi"]
    assert [Path(r.path).name for r in load_dataset("hmdb51", root=tmp_path, subset="unused")] == ["w3.avi"]
    write(splits / "wave_test_split3.txt", "w1.avi 3\n")
    with pytest.raises(AnnotationError, match=r"wave_test_split3\.txt:1: flag '3' must be 0"):
        load_dataset("hmdb51", root=tmp_path, split=3)


# ----------------------------------------------------------------------------- Kinetics
def test_kinetics_csv(tmp_path):
    csv = write(
        tmp_path / "train.csv",
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        'air drumming,abc,14,24,train,0\n"zumba, fast",xyz,0,10,train,0\nabseiling,def,3,13,val,0\n',
    )
    index = load_dataset("kinetics", annotations=csv, root="/k")  # generic alias of csv_path
    assert index.classes == ["abseiling", "air drumming", "zumba, fast"]
    assert index[0].path == "/k/air drumming/abc_000014_000024.mp4"
    assert index[0].label == 1 and index[0].split == "train" and index[0].source.endswith("train.csv:2")
    assert index[1].label == 2
    val = load_dataset(
        "kinetics",
        csv_path=csv,
        root="/k",
        subset="validate",
        space_replacement="_",
        classes=["abseiling", "air drumming", "zumba, fast"],
    )
    assert [r.path for r in val] == ["/k/abseiling/def_000003_000013.mp4"]
    custom = load_dataset("kinetics", csv_path=csv, root="/k", template="{split}/{youtube_id}.mp4")
    assert custom[0].path == "/k/train/abc.mp4"


def test_kinetics_test_csv_without_label_and_errors(tmp_path):
    csv = write(tmp_path / "test.csv", "youtube_id,time_start,time_end,split\nabc,1,11,test\n")
    index = load_dataset("kinetics", csv_path=csv, root="/k", classes=["a", "b"])
    assert index[0].path == "/k/abc_000001_000011.mp4" and index[0].label == -1
    bad = write(
        tmp_path / "bad.csv", "label,youtube_id,time_start,time_end,split\na,x,1,2,train\nq,y,1,2,train\n"
    )
    with pytest.raises(AnnotationError, match=r"bad\.csv:3: unknown class 'q'"):
        load_dataset("kinetics", csv_path=bad, classes=["a"])
    short = write(tmp_path / "short.csv", "label,youtube_id,time_start,time_end,split\na,x,1\n")
    with pytest.raises(AnnotationError, match=r"short\.csv:2: expected 5 fields"):
        load_dataset("kinetics", csv_path=short)


# ----------------------------------------------------------------------------- Something-Something v2
def test_sthv2(tmp_path):
    labels = write(
        tmp_path / "labels.json",
        json.dumps({"Putting something into something": "1", "Approaching something with your camera": "0"}),
    )
    entries = [
        {
            "id": "78687",
            "label": "putting a pen into a cup",
            "template": "Putting [something] into [something]",
            "placeholders": ["a pen", "a cup"],
        },
        {
            "id": "42326",
            "label": "approaching a door",
            "template": "Approaching [something] with your camera",
            "placeholders": ["a door"],
        },
    ]
    train = write(tmp_path / "something-something-v2-train.json", json.dumps(entries))
    index = load_dataset("sthv2", annotation_file=train, labels_file=labels, root="/v")
    assert [(r.path, r.label, r.split) for r in index] == [
        ("/v/78687.webm", 1, "train"),
        ("/v/42326.webm", 0, "train"),
    ]
    assert index[0].meta["placeholders"] == ["a pen", "a cup"] and index[1].source.endswith(":[1]")
    test = write(tmp_path / "something-something-v2-test.json", json.dumps([{"id": "1"}]))
    assert [
        (r.label, r.path)
        for r in load_dataset("sthv2", annotation_file=test, labels_file=labels, ext=".mp4", root="/v")
    ] == [(-1, "/v/1.mp4")]
    bad = write(tmp_path / "val.json", json.dumps([{"id": "5", "template": "Dropping [something]"}]))
    with pytest.raises(AnnotationError, match=r"val\.json:\[0\]: unknown template 'Dropping something'"):
        load_dataset("sthv2", annotation_file=bad, labels_file=labels)


def test_sthv2_shared_label_map_as_text(shared_data, tmp_path):
    names = read_label_map(shared_data / "annotations" / "sthv2_label_map.txt")
    entry = {"id": "9", "template": names[5].replace("something", "[something]")}
    ann = write(tmp_path / "validation.json", json.dumps([entry]))
    index = load_dataset(
        "sthv2", annotation_file=ann, labels_file=shared_data / "annotations" / "sthv2_label_map.txt"
    )
    assert index[0].label == 5 and index[0].split == "val"


# ----------------------------------------------------------------------------- dynamic scenes
def make_yup(root: Path, classes=("beach", "fountain"), per_camera=30) -> None:
    for cam in ("camera_static", "camera_moving"):
        for c in classes:
            for i in range(per_camera):
                write(root / cam / c / f"{c}_{cam}_{i:02d}.mp4", "")


def test_yup_protocol_10_90_equal_cameras(tmp_path):
    make_yup(tmp_path)
    train = load_dynamic_scenes(tmp_path, subset="train", seed=3)
    test = load_dynamic_scenes(tmp_path, subset="test", seed=3)
    assert train.classes == ["beach", "fountain"]
    # YUP++: 60 videos per class, 10% train = 6 = 3 static + 3 moving; 54 test
    for label in (0, 1):
        cams = [r.meta["camera"] for r in train if r.label == label]
        assert sorted(cams) == ["moving"] * 3 + ["static"] * 3
        assert sum(r.label == label for r in test) == 54
    assert not {r.path for r in train} & {r.path for r in test}
    again = load_dynamic_scenes(tmp_path, subset="train", seed=3)
    assert [r.path for r in again] == [r.path for r in train]
    other = load_dynamic_scenes(tmp_path, subset="train", seed=4)
    assert {r.path for r in other} != {r.path for r in train}
    assert len(load_dataset("dynamic-scenes", root=tmp_path, subset="all")) == 120


def test_dynamic_scenes_ucf101_layout_with_camera_file(tmp_path):
    # the layout `deepvideo data synth dynamic-scenes` writes
    ann = tmp_path / "annotations"
    write(ann / "classInd.txt", "1 Flicker\n2 Ripples\n")
    vids = [f"{c}/v_{c}_g{g:02d}_c01.mp4" for c in ("Flicker", "Ripples") for g in range(1, 5)]
    write(ann / "trainlist01.txt", "".join(f"{v} {1 + (i >= 4)}\n" for i, v in enumerate(vids) if i % 4 != 0))
    write(ann / "testlist01.txt", "".join(f"{v}\n" for i, v in enumerate(vids) if i % 4 == 0))
    write(
        ann / "camera.txt",
        "".join(f"{v} {'static' if i % 2 == 0 else 'moving'}\n" for i, v in enumerate(vids)),
    )
    (tmp_path / "videos").mkdir()
    train = load_dataset("dynamic_scenes", root=tmp_path, subset="train")
    assert len(train) == 6 and train.classes == ["Flicker", "Ripples"]
    assert train[0].path == str(tmp_path / "videos" / vids[1]) and train[0].meta["camera"] == "moving"
    test = load_dataset("dynamic_scenes", root=tmp_path, subset="test")
    assert [r.meta["camera"] for r in test] == ["static", "static"]
    frac = load_dataset(
        "dynamic_scenes", root=tmp_path, subset="train", protocol="fraction", train_fraction=0.5
    )
    assert sorted((r.label, r.meta["camera"]) for r in frac) == [
        (0, "moving"),
        (0, "static"),
        (1, "moving"),
        (1, "static"),
    ]


def test_ucf101_camera_marker_folders(tmp_path):
    ann = tmp_path / "annotations"
    write(ann / "classInd.txt", "1 beach\n")
    write(ann / "trainlist01.txt", "camera_moving/beach/a.mp4 1\nstatic/beach/b.mp4 1\n")
    index = load_dataset("ucf101", root=tmp_path)
    assert [r.meta["camera"] for r in index] == ["moving", "static"]


# ----------------------------------------------------------------------------- dispatcher
def test_load_dataset_rejects_unknown_format_and_options(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset format 'avi'.*ucf101"):
        load_dataset("avi")
    with pytest.raises(TypeError, match=r"format 'ucf101' got unknown option\(s\) \['folds'\].*subset"):
        load_dataset("ucf101", root=tmp_path, folds=3)
    with pytest.raises(ValueError, match="option split='train' must be of type int"):
        load_dataset("ucf101", root=tmp_path, split="train")


def test_annotation_error_survives_pickling():
    import pickle

    err = pickle.loads(pickle.dumps(AnnotationError("list.txt", 3, "a b c", "expected 2 fields")))
    assert str(err) == "list.txt:3: expected 2 fields: 'a b c'" and err.line == 3
