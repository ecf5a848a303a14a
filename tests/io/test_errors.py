"""Bad input: every failure is a VideoError (an OSError) naming the file and the reason."""

from __future__ import annotations

import pickle

import av
import numpy as np
import pytest
from io_helpers import make_frames

from deepvideo.io import VideoError, VideoReader, error_reason, open_video, probe, write_video


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("bad") / "good.mp4", make_frames(20), fps=25, gop=5)


def _expect(path, reason_part: str, fn=VideoReader):
    with pytest.raises(VideoError) as info:
        fn(path)
    err = info.value
    assert isinstance(err, OSError)
    assert str(path) in str(err) and err.path == str(path)
    assert reason_part in err.reason
    return err


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.mp4", "file not found")
    _expect(tmp_path / "nope.mp4", "file not found", fn=probe)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    _expect(path, "empty file (0 bytes)")


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    _expect(path, "not a readable video")


def test_truncated_mp4_cut_in_half(good, tmp_path):
    path = tmp_path / "half.mp4"
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _expect(path, "truncated, corrupt, or not a video")


def test_truncated_faststart_mp4_reports_missing_frames(tmp_path):
    # moov before mdat: the header survives the cut, the frames do not.
    frames = make_frames(30)
    path = tmp_path / "faststart.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cut = tmp_path / "cut.mp4"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    reader = VideoReader(cut)
    assert reader.num_frames == 30  # the header's claim, before any packet is read
    with pytest.raises(VideoError, match="the container lists 30, the file is truncated"):
        reader.get_frames([29])
    assert reader.num_frames < 30  # corrected by the packet scan


def test_directory_given_to_video_reader(tmp_path):
    _expect(tmp_path, "is a directory")


def test_file_without_video_stream(tmp_path):
    path = tmp_path / "audio.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    _expect(path, "no video stream (streams found: audio)")


@pytest.mark.parametrize("indices", [[20], [-1], [0, 5, 99]])
def test_out_of_range_indices_name_file_and_range(good, indices):
    reader = VideoReader(good)
    with pytest.raises(VideoError) as info:
        reader.get_frames(indices)
    message = str(info.value)
    assert str(good) in message and "valid indices are 0..19 (20 frames)" in message
    assert reader.get_frames([19]).shape[0] == 1  # the reader is still usable


def test_open_video_missing_paths(tmp_path):
    with pytest.raises(VideoError, match="x.mp4: file not found"):
        open_video(tmp_path / "missing_dir" / "x.mp4")
    from deepvideo.io import FrameFolderReader

    with pytest.raises(VideoError, match="frames: frame folder not found"):
        FrameFolderReader(tmp_path / "frames")


def test_video_error_pickles_with_its_fields():
    err = pickle.loads(pickle.dumps(VideoError("a/b.mp4", "empty file (0 bytes)")))
    assert (err.path, err.reason) == ("a/b.mp4", "empty file (0 bytes)")
    assert str(err) == "a/b.mp4: empty file (0 bytes)"


def _garbled_middle(good, tmp_path):
    data = good.read_bytes()
    third = len(data) // 3
    noise = np.random.default_rng(0).integers(0, 256, third, dtype=np.uint8).tobytes()
    path = tmp_path / "garbled.mp4"
    path.write_bytes(data[:third] + noise + data[2 * third:])
    return path


def _moov_cut(good, tmp_path):
    path = tmp_path / "tail_cut.mp4"
    data = good.read_bytes()
    path.write_bytes(data[: len(data) * 9 // 10])
    return path


@pytest.mark.parametrize("make, reason", [(_garbled_middle, "Invalid data found when processing input"),
                                          (_moov_cut, "no video packets in the file (the container "
                                                      "lists 20 frames): the file is truncated")])
def test_damaged_files_give_a_video_error_naming_them_through_every_entry_point(good, tmp_path, make, reason):
    path = make(good, tmp_path)
    for read in (lambda: open_video(path).get_frames(range(20)),
                 lambda: VideoReader(path, short_side=24).get_frames(range(19, -1, -3))):
        with pytest.raises(VideoError) as info:
            read()
        assert info.value.path == str(path) and reason in info.value.reason


def test_a_garbage_image_in_a_frame_folder_names_the_image(tmp_path):
    from deepvideo.io import write_frame_folder

    folder = write_frame_folder(tmp_path / "frames", make_frames(5))
    (folder / "img_00003.jpg").write_bytes(b"garbage, not a jpeg")
    reader = open_video(folder)
    assert reader.get_frames([0, 1, 3]).shape[0] == 3
    with pytest.raises(VideoError) as info:
        reader.get_frames([2])
    assert info.value.path == str(folder / "img_00003.jpg")
    assert info.value.reason == "frame 2: not a readable image"


def test_error_reason_keeps_the_library_text_without_errno_or_file_name():
    assert error_reason(FileNotFoundError(2, "No such file or directory", "/x/y.mp4")) == \
        "No such file or directory"
    assert error_reason(ValueError("  bad value  ")) == "bad value"
    try:
        av.open("/definitely/missing/file.mp4")
    except av.error.FFmpegError as exc:
        assert error_reason(exc) == "No such file or directory"
