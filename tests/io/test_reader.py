"""VideoReader: exact frames (equal to sequential decoding), metadata, resize, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from io_helpers import decode_all, make_frames, picture_types

from deepvideo.io import VideoReader, open_video, probe, write_video
from deepvideo.io.meta import output_size

SHARED = {  # name: (frames, width, height, fps, codec) from ../shared/data/SOURCES.md
    "test.mp4": (300, 340, 256, 30.0, "h264"),
    "test.avi": (164, 320, 240, 25.0, "mpeg4"),
    "bikes.mp4": (250, 640, 272, 25.0, "h264"),
    "demo.mp4": (280, 340, 256, 28.0, "h264"),
    "bigbuckbunny.mp4": (132, 1280, 720, 25.0, "h264"),
}


def _check_against_sequential(path, index_lists, **kw) -> None:
    ref = decode_all(path)
    with VideoReader(path, **kw) as reader:
        assert reader.num_frames == len(ref)
        for idx in index_lists:
            got = reader.get_frames(idx)
            assert got.dtype == torch.uint8 and got.shape == (len(idx), *ref.shape[1:])
            np.testing.assert_array_equal(got.numpy(), ref[np.asarray(idx, dtype=np.int64)])


def _index_lists(n: int, seed: int = 0, full: bool = True) -> list[list[int]]:
    """Edge cases, then random lists; ``full=False`` keeps it cheap for long real videos."""
    rng = np.random.default_rng(seed)
    lists = [[0], [n - 1], [n - 1, 0, n // 2, n // 2, 1]]
    if full:
        lists += [list(range(n))[::-1], list(range(0, n, 3))]
    lists += [sorted(rng.integers(0, n, 8).tolist()) for _ in range(3 if full else 1)]
    lists += [rng.integers(0, n, 6).tolist() for _ in range(3 if full else 1)]
    return lists


@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_sample_metadata(shared_data, name):
    path = shared_data / "video" / name
    if not path.exists():
        pytest.skip(f"{path} missing")
    frames, width, height, fps, codec = SHARED[name]
    meta = probe(path)
    assert (meta.num_frames, meta.width, meta.height, meta.codec) == (frames, width, height, codec)
    assert meta.fps == pytest.approx(fps)
    assert meta.duration == pytest.approx(frames / fps, rel=0.02)
    assert meta.frame_count == "container" and meta.pix_fmt == "yuv420p"
    reader = VideoReader(path)
    assert len(reader) == frames and reader._index is None  # metadata did not scan or decode


@pytest.mark.parametrize("name", ["test.mp4", "test.avi", "bikes.mp4"])
def test_shared_samples_equal_sequential_decoding(shared_data, name):
    path = shared_data / "video" / name
    if not path.exists():
        pytest.skip(f"{path} missing")
    _check_against_sequential(path, _index_lists(SHARED[name][0], full=False))


def test_shared_multi_gop_sample_uses_several_seek_points(shared_data):
    path = shared_data / "video" / "bikes.mp4"
    if not path.exists():
        pytest.skip(f"{path} missing")
    reader = VideoReader(path)
    reader.get_frames([0])
    assert reader._index.pts_keys == [0, 30, 76, 137, 187, 242]


@pytest.mark.parametrize("name", ["gop1", "gop5", "gop12", "gop_default", "avi", "avi_bframes", "mkv",
                                  "gray_odd", "odd"])
def test_synthetic_equal_sequential_decoding(synthetic_videos, name):
    path = synthetic_videos[name]
    _check_against_sequential(path, _index_lists(len(decode_all(path)), seed=1))


@pytest.mark.parametrize("name", ["gop5", "mkv"])
def test_synthetic_videos_have_b_frames(synthetic_videos, name):
    # The exactness tests above are only meaningful if frames are reordered.
    assert "B" in picture_types(synthetic_videos[name])


def test_seek_points_follow_the_gop(synthetic_videos):
    reader = VideoReader(synthetic_videos["gop5"])
    reader.get_frames([0])
    assert reader._index.pts_keys == list(range(0, 40, 5)) and not reader._counting
    avi = VideoReader(synthetic_videos["avi"])
    avi.get_frames([0])
    assert avi._counting and avi._index.count_keys == [0, 10, 20, 30]
    open_gop = VideoReader(synthetic_videos["avi_bframes"])
    open_gop.get_frames([0])
    assert open_gop._index.count_keys == [0]  # keyframes with leading B-frames are not seek points


def test_threads_and_skip_settings_do_not_change_frames(synthetic_videos):
    path = synthetic_videos["gop12"]
    idx = [39, 3, 3, 17, 0, 25]
    ref = decode_all(path)[idx]
    for kw in ({"threads": 1}, {"threads": 2}, {"skip_nonref": False}):
        np.testing.assert_array_equal(VideoReader(path, **kw).get_frames(idx).numpy(), ref)


def test_frame_counts_without_container_count(synthetic_videos):
    meta = probe(synthetic_videos["mkv"])
    assert meta.frame_count == "packets" and meta.num_frames == 40 and meta.container == "matroska,webm"


def test_grayscale_odd_size_returns_rgb(synthetic_videos):
    path = synthetic_videos["gray_odd"]
    reader = VideoReader(path)
    assert (reader.width, reader.height, reader.meta.pix_fmt) == (63, 47, "gray")
    frames = reader.get_frames([0, 5])
    assert frames.shape == (2, 47, 63, 3)
    assert torch.equal(frames[..., 0], frames[..., 1]) and torch.equal(frames[..., 1], frames[..., 2])


def test_writer_round_trip_metadata(tmp_path):
    frames = make_frames(33, 48, 64)
    path = write_video(tmp_path / "a.mp4", frames, fps=12, gop=4)
    meta = probe(path)
    assert (meta.num_frames, meta.width, meta.height, meta.fps) == (33, 64, 48, 12.0)
    decoded = VideoReader(path).get_frames(range(33)).numpy().astype(int)
    assert np.abs(decoded - frames).mean() < 6  # lossy H.264 at crf 18, but the same pictures


@pytest.mark.parametrize("short_side, interpolation", [(24, "bilinear"), (36, "area"), (96, "bicubic")])
def test_resize_on_decode(synthetic_videos, short_side, interpolation):
    path = synthetic_videos["gop5"]
    reader = VideoReader(path, short_side=short_side, interpolation=interpolation)
    h, w = output_size(48, 64, short_side)
    assert reader.frame_size == (h, w) and min(h, w) == short_side
    assert w / h == pytest.approx(64 / 48, rel=0.05)
    got = reader.get_frames([7, 2])
    assert got.shape == (2, h, w, 3)
    with __import__("av").open(str(path)) as container:
        all_frames = list(container.decode(video=0))
    for frame, out in zip((all_frames[7], all_frames[2]), got, strict=True):
        ref = frame.reformat(width=w, height=h, format="rgb24",
                             interpolation=interpolation.upper() if interpolation != "nearest" else "POINT")
        np.testing.assert_array_equal(out.numpy(), ref.to_ndarray())


def test_output_size_keeps_aspect():
    assert output_size(240, 320, 128) == (128, 171)
    assert output_size(320, 240, 128) == (171, 128)
    assert output_size(48, 64, None) == (48, 64)
    with pytest.raises(ValueError):
        output_size(48, 64, 0)


def test_empty_index_list(synthetic_videos):
    out = VideoReader(synthetic_videos["gop5"], short_side=24).get_frames([])
    assert out.shape == (0, 24, 32, 3) and out.dtype == torch.uint8


def test_reader_pickles_without_its_container(synthetic_videos):
    reader = VideoReader(synthetic_videos["gop12"])
    first = reader.get_frames([20])
    assert reader._container is not None
    clone = pickle.loads(pickle.dumps(reader))
    assert clone._container is None and clone.num_frames == 40
    assert torch.equal(clone.get_frames([20]), first)
    reader.close()
    assert torch.equal(reader.get_frames([20]), first)  # re-opens after close


def test_iteration_is_sequential_decoding(synthetic_videos):
    path = synthetic_videos["avi_bframes"]
    np.testing.assert_array_equal(np.stack([f.numpy() for f in VideoReader(path)]), decode_all(path))


def test_open_video_picks_the_reader(synthetic_videos, tmp_path):
    assert isinstance(open_video(synthetic_videos["gop5"]), VideoReader)
    from deepvideo.io import FrameFolderReader, write_frame_folder

    folder = write_frame_folder(tmp_path / "frames", make_frames(3))
    reader = open_video(folder, fps=10)
    assert isinstance(reader, FrameFolderReader) and reader.duration == pytest.approx(0.3)


# One reader shared by every example: its cached decoder state carries over between calls,
# which is exactly what a dataset does.
_PROPERTY = {}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 39), min_size=1, max_size=12))
def test_property_any_index_list_equals_sequential_decoding(synthetic_videos, indices):
    if not _PROPERTY:
        path = synthetic_videos["gop12"]
        _PROPERTY.update(ref=decode_all(path), reader=VideoReader(path, threads=1))
    got = _PROPERTY["reader"].get_frames(indices).numpy()
    np.testing.assert_array_equal(got, _PROPERTY["ref"][indices])


class _Clips(torch.utils.data.Dataset):
    def __init__(self, reader):
        self.reader = reader

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return self.reader.get_frames([i * 9, i])


def test_reader_used_before_fork_in_dataloader_workers(synthetic_videos):
    path = synthetic_videos["gop5"]
    reader = VideoReader(path, threads=1)
    reader.get_frames([3])  # the parent holds an open container and decoder state
    loader = torch.utils.data.DataLoader(_Clips(reader), batch_size=None, num_workers=2,
                                         multiprocessing_context="fork")
    ref = decode_all(path)
    for i, frames in enumerate(loader):
        np.testing.assert_array_equal(frames.numpy(), ref[[i * 9, i]])
    assert torch.equal(reader.get_frames([3]), torch.from_numpy(ref[[3]]))


def test_variable_frame_rate_maps_frames_by_pts_rank(tmp_path):
    # Gaps of 20 ms and 90 ms: pts * average_rate would put frame 1 at index 2.
    from fractions import Fraction

    import av

    frames = make_frames(24)
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"g": "6"}
        t = 0
        for i, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = t, Fraction(1, 1000)
            t += 20 if i % 3 else 90
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    reader = VideoReader(path)
    assert reader.num_frames == 24 and reader.fps < 25  # the average rate, not the nominal 30
    _check_against_sequential(path, _index_lists(24, seed=3))


@pytest.mark.parametrize("name", ["gop5", "gop12", "mkv"])
def test_each_seek_lands_on_its_own_keyframe(synthetic_videos, name):
    # Exactness does not depend on it, speed does: a seek that lands one GOP early decodes it twice.
    reader = VideoReader(synthetic_videos[name])
    reader.get_frames([0])
    index = reader._index
    pts_of = {i: p for p, i in index.pts_to_index.items()}
    container, stream = reader._open()
    assert len(index.pts_keys) > 2 and index.pts_seek[0] is None  # frame 0: a fresh container, no seek
    for key, seek_ts in zip(index.pts_keys[1:], index.pts_seek[1:], strict=True):
        container.seek(seek_ts, stream=stream, backward=True)
        first = next(p for p in container.demux(stream) if p.size)
        assert first.is_keyframe and first.pts == pts_of[key]
