"""One atomic-write helper: a reader never sees a half-written file, a failure leaves the old one."""

import json

import pytest

from deepvideo.io.atomic import atomic_write_json, atomic_write_text, replaced_when_done


def test_write_text_and_json_round_trip(tmp_path):
    p = atomic_write_text(tmp_path / "sub" / "a.txt", "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    q = atomic_write_json(tmp_path / "b.json", {"x": [1, 2], "p": tmp_path})
    assert json.loads(q.read_text()) == {"x": [1, 2], "p": str(tmp_path)}
    assert sorted(f.name for f in tmp_path.iterdir()) == ["b.json", "sub"]  # no temporary left


def test_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), replaced_when_done(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["keep.txt"]


def test_a_folder_is_replaced_whole(tmp_path):
    target = tmp_path / "flow"
    target.mkdir()
    (target / "stale.jpg").write_text("x")
    with replaced_when_done(target) as tmp:
        tmp.mkdir()
        (tmp / "new.jpg").write_text("y")
    assert [f.name for f in target.iterdir()] == ["new.jpg"]
    assert [f.name for f in tmp_path.iterdir()] == ["flow"]
