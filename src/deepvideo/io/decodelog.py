"""FFmpeg's decoder error reports, collected per frame: damage that decodes without an exception.

Garbage inside the coded data of some pictures often does not stop FFmpeg: the H.264/MPEG
decoders log reports such as ``error while decoding MB 4 1, bytestream 93`` at error level,
*conceal* the damage (copy the lost blocks from neighbours or the previous picture) and
return the frame. No exception reaches Python, so such a video looks intact unless the log
is read. :func:`decode_packet` decodes one packet while capturing those reports through
PyAV's logging (``av.logging.Capture``); :class:`DecodeDamage` keeps them by frame index
and describes them (``"3 decoder errors in frames 10, 12–13"``).

Process-global: PyAV routes FFmpeg's log through one callback for the whole process. While a
packet is decoded here, the FFmpeg log level is raised to at least ``ERROR``, repeated
messages are not folded, and every error report of any thread without a capture of its own
lands in this capture; the previous settings are restored afterwards. So two threads of one
process decoding damaged videos at the same time may get each other's reports (DataLoader
workers are processes, which is fine). Frame attribution is exact with one decoder thread
(``threads=1``: the picture is decoded in the calling thread while its packet is sent, as
``deepvideo data check`` does); with frame threads a report can land on a picture up to a
few frames later, or be lost when it is logged after the capture ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import av.logging

_MAX_RANGES = 6  # frame ranges spelled out in a description before "..."


def decode_packet(packet) -> tuple[list, list[str]]:
    """``(frames, error reports)`` of ``packet.decode()``; reports are ``"h264: error while ..."``."""
    level = av.logging.get_level()
    repeated = av.logging.get_skip_repeated()
    if level is None or level < av.logging.ERROR:
        av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)
    try:
        with av.logging.Capture(local=False) as logs:
            frames = packet.decode()
    finally:
        av.logging.set_skip_repeated(repeated)
        if level is None or level < av.logging.ERROR:
            av.logging.set_level(level)
    return frames, [f"{name}: {text.strip()}" if name else text.strip()
                    for lvl, name, text in logs if lvl <= av.logging.ERROR]


def frame_ranges(frames: list[int]) -> str:
    """``[10, 12, 13, 14]`` -> ``"10, 12–14"`` (at most a few ranges, then ``...``)."""
    runs: list[list[int]] = []
    for f in sorted(set(frames)):
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    text = [str(a) if a == b else f"{a}–{b}" for a, b in runs[:_MAX_RANGES]]
    return ", ".join(text) + (", ..." if len(runs) > _MAX_RANGES else "")


@dataclass
class DecodeDamage:
    """Decoder error reports of one video: ``errors[frame index] = [report, ...]``."""

    errors: dict[int, list[str]] = field(default_factory=dict)

    def add(self, frame: int, reports: list[str]) -> None:
        """Record the reports of decoding ``frame``; a frame decoded again keeps its first reports."""
        if reports and int(frame) not in self.errors:
            self.errors[int(frame)] = list(reports)

    def __bool__(self) -> bool:
        return bool(self.errors)

    @property
    def count(self) -> int:
        """Number of error reports."""
        return sum(len(r) for r in self.errors.values())

    @property
    def frames(self) -> list[int]:
        """Indices of the frames whose decoding logged an error, ascending."""
        return sorted(self.errors)

    def describe(self) -> str:
        """``"N decoder errors in frames a–b (first: '...')"``."""
        first = self.errors[self.frames[0]][0] if self.errors else ""
        noun = "error" if self.count == 1 else "errors"
        frames = "frame" if len(self.errors) == 1 else "frames"
        return f"{self.count} decoder {noun} in {frames} {frame_ranges(self.frames)} (first: {first!r})"
