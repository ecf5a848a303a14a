"""`deepvideo data resize`: re-encode a dataset for cheap random access.

Every video under ``src`` is decoded, scaled so its shorter side is ``short_side`` (aspect
kept, longer side rounded to an even number; FFmpeg swscale bilinear, which low-passes when
shrinking) and encoded as H.264 mp4 with a fixed keyframe interval ``gop`` (no scene-cut
keyframes). A random access then decodes at most ``gop`` frames, and smaller frames decode
faster: the usual preprocessing of action-recognition datasets (e.g. short side 256 for
Kinetics). Only the video stream is kept. Frames keep their order and count; the frame rate
is the source's average rate (a variable-rate source becomes constant-rate).

Sources are found by :func:`scan_sources` (paths relative to ``src``, so a ``src`` given
relative to the working folder works; dangling links are listed as failed). Outputs mirror the inputs'
paths relative to ``src`` (suffix ``.mp4``) under ``dst``, each
checked with :func:`deepvideo.io.paths.safe_output_path`. Each output is written under a
temporary name, verified (frame count read back), then renamed: an existing output is
always complete, so a re-run skips it (resumable). Failures of a video (a ``VideoError``
reading it, an ``OSError`` writing its output) are collected, never fatal; any other
exception is a bug and propagates.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import av

from deepvideo.data.check import VIDEO_EXTENSIONS, find_videos, pool_context
from deepvideo.io import (
    UnsafePathError,
    VideoError,
    VideoWriter,
    error_reason,
    open_container,
    probe,
    relative_to_root,
    safe_output_path,
)
from deepvideo.io.meta import INTERPOLATIONS


@dataclass
class ResizeJob:
    src: str
    dst: str


@dataclass
class ResizeResult:
    src: str
    dst: str | None
    status: str  # "done", "skipped" (output exists) or "failed"
    reason: str | None = None
    frames: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def even_output_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(h, w)`` with the shorter side ``short_side`` and the longer side rounded to even."""
    if width <= height:
        return max(2, 2 * round(height * short_side / width / 2)), short_side
    return short_side, max(2, 2 * round(width * short_side / height / 2))


def plan_resize(src_root: str | os.PathLike, dst_root: str | os.PathLike,
                sources: Sequence[str] | None = None,
                extensions: Sequence[str] = VIDEO_EXTENSIONS) -> tuple[list[ResizeJob], list[ResizeResult]]:
    """Jobs for every video under ``src_root`` (or the given ``sources``) and the refused ones.

    Output names replace the suffix with ``.mp4``; when two sources share a name but not a
    suffix (``a.avi`` and ``a.mp4``), the non-mp4 one keeps its suffix (``a.avi.mp4``), so the
    mapping depends only on the set of sources (re-runs resume). A source outside
    ``src_root``, an output that would escape ``dst_root`` (``..``, absolute, links) or a
    remaining clash are refused, naming the entry.
    """
    jobs: list[ResizeJob] = []
    refused: list[ResizeResult] = []
    if sources is None:
        sources, refused = scan_sources(src_root, extensions)
    taken: dict[str, str] = {}
    stems: dict[str, int] = {}
    for src in sources:
        key = str(Path(src).with_suffix(""))
        stems[key] = stems.get(key, 0) + 1
    for src in sources:
        src_path = str(src if Path(src).is_absolute() else Path(src_root) / src)  # as the user names it
        try:
            rel = relative_to_root(src, src_root, entry=src_path)
            clash = stems[str(Path(src).with_suffix(""))] > 1 and rel.suffix.lower() != ".mp4"
            out_rel = rel.with_name(rel.name + ".mp4") if clash else rel.with_suffix(".mp4")
            dst = safe_output_path(dst_root, out_rel, entry=src_path)
        except UnsafePathError as exc:
            refused.append(ResizeResult(src_path, None, "failed", str(exc)))
            continue
        if str(dst) in taken:
            refused.append(ResizeResult(src_path, str(dst), "failed",
                                        f"output {dst} is also the output of {taken[str(dst)]}"))
            continue
        taken[str(dst)] = src_path
        jobs.append(ResizeJob(src_path, str(dst)))
    return jobs, refused


def scan_sources(src_root: str | os.PathLike, extensions: Sequence[str] = VIDEO_EXTENSIONS
                 ) -> tuple[list[str], list[ResizeResult]]:
    """The video files under ``src_root`` relative to it (as :func:`plan_resize` takes
    ``sources``), and a refusal per dangling link.

    Relative to ``src_root``, so they do not depend on whether ``src_root`` itself was given
    relative to the working folder. Frame folders are not re-encoded and are left out; a
    symbolic link whose target is missing is listed as failed (naming the target), never
    dropped silently.
    """
    sources: list[str] = []
    refused: list[ResizeResult] = []
    for item in find_videos(src_root, extensions):
        path = Path(item.path)
        if path.is_file():
            sources.append(str(path.relative_to(src_root)))
        elif path.is_symlink() and not path.exists():
            refused.append(ResizeResult(str(path), None, "failed",
                                        f"dangling symbolic link to {os.readlink(path)}"))
    return sources, refused


def resize_video(src: str | os.PathLike, dst: str | os.PathLike, short_side: int = 256, gop: int = 16,
                 crf: int = 18, preset: str = "veryfast", threads: int = 1) -> int:
    """Re-encode one video (see the module docstring); returns the number of frames written."""
    dst = Path(dst)
    container = open_container(src)
    part = dst.with_name(f".{dst.name}.part-{os.getpid()}.mp4")
    try:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE" if threads == 1 else "AUTO"
        stream.codec_context.thread_count = threads
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise VideoError(src, "no frame rate in the container; cannot re-encode")
        cc = stream.codec_context
        h, w = even_output_size(cc.height, cc.width, short_side)
        with VideoWriter(part, float(rate), crf=crf, gop=gop, preset=preset, threads=threads) as writer:
            for frame in container.decode(stream):
                writer.write(frame.reformat(width=w, height=h, format="rgb24",
                                            interpolation=INTERPOLATIONS["bilinear"]).to_ndarray())
        written = writer.frames_written
        got = probe(part).num_frames
        if got != written:
            raise VideoError(dst, f"wrote {written} frames but {got} read back")
        os.replace(part, dst)
        return written
    except av.error.FFmpegError as exc:
        raise VideoError(src, f"re-encoding failed: {error_reason(exc)}") from exc
    finally:
        container.close()
        part.unlink(missing_ok=True)


def _run_job(job: ResizeJob, short_side: int, gop: int, crf: int, preset: str) -> ResizeResult:
    try:
        frames = resize_video(job.src, job.dst, short_side, gop, crf, preset)
        return ResizeResult(job.src, job.dst, "done", frames=frames)
    except VideoError as exc:  # a bad source video: reported, the others go on
        return ResizeResult(job.src, job.dst, "failed", str(exc))
    except OSError as exc:  # writing this output failed (disk full, permissions): reported likewise
        return ResizeResult(job.src, job.dst, "failed", f"{job.dst}: {error_reason(exc)}")


def run_resize(jobs: Sequence[ResizeJob], short_side: int = 256, gop: int = 16, crf: int = 18,
               preset: str = "veryfast", workers: int = 1,
               on_result: Callable[[ResizeResult], None] | None = None) -> list[ResizeResult]:
    """Run the jobs (a process pool when ``workers > 1``), skipping outputs that already exist."""
    results: list[ResizeResult] = []

    def done(result: ResizeResult) -> None:
        results.append(result)
        if on_result:
            on_result(result)

    todo = []
    for job in jobs:
        if Path(job.dst).exists():
            done(ResizeResult(job.src, job.dst, "skipped", "output exists"))
        else:
            todo.append(job)
    if workers <= 1 or len(todo) <= 1:
        for job in todo:
            done(_run_job(job, short_side, gop, crf, preset))
        return results
    with ProcessPoolExecutor(workers, mp_context=pool_context()) as pool:
        futures = [pool.submit(_run_job, job, short_side, gop, crf, preset) for job in todo]
        for future in as_completed(futures):
            done(future.result())
    return results
