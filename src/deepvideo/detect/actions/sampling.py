"""Keyframe-centred clip sampling (AVA: keyframes at 1 fps; Gu et al., CVPR 2018).

A keyframe at ``timestamp`` seconds is frame ``c = round((timestamp - start) * fps)`` of its
video (``start``: the time of frame 0; 900 s for the AVA v2 clips, which are minutes 15-30 of
each film). The backbone's clip of ``num_frames`` frames at ``stride`` spans
``num_frames * stride`` frames centred on it, as in SlowFast's AVA loader (Feichtenhofer et
al., ICCV 2019): frames ``c - num_frames * stride // 2 + i * stride``, ``i = 0 .. num_frames - 1``,
clamped into the video (the first or last frame repeats near its ends).
"""

from __future__ import annotations

import numpy as np


def keyframe_index(timestamp: float, fps: float, start: float = 0.0) -> int:
    """The frame index of a keyframe at ``timestamp`` seconds."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return int(round((timestamp - start) * fps))


def keyframe_clip(timestamp: float, fps: float, num_frames: int, stride: int, video_frames: int,
                  start: float = 0.0) -> np.ndarray:
    """Frame indices ``[num_frames]`` of the clip centred on the keyframe, clamped to the video."""
    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames and stride must be positive, got {num_frames} and {stride}")
    if video_frames < 1:
        raise ValueError(f"the video has no frames ({video_frames})")
    centre = keyframe_index(timestamp, fps, start)
    if not 0 <= centre < video_frames:
        raise ValueError(f"keyframe {timestamp} s is frame {centre}, outside the video's "
                         f"{video_frames} frames (fps {fps}, start {start} s)")
    first = centre - (num_frames * stride) // 2
    return np.clip(first + stride * np.arange(num_frames), 0, video_frames - 1)


def keyframe_timestamps(video_frames: int, fps: float, margin: float = 0.0, start: float = 0.0) -> list[int]:
    """Whole-second keyframe times of a video (1 fps), at least ``margin`` seconds from its ends."""
    duration = video_frames / fps
    first = int(np.ceil(start + margin))
    return [t for t in range(first, int(np.floor(start + duration - margin)) + 1)
            if 0 <= keyframe_index(t, fps, start) < video_frames]
