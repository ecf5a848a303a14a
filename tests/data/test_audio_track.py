"""Audio tracks: decoding (PyAV), log-mel spectrograms, clip windows, synthetic class tones, ClipDataset."""

import math

import numpy as np
import pytest
import torch

from deepvideo.data.audio import (
    AUDIO_FRAMES,
    AUDIO_RATE,
    N_MELS,
    WINDOW_S,
    NoAudioError,
    clip_log_mel,
    hz_to_mel,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    read_audio,
)
from deepvideo.data.synth.audio import TONE_BASE_HZ, add_audio_track, add_class_tones, class_tone
from deepvideo.io.writer import write_video

FPS = 8


@pytest.fixture
def silent_video(tmp_path):
    return write_video(tmp_path / "v.mp4", np.zeros((16, 32, 32, 3), np.uint8), fps=FPS)  # 2 s


def dominant_hz(samples: np.ndarray, rate: int = AUDIO_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()])


def test_paper_settings():
    assert (AUDIO_RATE, N_MELS, AUDIO_FRAMES, WINDOW_S) == (16000, 80, 128, 0.032)


def test_mel_scale_and_filterbank():
    assert hz_to_mel(700.0) == pytest.approx(2595 * math.log10(2))
    assert mel_to_hz(hz_to_mel(1234.0)) == pytest.approx(1234.0)
    fb = mel_filterbank(512, 16000, 10)
    assert fb.shape == (10, 257) and float(fb.min()) == 0.0
    assert torch.all(fb.max(dim=1).values > 0.5) and float(fb.max()) <= 1.0 + 1e-6
    # each filter's peak sits at its centre frequency, equally spaced in mel
    centres = mel_to_hz(np.linspace(0, hz_to_mel(8000), 12))[1:-1]
    peaks = fb.argmax(dim=1).numpy() * 16000 / 512
    assert np.all(np.abs(peaks - centres) <= 16000 / 512)


def test_log_mel_of_a_tone_peaks_at_its_mel_bin():
    t = torch.arange(16000) / 16000
    mel = log_mel(torch.sin(2 * math.pi * 1000 * t))
    assert mel.shape == (16000 // 256 + 1, N_MELS)
    expected = int(np.argmin(np.abs(mel_to_hz(np.linspace(0, hz_to_mel(8000), N_MELS + 2))[1:-1] - 1000)))
    assert abs(int(mel.mean(0).argmax()) - expected) <= 1


def test_written_audio_starts_where_the_video_starts(silent_video):
    """The AAC encoder's priming samples (1024 at the start) are signalled to the container, so a
    sound written at 0.5 s is decoded at 0.5 s, aligned with the frames (it was 64 ms late)."""
    t = np.arange(2 * AUDIO_RATE) / AUDIO_RATE
    sound = np.where(t >= 0.5, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0)
    add_audio_track(silent_video, sound.astype(np.float32))
    back = read_audio(silent_video)
    onset = int(np.argmax(np.abs(back) > 0.05)) / AUDIO_RATE
    assert onset == pytest.approx(0.5, abs=0.002)


def test_video_without_audio_is_a_named_error_or_silence(silent_video):
    with pytest.raises(NoAudioError, match="v.mp4: the video has no audio stream"):
        read_audio(silent_video)
    silence = read_audio(silent_video, missing="silence")
    assert silence.shape == (2 * AUDIO_RATE,) and not silence.any()
    with pytest.raises(ValueError, match="missing must be"):
        read_audio(silent_video, missing="skip")


def test_class_tone_round_trip_through_the_video(silent_video):
    tone = class_tone(4, 2.0)
    assert dominant_hz(tone) == pytest.approx(TONE_BASE_HZ * 2.0, abs=1.0)  # 300 Hz * 2^(4/4)
    add_audio_track(silent_video, tone)
    back = read_audio(silent_video)
    assert back.size >= 2 * AUDIO_RATE
    assert dominant_hz(back[: 2 * AUDIO_RATE]) == pytest.approx(600.0, abs=2.0)
    assert read_audio(silent_video, rate=8000).size == pytest.approx(back.size / 2, abs=64)  # resampled


def test_clip_window_follows_the_frames():
    rate = 16000
    samples = np.zeros(2 * rate, np.float32)
    samples[rate:] = np.sin(2 * np.pi * 500 * np.arange(rate) / rate)  # sound in the second second
    quiet = clip_log_mel(samples, np.arange(0, 8), FPS, rate, frames=16, n_mels=20)
    loud = clip_log_mel(samples, np.arange(8, 16), FPS, rate, frames=16, n_mels=20)
    assert quiet.shape == loud.shape == (1, 16, 20)
    peak = lambda m: m[0].amax(dim=1)  # noqa: E731  (loudest mel bin per step)
    assert float(peak(loud).min()) > float(peak(quiet).max()) + 5
    past_end = clip_log_mel(samples, np.arange(14, 22), FPS, rate, frames=16, n_mels=20)  # zero-padded
    assert past_end.shape == (1, 16, 20)
    assert float(peak(past_end)[-1]) < float(peak(loud).min()) - 5 < float(peak(past_end)[0])


def test_add_class_tones_to_a_set(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "classInd.txt").write_text("1 Low\n2 High\n")
    for name in ("Low", "High"):
        write_video(tmp_path / "videos" / name / f"v_{name}.mp4", np.zeros((8, 32, 32, 3), np.uint8), fps=FPS)
    assert add_class_tones(tmp_path) == {"added": 2, "kept": 0}
    assert add_class_tones(tmp_path) == {"added": 0, "kept": 2}  # resumes
    low, high = (read_audio(tmp_path / "videos" / n / f"v_{n}.mp4")[:AUDIO_RATE] for n in ("Low", "High"))
    assert dominant_hz(low) == pytest.approx(300.0, abs=2.0)
    assert dominant_hz(high) == pytest.approx(300.0 * 2 ** 0.25, abs=2.0)
    with pytest.raises(FileNotFoundError, match="classInd.txt"):
        add_class_tones(tmp_path / "videos")


def test_clip_dataset_delivers_aligned_audio(silent_video):
    from deepvideo.data.dataset import ClipDataset
    from deepvideo.data.record import DatasetIndex, VideoRecord
    from deepvideo.spec import InputSpec

    add_audio_track(silent_video, class_tone(0, 2.0))
    index = DatasetIndex([VideoRecord(str(silent_video), 0)], ["A"])
    spec = InputSpec(("rgb", "audio"), num_frames=4, crop_size=32, audio_frames=16, audio_mels=20)
    item = ClipDataset(index, spec, train=True)[0]
    assert item["rgb"].shape == (3, 4, 32, 32) and item["audio"].shape == (1, 16, 20)
    test = ClipDataset(index, spec.replace(modalities=("audio",)), train=False, num_clips=2)[0]
    assert set(test) >= {"audio"} and "rgb" not in test and test["audio"].shape == (2, 1, 16, 20)
    with pytest.raises(ValueError, match="audio_missing"):
        spec.replace(audio_missing="skip")
    assert spec.batch_keys == ("rgb", "audio")


def test_generate_dataset_with_audio(tmp_path, monkeypatch):
    import deepvideo.data.synth.audio as synth_audio
    from deepvideo.data.synth import RenderParams, generate_dataset

    calls = []
    monkeypatch.setattr(synth_audio, "add_class_tones", lambda out, seed: calls.append((out, seed)))
    tiny = RenderParams(width=32, height=32, frames=2)
    summary = generate_dataset("motion-shapes", tmp_path / "ms", videos_per_class=3, params=tiny, seed=2,
                               clips_per_group=1, audio=True)
    assert summary.manifest["audio"] == "class tones" and calls == [(tmp_path / "ms", 2)]
