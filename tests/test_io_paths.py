import os

import pytest

from deepvideo.io.paths import UnsafePathError, relative_to_root, safe_output_path


def test_safe_output_path_joins_relative(tmp_path):
    assert safe_output_path(tmp_path, "a/b.mp4") == tmp_path.resolve() / "a/b.mp4"


@pytest.mark.parametrize("rel", ["/etc/passwd", "../x", "a/../../x"])
def test_safe_output_path_refuses_escapes(tmp_path, rel):
    with pytest.raises(UnsafePathError, match="list.txt:3"):
        safe_output_path(tmp_path / "out", rel, entry="list.txt:3")


def test_safe_output_path_refuses_links_out(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(tmp_path, out / "link")
    with pytest.raises(UnsafePathError, match="link"):
        safe_output_path(out, "link/x.mp4")


def test_relative_to_root(tmp_path):
    assert str(relative_to_root(tmp_path / "c" / "v.mp4", tmp_path)) == "c/v.mp4"
    with pytest.raises(UnsafePathError):
        relative_to_root("/elsewhere/v.mp4", tmp_path)
