"""`deepvideo data synth`: options reach the generator, the summary is printed, errors are clear."""

from __future__ import annotations

import json

import av
import pytest
from typer.testing import CliRunner

from deepvideo.cli.main import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, ["data", "synth", *args])


def test_synth_writes_a_dataset_and_prints_a_summary(tmp_path):
    out = tmp_path / "sm"
    result = _run("kind-direction", "--out", str(out), "--videos-per-class", "3", "--size", "32x24",
                  "--frames", "5", "--fps", "10", "--seed", "9", "--workers", "1", "--clips-per-group", "1")
    assert result.exit_code == 0, result.output
    assert "12 classes x 3 videos = 36 videos" in result.output
    assert "36 written" in result.output and "CircleMoveLeft" in result.output
    assert str(out.resolve()) in result.output.replace("\n", "")
    manifest = json.loads((out / "synth.json").read_text())
    assert manifest["seed"] == 9 and manifest["parameters"]["fps"] == 10.0
    assert manifest["counts"]["splits"]["1"] == {"train": 24, "test": 12}
    video = out / "videos" / "SquareMoveUp" / "v_SquareMoveUp_g02_c01.mp4"
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(video=0))
        assert (stream.width, stream.height, len(frames)) == (32, 24, 5)
        assert float(stream.average_rate) == pytest.approx(10.0)
    # a rerun resumes: nothing to do
    again = _run("kind-direction", "--out", str(out), "--videos-per-class", "3", "--size", "32x24",
                 "--frames", "5", "--fps", "10", "--seed", "9", "--workers", "1", "--clips-per-group", "1")
    assert again.exit_code == 0 and "0 written, 36 already there" in again.output


def test_synth_moving_camera_flag_is_recorded(tmp_path):
    out = tmp_path / "ms"
    result = _run("motion-shapes", "--out", str(out), "-n", "3", "--size", "32x32", "--frames", "3",
                  "--moving-camera", "-j", "2")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "synth.json").read_text())["parameters"]["moving_camera"] is True
    assert len(list((out / "videos").rglob("*.mp4"))) == 30


def test_synth_mixed_camera_flag_films_every_other_video_moving(tmp_path):
    out = tmp_path / "mixed"
    result = _run("motion-shapes", "--out", str(out), "-n", "4", "--size", "32x32", "--frames", "3",
                  "--mixed-camera", "-j", "1")
    assert result.exit_code == 0, result.output
    assert "camera: 20 static, 20 moving" in result.output
    assert json.loads((out / "synth.json").read_text())["parameters"]["mixed_camera"] is True
    lines = (out / "annotations" / "camera.txt").read_text().splitlines()
    assert [line.split()[1] for line in lines[:4]] == ["static", "moving", "static", "moving"]


@pytest.mark.parametrize(("args", "message"), [
    (["nope"], "unknown set 'nope'"),
    (["motion-shapes", "--size", "big"], "expected WIDTHxHEIGHT"),
    (["motion-shapes", "-n", "2"], "at least 3"),
    (["motion-shapes", "--frames", "1"], "frames must be at least 2"),
    (["dynamic-scenes", "--moving-camera"], "drop --moving-camera"),
    (["motion-shapes", "--moving-camera", "--mixed-camera"], "exclude each other"),
])
def test_synth_bad_arguments(tmp_path, args, message):
    result = _run(*args[:1], "--out", str(tmp_path / "x"), *args[1:])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not list(tmp_path.rglob("*.mp4"))


def test_synth_refuses_a_folder_with_other_settings(tmp_path):
    out = tmp_path / "ds"
    assert _run("dynamic-scenes", "--out", str(out), "-n", "3", "--size", "32x32", "--frames", "3",
                "-j", "1").exit_code == 0
    assert (out / "annotations" / "camera.txt").is_file()
    result = _run("dynamic-scenes", "--out", str(out), "-n", "3", "--size", "32x32", "--frames", "4",
                  "-j", "1")
    assert result.exit_code == 2
    assert "other settings (parameters.frames: 3 -> 4)" in " ".join(result.output.split())


def test_synth_audio_flag_gives_each_video_its_class_tone(tmp_path):
    import numpy as np

    from deepvideo.data.audio import AUDIO_RATE, read_audio
    from deepvideo.data.synth.audio import TONE_BASE_HZ

    out = tmp_path / "tones"
    result = _run("motion-shapes", "--out", str(out), "-n", "3", "--size", "32x32", "--frames", "8",
                  "--audio", "-j", "1")
    assert result.exit_code == 0, result.output
    tones = TONE_BASE_HZ * 2.0 ** (np.arange(10) / 4)
    heard = []
    for video in sorted((out / "videos").rglob("*_g01_c01.mp4")):
        samples = read_audio(video)
        peak_hz = np.argmax(np.abs(np.fft.rfft(samples))) * AUDIO_RATE / len(samples)
        heard.append(int(np.argmin(np.abs(tones - peak_hz))))
        assert np.min(np.abs(tones - peak_hz)) < 10, peak_hz
    assert sorted(heard) == list(range(10))  # one tone per class
