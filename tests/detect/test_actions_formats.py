"""AVA CSV / action list / proposals, tube JSON and keyframe sampling."""

from pathlib import Path

import numpy as np
import pytest

from deepvideo.detect.actions import ava
from deepvideo.detect.actions.framebox import Tube, TubeFormatError, TubeVideo, read_tubes, write_tubes
from deepvideo.detect.actions.sampling import keyframe_clip, keyframe_index, keyframe_timestamps

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "annotations"
if not SHARED.exists():
    SHARED = Path("/work/shared/data/annotations")


def shared(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} absent (shared sample data)")
    return path


def test_shared_csv_round_trip_is_exact(tmp_path):
    src = shared("ava_ava_sample.csv")
    rows = ava.read_ava_csv(src)
    assert rows[0] == ava.AvaBox("0f39OWEqJ24", 902, (0.031, 0.162, 0.670, 0.995), 12, 0)
    out = ava.write_ava_csv(tmp_path / "a.csv", rows)
    assert out.read_bytes() == src.read_bytes()
    assert ava.read_ava_csv(out) == rows


def test_shared_excluded_and_action_list_round_trip(tmp_path):
    src = shared("ava_ava_excluded_timestamps_sample.csv")
    keys = ava.read_excluded(src)
    assert keys == {("0f39OWEqJ24", 903), ("_-Z6wFjXtGQ", 902)}
    out = ava.write_excluded(tmp_path / "e.csv", sorted(keys, key=lambda k: src.read_text().index(k[0])))
    assert out.read_bytes() == src.read_bytes()
    lst = shared("ava_action_list.txt")
    actions = ava.read_action_list(lst)
    assert actions[12] == "action1" and list(actions)[:3] == [12, 17, 79]
    assert ava.write_action_list(tmp_path / "l.pbtxt", actions).read_bytes() == lst.read_bytes()
    for style in ("label", "txt"):
        assert ava.read_action_list(ava.write_action_list(tmp_path / f"l.{style}", actions, style)) == actions


def test_label_pbtxt_with_label_type(tmp_path):
    path = tmp_path / "a.pbtxt"
    path.write_text('label {\n  name: "bend/bow (at the waist)"\n  label_id: 1\n'
                    '  label_type: PERSON_MOVEMENT\n}\n')
    assert ava.read_action_list(path) == {1: "bend/bow (at the waist)"}


@pytest.mark.parametrize("text, where, what", [
    ("v,0902,0.1,0.1,0.5,0.5,3,1\nv,09x2,0.1,0.1,0.5,0.5,3,1\n", ":2:", "timestamp must be an integer"),
    ("v,0902,0.1,0.1,0.5\n", ":1:", "columns"),
    ("v,0902,0.5,0.1,0.2,0.5,3,1\n", ":1:", "x1 <= x2"),
    ("v,0902,0.1,0.1,1.5,0.5,3,1\n", ":1:", "normalised"),
])
def test_csv_errors_name_file_and_line(tmp_path, text, where, what):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ava.AvaFormatError, match=what) as info:
        ava.read_ava_csv(path)
    assert f"bad.csv{where}" in str(info.value)


def test_pbtxt_error_names_line(tmp_path):
    path = tmp_path / "l.pbtxt"
    path.write_text('item {\n  name: "x"\n  bogus line\n}\n')
    with pytest.raises(ava.AvaFormatError, match=r"l.pbtxt:3: expected 'key: value'"):
        ava.read_action_list(path)


def test_comma_in_video_id_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'a,b' cannot be written"):
        ava.write_ava_csv(tmp_path / "x.csv", [ava.AvaBox("a,b", 1, (0, 0, 1, 1), 1, 1)])


def test_detections_round_trip_and_people(tmp_path):
    rows = [ava.AvaBox("v", 3, (0.1, 0.2, 0.3, 0.4), 2, score=0.25),
            ava.AvaBox("v", 3, (0.1, 0.2, 0.3, 0.4), 5, score=0.5)]
    assert ava.read_ava_csv(ava.write_ava_csv(tmp_path / "d.csv", rows), detections=True) == rows
    gt = [ava.AvaBox("v", 3, (0.1, 0.2, 0.3, 0.4), a, 7) for a in (2, 5)]
    assert ava.keyframe_people(gt) == {("v", 3): [((0.1, 0.2, 0.3, 0.4), {2, 5}, 7)]}


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npz"])
def test_proposals_round_trip(tmp_path, suffix):
    name = "vid,a" if suffix != ".csv" else "vid_a"
    props = {(name, 902): np.array([[0.1, 0.2, 0.5, 0.9, 0.75], [0.0, 0.0, 1.0, 1.0, 0.5]]),
             ("b", 7): np.array([[0.25, 0.25, 0.5, 0.5, 1.0]])}
    back = ava.read_proposals(ava.write_proposals(tmp_path / f"p{suffix}", props))
    assert sorted(back) == sorted(props)
    for key, value in props.items():
        np.testing.assert_allclose(back[key], value)


def test_proposals_bad_shape_named(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"v,0902": [[0.1, 0.2, 0.3]]}')
    with pytest.raises(ava.AvaFormatError, match=r"p.json: 'v,0902'.*\[n, 5\]"):
        ava.read_proposals(path)


def test_keyframe_clip_centred_and_clamped():
    # centre frame 30 at 10 fps, 4 frames at stride 2 span 8 frames: 26, 28, 30, 32
    assert keyframe_clip(3, 10, 4, 2, 100).tolist() == [26, 28, 30, 32]
    assert keyframe_clip(0, 10, 4, 2, 100).tolist() == [0, 0, 0, 2]
    assert keyframe_clip(902, 30, 2, 1, 30 * 60, start=900).tolist() == [59, 60]
    assert keyframe_index(902, 30, start=900) == 60
    with pytest.raises(ValueError, match="outside the video"):
        keyframe_clip(20, 10, 4, 2, 100)
    assert keyframe_timestamps(48, 8.0, margin=1.0) == [1, 2, 3, 4, 5]


def test_tube_json_round_trip_and_errors(tmp_path):
    videos = {"a/v1": TubeVideo(10, 32, 24, [Tube(1, [2, 3, 4], [[0, 0, 5, 5], [1, 1, 6, 6], [2, 2, 7, 7]])])}
    labels, back = read_tubes(write_tubes(tmp_path / "t.json", ["x", "y"], videos))
    assert labels == ["x", "y"]
    tube = back["a/v1"].tubes[0]
    assert tube.label == 1 and tube.frames.tolist() == [2, 3, 4] and tube.boxes[2].tolist() == [2, 2, 7, 7]
    videos["a/v1"].tubes[0].label = 5
    with pytest.raises(TubeFormatError, match=r"t2.json: videos\['a/v1'\].tubes\[0\]: label 5"):
        read_tubes(write_tubes(tmp_path / "t2.json", ["x", "y"], videos))
