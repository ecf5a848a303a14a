"""Frame-accurate random access into video files with PyAV (FFmpeg).

:class:`VideoReader` returns exactly the frames a plain sequential decode would give
(frame ``i`` = the ``i``-th frame FFmpeg outputs), for any list of indices, while decoding
as little as possible.

How frames are found
    On the first :meth:`VideoReader.get_frames` call the reader makes one *demux-only* pass
    over the video packets (no decoding: a few milliseconds for a 10 s clip) and keeps an
    index: the sorted presentation timestamps (pts) of all frames and which of them are
    keyframes. A decoded frame's index is the rank of its pts in that list. This is the
    pts -> index mapping ``round((pts - start) * time_base * average_rate)`` for constant
    frame rate video, and stays exact for variable frame rate video, where that formula is not.
    AVI files (whose decoders often return the demuxer's dts-derived timestamps, e.g. MPEG-4
    part 2 with packed B-frames) and streams whose frames carry no usable pts are handled by
    *counting*: after seeking to a keyframe whose position in decode order is known, the
    ``k``-th decoded frame is ``keyframe + k``. A pts mismatch seen while decoding switches a
    reader to counting.

How frames are decoded
    The needed indices are sorted and de-duplicated. For each needed frame the reader seeks to
    the last keyframe at or before it, unless the decoder is already positioned at or after
    that keyframe and before the frame, in which case it decodes forward (so each group of
    pictures is decoded at most once per call). Seeks go to the keyframe's pts (mp4/mov and
    Matroska index by presentation time; seeking to its dts lands one group early) or, in
    counting mode, its dts; the group of frame 0 is decoded from a freshly opened container.
    A seek that misses is detected and retried from the start. Packets of frames that are
    not needed are passed to FFmpeg with ``skip_frame=NONREF``: the decoder drops them only if
    no other frame references them, so every returned frame is bit-identical to sequential
    decoding. Only needed frames are converted to RGB (and resized), through one cached
    swscale context.

Frame count
    ``num_frames`` comes from the container's frame table (mp4/mov sample table, AVI index)
    when it has one; otherwise (mkv, webm, MPEG-TS, ...) the packets are counted by the
    demux-only pass at open. When the first ``get_frames`` call's packet index disagrees with
    the container (broken index, truncated file, edit lists), the packet count wins and
    ``num_frames`` and ``meta`` are updated.

Resize on decode
    ``short_side=S`` scales every returned frame so its shorter side is ``S`` (aspect kept,
    longer side rounded) with FFmpeg swscale's bilinear filter (``interpolation=``
    ``"bilinear"``; also ``"area"``, ``"bicubic"``, ``"nearest"``). swscale widens the
    bilinear kernel when shrinking, so downscaling does not alias.

Readers cache the open container and a swscale context between calls and are not
thread-safe. They pickle without them (DataLoader workers): each process re-opens the file
lazily. A reader used before a fork also re-opens in the child; the FFmpeg objects it
inherited are parked untouched (closing them there can deadlock on the parent's threads).
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from deepvideo.io.decodelog import DecodeDamage, decode_packet
from deepvideo.io.errors import VideoError, error_reason
from deepvideo.io.meta import (
    INTERPOLATIONS,
    VideoMeta,
    check_indices,
    check_interpolation,
    gather,
    output_size,
)

_INHERITED: list = []  # FFmpeg objects a forked process inherited from its parent (see _open)

@dataclass
class _PacketIndex:
    """Result of the demux-only pass: where frames and keyframes are."""

    num_frames: int
    pts_to_index: dict[int, int] | None     # None: pts unusable, count frames instead
    pts_keys: list[int]                     # presentation index of each seek point (ascending)
    pts_seek: list[int | None]              # pts to seek to for each of them (None: from the start)
    dts_to_ordinal: dict[int, int]          # decode-order position of each packet by dts
    count_keys: list[int]                   # decode-order position of each seek point
    count_seek: list[int | None]
    discarded: int = 0                      # packets the container marks to drop (edit lists)


class _TimestampMismatch(Exception):
    """A decoded frame's pts is not one of the packets' pts: switch to counting."""


class _SeekMissed(Exception):
    """The demuxer did not land on the expected keyframe."""


class VideoReader:
    """Random access to the frames of one video file.

    ``reader.get_frames([3, 0, 3])`` -> ``torch.uint8 [3, H, W, 3]`` RGB, exact frames.
    ``threads`` is the FFmpeg decoder thread count (0 = FFmpeg chooses; use 1 inside
    DataLoader workers). ``.width``/``.height`` are the source size, ``.frame_size`` the
    ``(H, W)`` of returned frames. ``skip_nonref=False`` decodes every packet on the way to a
    needed frame (the default lets FFmpeg drop unneeded non-reference frames; same output).
    ``report_damage=True`` collects FFmpeg's decoder error reports of every picture decoded
    (damage FFmpeg conceals without an exception) into ``.damage``, a
    :class:`~deepvideo.io.decodelog.DecodeDamage` by frame index (see that module: the
    capture is process-global; exact frames with ``threads=1``).
    """

    def __init__(self, path: str | os.PathLike, short_side: int | None = None, threads: int = 0,
                 interpolation: str = "bilinear", skip_nonref: bool = True, report_damage: bool = False):
        self.path = Path(path)
        self.report_damage = report_damage
        self.damage = DecodeDamage()
        check_interpolation(interpolation)
        self.short_side = short_side
        self.threads = int(threads)
        self.interpolation = interpolation
        self.skip_nonref = skip_nonref
        self._container = None
        self._stream = None
        self._pid: int | None = None
        self._index: _PacketIndex | None = None
        self._counting = False
        self._iter = None
        self._pos = -1
        self._wanted: set[int] = set()
        self._reformatter = None
        self._fresh = False
        self.meta = self._read_meta()
        # The container's own claim, kept when the packet scan corrects ``meta.num_frames``.
        self.container_frames = self.meta.num_frames if self.meta.frame_count == "container" else None
        self.frame_size = output_size(self.meta.height, self.meta.width, short_side)

    # -- metadata -----------------------------------------------------------------------------
    @property
    def fps(self) -> float | None:
        return self.meta.fps

    @property
    def num_frames(self) -> int:
        return self.meta.num_frames

    @property
    def duration(self) -> float | None:
        return self.meta.duration

    @property
    def width(self) -> int:
        return self.meta.width

    @property
    def height(self) -> int:
        return self.meta.height

    @property
    def codec(self) -> str:
        return self.meta.codec

    def __len__(self) -> int:
        return self.meta.num_frames

    def __repr__(self) -> str:
        m = self.meta
        return (f"VideoReader({str(self.path)!r}, {m.num_frames} frames, {m.width}x{m.height}, "
                f"{m.fps} fps, {m.codec})")

    def _read_meta(self) -> VideoMeta:
        container, stream = self._open()
        try:
            fps = None
            for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
                if rate:
                    fps = float(rate)
                    break
            duration = None
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / av.time_base
            num_frames, source = int(stream.frames or 0), "container"
            if num_frames <= 0:
                num_frames, source = self._scan().num_frames, "packets"
            if num_frames <= 0:
                raise VideoError(self.path, "the video stream has no frames")
            if duration is None and fps:
                duration = num_frames / fps
            cc = stream.codec_context
            return VideoMeta(path=str(self.path), fps=fps, num_frames=num_frames, duration=duration,
                             width=int(cc.width), height=int(cc.height), codec=cc.name,
                             pix_fmt=cc.format.name if cc.format else None,
                             container=container.format.name, bit_rate=container.bit_rate or None,
                             frame_count=source)
        except VideoError:
            self.close()
            raise

    # -- container ---------------------------------------------------------------------------
    def _open(self):
        """The cached container of this process, opened on first use (or after a fork)."""
        if self._container is not None and self._pid == os.getpid():
            return self._container, self._stream
        if self._pid is not None and self._pid != os.getpid():
            # Inherited through fork: closing the parent's FFmpeg objects here can block on locks
            # held by threads that do not exist in this process, so they are kept, never touched.
            _INHERITED.append((self._iter, self._container, self._stream))
            self._iter = None
        self._container = self._stream = None
        container = open_container(self.path)
        stream = container.streams.video[0]
        stream.thread_type = "SLICE" if self.threads == 1 else "AUTO"
        stream.codec_context.thread_count = self.threads
        self._container, self._stream, self._pid, self._pos = container, stream, os.getpid(), -1
        self._fresh = True  # nothing demuxed yet: decoding from the first frame needs no seek
        return container, stream

    def close(self) -> None:
        """Close the cached container (it is re-opened on the next call)."""
        if self._pid is not None and self._pid != os.getpid():
            _INHERITED.append((self._iter, self._container, self._stream))  # see _open
        elif self._container is not None:
            self._container.close()
        self._container = self._stream = self._iter = self._pid = None
        self._pos = -1

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_container=None, _stream=None, _iter=None, _pid=None, _pos=-1, _reformatter=None)
        return state

    # -- packet index ------------------------------------------------------------------------
    def _scan(self) -> _PacketIndex:
        """One demux-only pass over the video packets (separate container, nothing decoded)."""
        container = open_container(self.path)
        records = []
        discarded = 0
        try:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size and packet.is_discard:
                    discarded += 1
                elif packet.size:
                    records.append((packet.pts, packet.dts, packet.is_keyframe))
        except av.error.FFmpegError as exc:
            raise VideoError(self.path, f"demuxing failed after {len(records)} packets "
                                        f"({error_reason(exc)}); the file is truncated or corrupt") from exc
        finally:
            container.close()
        index = _build_index(records, use_pts="avi" not in self._container_format())
        index.discarded = discarded
        return index

    def _container_format(self) -> str:
        container, _ = self._open()
        return container.format.name

    def packet_count(self) -> tuple[int, int]:
        """``(frames, discarded)`` counted by the demux-only pass (no decoding)."""
        index = self._packet_index()
        return index.num_frames, index.discarded

    def _packet_index(self) -> _PacketIndex:
        if self._index is None:
            index = self._scan()
            if index.num_frames == 0:
                raise VideoError(self.path, f"no video packets in the file (the container lists "
                                            f"{self.meta.num_frames} frames): the file is truncated "
                                            "or corrupt")
            self._index = index
            self._counting = self._index.pts_to_index is None
            if self._index.num_frames != self.meta.num_frames:
                self.meta = replace(self.meta, num_frames=self._index.num_frames, frame_count="packets")
        return self._index

    # -- decoding ----------------------------------------------------------------------------
    def get_frames(self, indices) -> torch.Tensor:
        """Frames at ``indices`` (any order, duplicates allowed) as ``uint8 [T,H,W,3]`` RGB."""
        self._packet_index()
        note = ""
        if self.container_frames and self.container_frames > self.num_frames:
            note = f"; the container lists {self.container_frames}, the file is truncated"
        idx = check_indices(self.path, indices, self.num_frames, note)
        if idx.size == 0:
            return gather(idx, {}, self.frame_size)
        try:
            frames = self._decode(np.unique(idx).tolist())
        except _TimestampMismatch:
            self._counting, self._iter = True, None
            frames = self._decode(np.unique(idx).tolist())
        return gather(idx, frames, self.frame_size)

    def get_frame(self, index: int) -> torch.Tensor:
        """One frame ``uint8 [H,W,3]``."""
        return self.get_frames([index])[0]

    def __iter__(self):
        """All frames in order, one ``uint8 [H,W,3]`` tensor at a time (sequential decode)."""
        if self.report_damage:
            self._packet_index()  # frame indices of the packets, for the damage report
        container, stream = open_container(self.path), None
        try:
            stream = container.streams.video[0]
            stream.thread_type = "SLICE" if self.threads == 1 else "AUTO"
            stream.codec_context.thread_count = self.threads
            yielded = 0
            for packet in container.demux(stream):
                for frame in self._packet_frames(packet, yielded):
                    yielded += 1
                    yield torch.from_numpy(self._convert(frame))
        except av.error.FFmpegError as exc:
            raise VideoError(self.path, f"decoding failed: {error_reason(exc)}") from exc
        finally:
            container.close()

    def _decode(self, needed: list[int]) -> dict[int, np.ndarray]:
        index = self._packet_index()
        self._open()
        keys = index.count_keys if self._counting else index.pts_keys
        self._wanted = set(needed)
        out: dict[int, np.ndarray] = {}
        for target in needed:
            for attempt in range(3):
                key = bisect.bisect_right(keys, target) - 1
                if attempt == 2:
                    key = 0
                if self._iter is None or self._pos >= target or keys[key] > self._pos + 1 or attempt:
                    self._start(key, reopen=attempt == 2)
                try:
                    while self._pos < target:
                        frame_index, frame = next(self._iter)
                        self._pos = frame_index
                        if frame_index in self._wanted and frame_index not in out:
                            out[frame_index] = self._convert(frame)
                except (StopIteration, _SeekMissed):
                    self._iter = None
                if target in out:
                    break
                self._iter = None
            else:
                raise VideoError(self.path, f"frame {target} could not be decoded ({self.num_frames} frames "
                                            "expected); the file may be truncated or corrupt")
        return out

    def _start(self, key: int, reopen: bool = False) -> None:
        """Position the decoder at seek point ``key``; ``reopen`` starts from a fresh container."""
        self._iter = self._frames_from(key, reopen)
        keys = self._index.count_keys if self._counting else self._index.pts_keys
        self._pos = keys[key] - 1

    def _frames_from(self, key: int, reopen: bool):
        """Seek to seek point ``key`` and yield ``(frame_index, frame)`` in presentation order."""
        container, stream = self._open()
        index = self._index
        counting = self._counting
        start = (index.count_keys if counting else index.pts_keys)[key]
        seek_ts = (index.count_seek if counting else index.pts_seek)[key]
        codec = stream.codec_context
        try:
            if seek_ts is None or reopen:
                if key != 0:
                    raise _SeekMissed
                if reopen or not self._fresh:
                    container.close()
                    self._container = None
                    container, stream = self._open()
                    codec = stream.codec_context
            else:
                try:
                    container.seek(seek_ts, stream=stream, backward=True, any_frame=False)
                except av.error.FFmpegError:
                    raise _SeekMissed from None
            self._fresh = False
            codec.skip_frame = "DEFAULT"
            next_index = None
            last = -1
            for packet in container.demux(stream):
                if counting:
                    if next_index is None and packet.size:
                        stamp = packet.dts if packet.dts is not None else packet.pts
                        ordinal = index.dts_to_ordinal.get(stamp)
                        if ordinal != start:
                            raise _SeekMissed
                        next_index = start
                elif self.skip_nonref and packet.size:
                    frame_index = index.pts_to_index.get(packet.pts)
                    skip = frame_index is not None and frame_index not in self._wanted
                    codec.skip_frame = "NONREF" if skip else "DEFAULT"
                for frame in self._packet_frames(packet, self._pos + 1):
                    if counting:
                        if next_index is None:
                            raise _SeekMissed
                        frame_index, next_index = next_index, next_index + 1
                    else:
                        frame_index = index.pts_to_index.get(frame.pts)
                        if frame_index is None or frame_index <= last:
                            raise _TimestampMismatch  # pts not the packets' or out of order: count instead
                        last = frame_index
                        if frame_index < start:
                            continue
                    yield frame_index, frame
        except av.error.FFmpegError as exc:
            raise VideoError(self.path,
                             f"decoding failed after frame {self._pos}: {error_reason(exc)}") from exc

    def _packet_frames(self, packet, next_frame: int) -> list:
        """``packet.decode()``; with ``report_damage`` its error reports go to ``.damage`` under the
        packet's frame index (by pts, else decode order, else ``next_frame``)."""
        if not self.report_damage:
            return packet.decode()
        frames, reports = decode_packet(packet)
        if reports:
            index = self._index
            frame = None
            if index is not None and index.pts_to_index is not None:
                frame = index.pts_to_index.get(packet.pts)
            if frame is None and index is not None:
                frame = index.dts_to_ordinal.get(packet.dts if packet.dts is not None else packet.pts)
            self.damage.add(min(next_frame, self.num_frames - 1) if frame is None else frame, reports)
        return frames

    def _convert(self, frame) -> np.ndarray:
        """RGB (and resize) through one cached swscale context: the same pixels as
        ``frame.to_ndarray(format="rgb24")``, without building a new context per frame."""
        if self._reformatter is None or self._reformatter[0] != os.getpid():
            if self._reformatter is not None:
                _INHERITED.append(self._reformatter)  # swscale's worker threads stayed in the parent
            self._reformatter = (os.getpid(), VideoReformatter())
        reformatter = self._reformatter[1]
        try:
            if self.short_side is None:
                return reformatter.reformat(frame, format="rgb24").to_ndarray()
            h, w = self.frame_size
            return reformatter.reformat(frame, width=w, height=h, format="rgb24",
                                        interpolation=INTERPOLATIONS[self.interpolation]).to_ndarray()
        except av.error.FFmpegError as exc:
            raise VideoError(self.path,
                             f"converting a decoded frame to RGB failed: {error_reason(exc)}") from exc


def _build_index(records: list[tuple[int | None, int | None, bool]], use_pts: bool) -> _PacketIndex:
    """Seek points and timestamp maps from ``(pts, dts, is_keyframe)`` in decode order."""
    n = len(records)
    ts = [dts if dts is not None else pts for pts, dts, _ in records]
    dts_to_ordinal = {t: i for i, t in enumerate(ts) if t is not None}
    seekable = len(dts_to_ordinal) == n
    pts = [p for p, _, _ in records]
    # Counting: a keyframe is a seek point only when it is "clean": every packet decoded before it
    # is shown before it and every packet decoded after it is shown after it (no open-GOP leading
    # pictures). Then its presentation index is its decode-order position.
    # Seek point 0 is the start of the file (a freshly opened container), never a seek.
    count_keys, count_seek = [0], [None]
    if seekable and n and None not in pts:
        suffix_min = [0] * n
        low = None
        for i in range(n - 1, -1, -1):
            suffix_min[i] = low
            low = pts[i] if low is None else min(low, pts[i])
        high = None
        for i, (p, _, key) in enumerate(records):
            if key and i > 0 and high < p and (suffix_min[i] is None or suffix_min[i] > p):
                count_keys.append(i)
                count_seek.append(ts[i])
            high = p if high is None else max(high, p)
    pts_to_index = None
    pts_keys, pts_seek = [0], [None]
    if use_pts and n and None not in pts and len(set(pts)) == n:
        pts_to_index = {p: i for i, p in enumerate(sorted(pts))}
        for p, _, key in records:
            if key and pts_to_index[p] > 0:
                pts_keys.append(pts_to_index[p])
                pts_seek.append(p)  # mp4/mov and Matroska seek by pts: a dts lands a GOP early
        order = sorted(range(len(pts_keys)), key=pts_keys.__getitem__)
        pts_keys = [pts_keys[i] for i in order]
        pts_seek = [pts_seek[i] for i in order]
    return _PacketIndex(num_frames=n, pts_to_index=pts_to_index, pts_keys=pts_keys, pts_seek=pts_seek,
                        dts_to_ordinal=dts_to_ordinal, count_keys=count_keys, count_seek=count_seek)


def open_container(path: str | os.PathLike):
    """``av.open`` for reading, turning every failure into a ``VideoError`` that says why."""
    path = Path(path)
    try:
        exists, is_dir = path.exists(), path.is_dir()
        size = path.stat().st_size if exists and not is_dir else None
    except OSError as exc:  # e.g. no permission to look into the folder
        raise VideoError(path, f"cannot open: {error_reason(exc)}") from exc
    if not exists:
        if path.is_symlink():
            raise VideoError(path, f"dangling symbolic link to {os.readlink(path)} (no such target)")
        raise VideoError(path, "file not found")
    if is_dir:
        raise VideoError(path, "is a directory, not a video file (frame folders: use open_video or "
                               "FrameFolderReader)")
    if size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise VideoError(path, f"not a readable video ({error_reason(exc)}): the file is truncated, corrupt, "
                               "or not a video") from exc
    except OSError as exc:
        raise VideoError(path, f"cannot open: {error_reason(exc)}") from exc
    if not container.streams.video:
        kinds = ", ".join(s.type for s in container.streams) or "none"
        container.close()
        raise VideoError(path, f"no video stream (streams found: {kinds})")
    return container

