"""What a model eats: the one value shared by the data pipeline and the models.

The data side builds its sampler and transforms from a model's ``InputSpec``; the models
never import the data package and the data package never imports a model family.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

MODALITIES = ("rgb", "flow", "rgbdiff", "audio")
AUDIO_MISSING = ("error", "silence")

# Flow enters every model in the same units, pixels of displacement (as in the two-stream
# paper): models taking rgb and flow divide it by this (data.transforms.Normalize) and flow-only
# specs state it as their std, so a temporal stream's weights carry over unchanged into the
# fusion models built on it. (I3D's flow preset states its own: its published weights take
# flow / 20 px.)
FLOW_SCALE = 1.0


@dataclass(frozen=True)
class InputSpec:
    """Input requirements of a model.

    A batch holds each modality with all its frames in temporal order:
    ``rgb [N, 3, num_segments*num_frames, H, W]`` and
    ``flow [N, 2, num_segments*flow_stack, H, W]`` and ``audio [N, 1, audio_frames, audio_mels]``
    (the log-mel spectrogram of the clip's time span, resampled to ``audio_rate`` Hz; see
    :mod:`deepvideo.data.audio`). ``audio_missing``: a video without an audio stream is an error
    (``"error"``) or a silent track (``"silence"``).
    """

    modalities: tuple[str, ...] = ("rgb",)
    num_segments: int = 1  # K snippets/chunks spread over the video (TSN, 3D fusion)
    num_frames: int = 1  # RGB frames per snippet
    frame_stride: int | tuple[int, int] = 1  # tau, or a (lo, hi) range for frame-rate jitter
    flow_stack: int = 0  # L flow fields per snippet
    crop_size: int = 224
    mean: tuple[float, ...] = (0.45, 0.45, 0.45)
    std: tuple[float, ...] = (0.225, 0.225, 0.225)
    dense_temporal: bool = False  # the head returns [N, K, T'] instead of [N, K]
    audio_rate: int = 16000  # Hz (Xiao et al. 2020)
    audio_mels: int = 80  # mel bins
    audio_frames: int = 128  # spectrogram steps per clip
    audio_missing: str = "error"  # or "silence"

    def __post_init__(self) -> None:
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if not self.modalities or unknown:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {self.modalities}")
        if self.num_segments < 1 or self.num_frames < 1 or self.crop_size < 1:
            raise ValueError("num_segments, num_frames and crop_size must be >= 1")
        if "flow" in self.modalities and self.flow_stack < 1:
            raise ValueError("a flow model needs flow_stack >= 1")
        if "audio" in self.modalities and min(self.audio_rate, self.audio_mels, self.audio_frames) < 1:
            raise ValueError("an audio model needs audio_rate, audio_mels and audio_frames >= 1")
        if self.audio_missing not in AUDIO_MISSING:
            raise ValueError(f"audio_missing must be one of {AUDIO_MISSING}, got {self.audio_missing!r}")
        lo, hi = self.stride_range
        if not 1 <= lo <= hi:
            raise ValueError(f"frame_stride must be >= 1 (or a range lo <= hi), got {self.frame_stride}")

    @property
    def stride_range(self) -> tuple[int, int]:
        """``(lo, hi)`` of the frame stride; ``lo == hi`` when there is no jitter."""
        s = self.frame_stride
        if isinstance(s, int):
            return (s, s)
        lo, hi = s
        return (int(lo), int(hi))

    @property
    def batch_keys(self) -> tuple[str, ...]:
        """The batch entries the model reads, in the order of its modalities: ``rgbdiff`` is
        computed from ``rgb`` inside the model, so it reads ``rgb``."""
        keys: list[str] = []
        for m in self.modalities:
            key = "rgb" if m == "rgbdiff" else m
            if key not in keys:
                keys.append(key)
        return tuple(keys)

    def replace(self, **changes) -> InputSpec:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)
