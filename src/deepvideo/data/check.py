"""`deepvideo data check`: find the videos of a dataset that cannot be used, and why.

Each video is opened (container metadata), its packets are counted by a demux-only pass
(a container that lists more frames than the file holds is truncated), and its first and
last frames are decoded; ``full=True`` decodes every frame and compares the count. A bad
video (any :class:`~deepvideo.io.VideoError`) is reported with the reason; nothing stops at
the first bad video. Any other exception is a bug and propagates.

Damaged but decodable: FFmpeg conceals garbage in a picture's coded data (it logs
``error while decoding MB ...`` and guesses the lost blocks) instead of failing, so such a
video decodes. The check reads FFmpeg's decoder error reports
(:mod:`deepvideo.io.decodelog`) for every picture it decodes (with ``full=True``, all of
them) and reports a video with any as bad: ``damaged: N decoder errors in frames a–b``
(``decoder_errors`` and ``damaged_frames`` in the JSON report). Training keeps such videos
(the concealed frames are still images) and warns once per video; see
:mod:`deepvideo.data.dataset`.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from deepvideo.io import VideoError, VideoReader, open_video
from deepvideo.io.frames import list_frame_numbers

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv",
                    ".3gp", ".ts", ".ogv")


@dataclass
class VideoCheck:
    """The verdict on one video (file or frame folder)."""

    path: str
    ok: bool
    reason: str | None = None
    num_frames: int | None = None
    fps: float | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    start_index: int = 1
    decoder_errors: int = 0  # FFmpeg error reports while decoding (concealed damage)
    damaged_frames: list[int] | None = None  # frames whose decoding logged them

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VideoItem:
    """A video to check: a path, plus the frame-folder numbering when it is a folder."""

    path: str
    start_index: int = 1
    template: str = "img_{:05d}.jpg"
    source: str | None = None  # annotation file:line it came from


def pool_context():
    """``forkserver`` where available, else ``spawn``; never plain ``fork``.

    Forking a process that has FFmpeg decoder or swscale threads running (any process that
    has used a reader) can deadlock the child on a lock one of those threads held. The fork
    server starts clean, imports deepvideo once, and forks workers from there quickly.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["deepvideo.data.resize"])
        return context
    return multiprocessing.get_context("spawn")


def find_videos(root: str | os.PathLike, extensions: Sequence[str] = VIDEO_EXTENSIONS,
                template: str = "img_{:05d}.jpg") -> list[VideoItem]:
    """Every video file under ``root`` (recursive, sorted) and every frame folder (a folder
    holding files named by ``template``). Hidden files and folders are ignored."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    items = []
    exts = {e.lower() for e in extensions}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        folder_path = Path(folder)
        if folder_path != root and list_frame_numbers(folder_path, template):
            items.append(VideoItem(str(folder_path), template=template))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in exts:
                items.append(VideoItem(str(folder_path / name)))
    return sorted(items, key=lambda item: item.path)


def items_from_index(index: Iterable) -> list[VideoItem]:
    """Videos of a ``DatasetIndex`` (from ``deepvideo.data.formats.load_dataset``)."""
    items = []
    for record in index:
        start = record.start_index if record.start_index else 1
        items.append(VideoItem(str(record.path), start_index=start, source=record.source))
    return items


def check_video(item: VideoItem | str, full: bool = False) -> VideoCheck:
    """Open, count and decode-check one video; never raises for a bad video (a ``VideoError``)."""
    if not isinstance(item, VideoItem):
        item = VideoItem(str(item))
    result = VideoCheck(path=item.path, ok=False, start_index=item.start_index)
    try:
        with open_video(item.path, template=item.template, start_index=item.start_index, threads=1,
                        report_damage=True) as reader:
            meta = reader.meta
            result.fps, result.duration = meta.fps, meta.duration
            result.width, result.height, result.codec = meta.width, meta.height, meta.codec
            if isinstance(reader, VideoReader):
                frames, discarded = reader.packet_count()
                claimed = reader.container_frames
                if claimed is not None and frames + discarded < claimed:
                    raise VideoError(item.path, f"truncated: the container lists {claimed} frames but only "
                                                f"{frames} are in the file")
            n = reader.num_frames
            result.num_frames = n
            if full:
                decoded = sum(1 for _ in reader)
                if decoded != n:
                    raise VideoError(item.path, f"{decoded} frames decode but {n} are listed")
            else:
                frames = reader.get_frames([0, n - 1])
                if frames.shape[0] != 2:
                    raise VideoError(item.path, "first/last frame decode returned no frames")
            _check_damage(reader, result)
        result.ok = True
    except VideoError as exc:  # the readers re-raise FFmpeg, OpenCV and file errors as VideoError
        result.reason = exc.reason
    if item.source and result.reason:
        result.reason = f"{result.reason} (listed at {item.source})"
    return result


def _check_damage(reader, result: VideoCheck) -> None:
    """``VideoError`` when decoding logged errors (a :class:`VideoReader`'s ``.damage``)."""
    damage = getattr(reader, "damage", None)
    if damage:
        result.decoder_errors, result.damaged_frames = damage.count, damage.frames
        raise VideoError(reader.path, f"damaged: {damage.describe()}; FFmpeg conceals the damage, so "
                                      "these frames decode with guessed blocks")


def check_videos(items: Sequence[VideoItem], full: bool = False, workers: int = 1,
                 on_result: Callable[[VideoCheck], None] | None = None) -> list[VideoCheck]:
    """Check every item, in a process pool when ``workers > 1``; results keep the input order."""
    results: list[VideoCheck] = []
    if workers <= 1 or len(items) <= 1:
        for item in items:
            results.append(check_video(item, full))
            if on_result:
                on_result(results[-1])
        return results
    with ProcessPoolExecutor(workers, mp_context=pool_context()) as pool:
        for result in pool.map(check_video, items, [full] * len(items)):
            results.append(result)
            if on_result:
                on_result(result)
    return results


def summarize(results: Sequence[VideoCheck]) -> dict:
    """Counts and totals for a report."""
    good = [r for r in results if r.ok]
    return {"videos": len(results), "ok": len(good), "bad": len(results) - len(good),
            "frames": sum(r.num_frames or 0 for r in good),
            "hours": round(sum(r.duration or 0.0 for r in good) / 3600, 4)}


__all__ = ["VIDEO_EXTENSIONS", "VideoCheck", "VideoItem", "check_video", "check_videos",
           "find_videos", "items_from_index", "summarize"]
