"""The HTTP app: predictions by upload and by server-side path, limits, bad input -> 4xx (never
5xx), private upload folders, token, bounded pool, jobs with progress."""

from __future__ import annotations

import tempfile
import warnings

import pytest

from damaged_video import write_damaged_video, write_intact_video
from deepvideo.io import write_video
from deepvideo.serve.app import ServeSettings
from deepvideo.serve.jobs import Busy, JobPool
from deepvideo.serve.scorer import load_scorer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note on httpx
    from fastapi.testclient import TestClient

from deepvideo.serve.routes import create_app  # noqa: E402


@pytest.fixture(scope="module")
def scorer(tiny_run):
    return load_scorer(tiny_run)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Malformed uploads: name -> (bytes, expected status)."""
    root = tmp_path_factory.mktemp("corpus")
    intact = write_intact_video(root / "intact.mp4")
    damaged = write_damaged_video(root / "damaged.mp4", intact)
    good = intact.read_bytes()
    return {
        "empty.mp4": (b"", 400),
        "notes.mp4": (b"just some text, renamed to .mp4\n" * 20, 415),
        "truncated.mp4": (good[: len(good) // 3], 422),
        "ftyp_garbage.mp4": (b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8, 422),
        "riff_garbage.avi": (b"RIFF\x00\x10\x00\x00AVI LIST" + b"\xff" * 3000, 422),
        "damaged.mp4": (damaged.read_bytes(), 200),  # FFmpeg conceals the damage: predicted
    }


def _client(scorer, tmp_path, **settings):
    app = create_app({"tiny": scorer}, ServeSettings(work_dir=tmp_path / "work", **settings))
    return TestClient(app, raise_server_exceptions=False)


def test_health_models_and_page(scorer, tmp_path):
    with _client(scorer, tmp_path) as c:
        assert c.get("/health").json()["status"] == "ok"
        doc = c.get("/models").json()
        assert doc["models"][0]["name"] == "tiny" and doc["models"][0]["classes"] == ["red", "green", "blue"]
        assert doc["models"][0]["input_spec"]["num_frames"] == 4
        page = c.get("/").text
        assert 'id="drop"' in page and "/app.js" in page and "http" not in page.replace("http-equiv", "")
        assert c.get("/app.js").headers["content-type"].startswith("text/javascript")


def test_upload_and_server_path_give_the_same_timeline(scorer, shared_data, tmp_path):
    video = shared_data / "video" / "test.mp4"  # 300 frames at 30 fps
    with _client(scorer, tmp_path, allowed_root=video.parent) as c:
        up = c.post("/predict", files={"file": ("clip.bin", video.read_bytes(), "application/octet-stream")},
                    data={"top_k": "2", "window": "2s", "stride": "1s"})
        assert up.status_code == 200, up.text
        by_path = c.post("/predict", data={"path": "test.mp4", "top_k": "2"})
        assert by_path.status_code == 200, by_path.text
    a, b = up.json(), by_path.json()
    assert a["video"] == "clip.bin" and (a["width"], a["height"], a["fps"]) == (340, 256, 30.0)
    assert len(a["timeline"]["windows"]) == (300 - 60) // 30 + 1 and len(a["top"]) == 2
    assert a["top"] == b["top"] and a["timeline"]["windows"] == b["timeline"]["windows"]
    assert list((tmp_path / "work").rglob("*")) == [p for p in (tmp_path / "work").rglob("*") if p.is_dir()]
    assert not any((tmp_path / "work").rglob("req-*")), "upload folders are deleted"


def test_malformed_uploads_are_4xx_and_nothing_is_written_elsewhere(scorer, corpus, tmp_path, monkeypatch):
    system_tmp = tmp_path / "system_tmp"
    system_tmp.mkdir()
    with _client(scorer, tmp_path) as c:
        monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))  # a library spooling to /tmp would show
        for name, (data, status) in corpus.items():
            r = c.post("/predict", files={"file": (name, data, "video/mp4")})
            assert r.status_code == status, (name, r.text)
            if status != 200:
                assert name in r.json()["error"]
        big_header = "x" * 200_000
        r = c.post("/predict", files={"file": ("h.mp4", b"data", "video/mp4")}, headers={"X-Big": big_header})
        assert 400 <= r.status_code < 500
        body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\nX-Pad: "
                + b"p" * 100_000 + b"\r\n\r\ndata\r\n--b--\r\n")
        r = c.post("/predict", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 400 and "malformed multipart" in r.json()["error"]
        many = {f"f{i}": "v" * 1000 for i in range(100)}  # 100 kB of form fields, no file
        r = c.post("/predict", data=many, files={"file": ("a.mp4", b"x")})
        assert r.status_code == 413 and "form fields" in r.json()["error"]
    assert list(system_tmp.iterdir()) == []
    assert not any((tmp_path / "work").rglob("req-*"))


def test_limits(scorer, tmp_path):
    video = write_video(tmp_path / "v.mp4", __import__("numpy").zeros((30, 64, 96, 3), "uint8"), fps=10)
    data = video.read_bytes()
    with _client(scorer, tmp_path, max_upload_mb=len(data) / 2**20 / 2) as c:
        r = c.post("/predict", files={"file": ("v.mp4", data)})
        assert r.status_code == 413 and "larger than the limit" in r.json()["error"]
    with _client(scorer, tmp_path, max_duration_s=2.0) as c:
        r = c.post("/predict", files={"file": ("v.mp4", data)})
        assert r.status_code == 422 and "too long: 3.0 s (the limit is 2 s)" in r.json()["error"]
    with _client(scorer, tmp_path, max_side=80) as c:
        r = c.post("/predict", files={"file": ("v.mp4", data)})
        assert r.status_code == 422 and "resolution 96x64 is above the limit of 80" in r.json()["error"]
        r = c.post("/predict", files={"file": ("v.mp4", data)}, data={"top_k": "zero"})
        assert r.status_code == 400 and "top_k must be a whole number" in r.json()["error"]
        r = c.post("/predict", files={"file": ("v.mp4", data)}, data={"model": "other"})
        assert r.status_code == 404 and "unknown model 'other'" in r.json()["error"]
        r = c.post("/predict", data={"path": "v.mp4"})
        assert r.status_code == 403 and "server-side paths are disabled" in r.json()["error"]


def test_server_paths_stay_under_the_root(scorer, tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "secret.mp4").write_bytes(b"x")
    (tmp_path / "root" / "link.mp4").symlink_to(tmp_path / "secret.mp4")
    with _client(scorer, tmp_path, allowed_root=tmp_path / "root") as c:
        for path in ("../secret.mp4", str(tmp_path / "secret.mp4"), "link.mp4"):
            r = c.post("/predict", json={"path": path})
            assert r.status_code == 403 and "outside the allowed root" in r.json()["error"], path
        assert c.post("/predict", json={"path": "missing.mp4"}).status_code == 404


def test_token(scorer, tmp_path):
    with _client(scorer, tmp_path, token="s3cret") as c:
        assert c.get("/models").status_code == 401
        assert c.get("/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.post("/predict", files={"file": ("a.mp4", b"")}).status_code == 401
        assert c.get("/health").status_code == 200


def test_pool_is_bounded():
    pool = JobPool(workers=1, queue=1)
    a, b = pool.reserve(), pool.reserve()
    with pytest.raises(Busy, match="2 predictions running or queued"):
        pool.reserve()
    pool.release(b)
    pool.submit(a, lambda job: setattr(job, "progress", 0.5)).result()
    assert pool.pending == 0 and pool.get(a.id).progress == 0.5
    pool.shutdown()


def test_job_progress_then_result(scorer, corpus, tmp_path):
    with _client(scorer, tmp_path) as c:
        r = c.post("/jobs", files={"file": ("i.mp4", corpus["damaged.mp4"][0])})
        assert r.status_code == 202
        job = c.app.state.serve.pool.get(r.json()["id"])
        job.future.result(timeout=60)
        doc = c.get(r.json()["url"]).json()
        assert doc["state"] == "done" and doc["progress"] == 1.0 and doc["result"]["frames"] == 30
        bad = c.post("/jobs", files={"file": ("t.mp4", b"\x00\x00\x00\x18ftypisom" + b"z" * 500)}).json()
        c.app.state.serve.pool.get(bad["id"]).future.result(timeout=60)
        doc = c.get(bad["url"]).json()
        assert doc["state"] == "error" and doc["status"] == 422
        assert c.get("/jobs/nope").status_code == 404
