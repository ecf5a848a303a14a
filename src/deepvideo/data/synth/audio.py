"""An optional audio track for the synthetic sets: one tone per class.

Class ``k`` sounds a sine at ``TONE_BASE_HZ · 2^(k / 4)`` Hz (quarter-octave steps: 300 Hz ...
1.6 kHz for ten classes, well inside the 8 kHz band of 16 kHz audio) with a random phase, a
random loudness in [0.2, 0.4] and white noise of amplitude 0.02, all drawn from the video's own
seed, so an audio-only model can tell the classes apart and an audiovisual one can use both.

:func:`add_class_tones` adds the track to every video of a rendered set (UCF101 layout,
``annotations/classInd.txt``) in place, atomically per video; videos that already have an audio
stream are left alone, so it resumes. :func:`add_audio_track` muxes given samples into one video
(the video stream is copied, the audio is encoded as AAC).
"""

from __future__ import annotations

import os
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np

from deepvideo.io.atomic import replaced_when_done

TONE_BASE_HZ = 300.0
TRACK_RATE = 16000


def class_tone(class_index: int, seconds: float, rate: int = TRACK_RATE, seed: int = 0) -> np.ndarray:
    """Mono float32 samples of class ``class_index``'s tone (see the module docstring)."""
    rng = np.random.default_rng([seed, class_index])
    t = np.arange(int(round(seconds * rate))) / rate
    freq = TONE_BASE_HZ * 2.0 ** (class_index / 4)
    wave = rng.uniform(0.2, 0.4) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    return (wave + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def add_audio_track(video: str | os.PathLike, samples: np.ndarray, rate: int = TRACK_RATE,
                    out: str | os.PathLike | None = None) -> Path:
    """Write ``video`` with ``samples`` (mono float32) as its AAC audio track to ``out``
    (default: replace ``video``); the video stream is copied unchanged."""
    import av

    video, out = Path(video), Path(out or video)
    with replaced_when_done(out, suffix=video.suffix) as tmp:
        with av.open(str(video)) as src, av.open(str(tmp), "w") as dst:
            v_in = src.streams.video[0]
            v_out = dst.add_stream_from_template(v_in)
            a_out = dst.add_stream("aac", rate=rate, layout="mono")
            for packet in src.demux(v_in):
                if packet.dts is None:
                    continue
                packet.stream = v_out
                dst.mux(packet)
            frame = av.AudioFrame.from_ndarray(np.asarray(samples, np.float32)[None], format="flt",
                                               layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
            for p in a_out.encode(frame):
                dst.mux(p)
            for p in a_out.encode(None):
                dst.mux(p)
    return out


def _duration(path: Path) -> tuple[float, bool]:
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = v.frames or sum(1 for _ in c.demux(v) if _.dts is not None)
        return float(frames / v.average_rate), bool(c.streams.audio)


def add_class_tones(root: str | os.PathLike, seed: int = 0, rate: int = TRACK_RATE) -> dict:
    """Give every video of the rendered set at ``root`` its class tone; ``{"added", "kept"}``."""
    root = Path(root)
    ind = root / "annotations" / "classInd.txt"
    if not ind.is_file():
        raise FileNotFoundError(f"{ind}: not a synthetic set in the UCF101 layout (no classInd.txt)")
    classes = [line.split()[1] for line in ind.read_text().splitlines() if line.strip()]
    added = kept = 0
    for k, name in enumerate(classes):
        for video in sorted((root / "videos" / name).glob("*.mp4")):
            seconds, has_audio = _duration(video)
            if has_audio:
                kept += 1
                continue
            video_seed = zlib.crc32(f"{seed}/{video.name}".encode())
            add_audio_track(video, class_tone(k, seconds, rate, video_seed), rate)
            added += 1
    return {"added": added, "kept": kept}
