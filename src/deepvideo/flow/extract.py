"""Dataset optical-flow extraction behind ``deepvideo flow extract``.

Input: folders of videos (searched recursively) and/or video files. Output: one folder per
video under ``--out`` mirroring the video's path relative to its dataset root (``a/b.mp4``
-> ``OUT/a/b/``) holding ``x_00001.jpg``/``y_00001.jpg`` + ``flow.json`` (or ``flow.npz``),
and ``img_00001.jpg``... with ``--rgb``; the TSN "rawframes" layout read by
:mod:`deepvideo.flow.store` and :class:`deepvideo.io.FrameFolderReader`.

- Atomic: a video is written under a temporary sibling name ``.NAME.tmp-PID`` and renamed
  when complete; leftovers of a killed run are removed when that video is redone.
- Resumable: every finished video appends one JSON line to ``OUT/manifest-<i>-of-<n>.jsonl``
  (all manifests in OUT are read at start); a rerun skips videos recorded ``ok`` whose
  folder exists and redoes the rest.
- Shardable: ``shard=(i, n)`` takes every n-th video of the sorted list from i; under
  torchrun (``RANK``/``WORLD_SIZE`` set) each rank takes its share by default, and with
  ``device="cuda"`` uses GPU ``LOCAL_RANK``.
- Failures (undecodable video, too few frames, unsafe path, a dangling symbolic link) are
  recorded with the reason and listed in the summary; they never stop the run. The command
  exits non-zero when every video failed, or with ``--strict`` when any did.

Default method: ``DEFAULT_METHOD`` below, chosen by ``benchmarks/bench_flow.py`` (see
``docs/benchmarks.md``, "Optical flow"): the fastest method whose ground-truth EPE is no
worse than OpenCV TV-L1's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepvideo.flow import store
from deepvideo.io.atomic import replaced_when_done
from deepvideo.io.paths import UnsafePathError, relative_to_root, safe_output_path

# The default is the "extract_default" that benchmarks/bench_flow.py reports (its figures are in
# docs/benchmarks.md, "Optical flow"): the fastest method whose ground-truth EPE is no worse than
# OpenCV TV-L1's.
DEFAULT_METHOD = "tvl1"
DEFAULT_PARAMS: dict = {"preset": "fast"}

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv",
                    ".3gp", ".ogv", ".ts"}
_KILL_HOOK = "DEEPVIDEO_FLOW_TEST_KILL_AFTER_FIELDS"  # tests: SIGKILL self after N fields written


@dataclass
class ExtractOptions:
    """What to compute and how to store it (one value for the whole run)."""

    method: str = DEFAULT_METHOD
    device: str = "cpu"
    rgb: bool = False
    short_side: int | None = None
    bound: float = store.DEFAULT_BOUND
    fmt: str = "jpg"
    quality: int = store.DEFAULT_JPEG_QUALITY
    chunk: int = 16
    params: dict = field(default_factory=dict)

    def flow_params(self) -> dict:
        return {**(DEFAULT_PARAMS if self.method == DEFAULT_METHOD and not self.params else {}),
                **self.params}


@dataclass
class VideoJob:
    video: Path
    rel: Path  # relative to its dataset root, e.g. class/v.mp4
    out: Path | None = None
    error: str | None = None


@dataclass
class ExtractSummary:
    done: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0


def find_videos(inputs: Iterable[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """(video, dataset root) pairs: folders searched recursively, files taken as given.

    A dangling symbolic link with a video suffix is kept (:func:`plan` fails it, naming the
    missing target) rather than dropped.
    """
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += [(v, p) for v in sorted(p.rglob("*"))
                      if v.suffix.lower() in VIDEO_EXTENSIONS and not v.name.startswith(".")
                      and (v.is_file() or _dangling(v))]
        elif p.exists():
            found.append((p, p.parent))
        else:
            raise FileNotFoundError(f"input not found: {p}")
    return found


def _dangling(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def shard_from_env() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment, (0, 1) outside it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return i, n


def plan(inputs: Iterable[str | os.PathLike], out: str | os.PathLike,
         shard: tuple[int, int] = (0, 1)) -> list[VideoJob]:
    """Jobs of this shard, each with its output folder or the reason it cannot have one."""
    jobs: list[VideoJob] = []
    seen: dict[Path, Path] = {}
    for video, root in find_videos(inputs):
        job = VideoJob(video, video.relative_to(root) if video.is_relative_to(root) else Path(video.name))
        try:
            rel = relative_to_root(video.absolute(), root, entry=str(video))  # video is relative to the cwd
            job.rel = rel
            job.out = safe_output_path(out, rel.with_suffix(""), entry=str(video))
        except UnsafePathError as e:
            job.error = str(e)
        if _dangling(video):
            job.error, job.out = f"{video}: dangling symbolic link to {os.readlink(video)}", None
        if job.out is not None:
            if job.out in seen:
                job.error = f"output folder {job.out} already taken by {seen[job.out]}"
                job.out = None
            else:
                seen[job.out] = video
        jobs.append(job)
    jobs.sort(key=lambda j: str(j.rel))
    i, n = shard
    return jobs[i::n]


def read_manifests(out: str | os.PathLike) -> dict[str, dict]:
    """Latest manifest record per video (its path relative to the root), all shards."""
    records: dict[str, dict] = {}
    for path in sorted(Path(out).glob("manifest-*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill: that video is simply redone
            records[rec["video"]] = rec
    return records


def _frames_in_chunks(video: Path, short_side: int | None, chunk: int) -> Iterator[torch.Tensor]:
    """uint8 [<=chunk+1,H,W,3] blocks overlapping by one frame (so pairs cross block ends)."""
    from deepvideo.io import VideoReader

    with VideoReader(video, short_side=short_side) as reader:
        buf: list[torch.Tensor] = []
        yielded = False
        for frame in reader:
            buf.append(frame)
            if len(buf) == chunk + 1:
                yield torch.stack(buf)
                buf, yielded = buf[-1:], True
        if len(buf) > 1 or (buf and not yielded):
            yield torch.stack(buf)


def _kill_hook(fields_written: int) -> None:
    limit = os.environ.get(_KILL_HOOK)
    if limit and fields_written >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)


_FIELDS_WRITTEN = [0]


def extract_video(video: Path, out_dir: Path, opts: ExtractOptions) -> dict:
    """Compute and store the flow (and frames) of one video atomically; returns its record."""
    import cv2

    from deepvideo.flow.api import compute_flow

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    with replaced_when_done(out_dir) as tmp:
        tmp.mkdir()
        params = opts.flow_params()
        quantized: list[np.ndarray] = []
        n_frames, n_fields, size = 0, 0, None
        jpeg = [cv2.IMWRITE_JPEG_QUALITY, int(opts.quality)]
        for block in _frames_in_chunks(video, opts.short_side, opts.chunk):
            new = block if n_frames == 0 else block[1:]
            if opts.rgb:
                for k, frame in enumerate(new.numpy()):
                    cv2.imwrite(str(tmp / f"img_{n_frames + k + 1:05d}.jpg"),
                                cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), jpeg)
            n_frames += len(new)
            if len(block) < 2:
                continue
            size = tuple(block.shape[1:3])
            q = store.quantize(compute_flow(block, method=opts.method, device=opts.device, **params),
                               opts.bound)
            if opts.fmt == "npz":
                quantized.append(q)
            else:
                for k in range(len(q)):
                    cv2.imwrite(str(tmp / store.X_TEMPLATE.format(n_fields + k + 1)), q[k, 0], jpeg)
                    cv2.imwrite(str(tmp / store.Y_TEMPLATE.format(n_fields + k + 1)), q[k, 1], jpeg)
                    _FIELDS_WRITTEN[0] += 1
                    _kill_hook(_FIELDS_WRITTEN[0])
            n_fields += len(q)
        if n_frames < 2:
            raise ValueError(f"{video}: {n_frames} decodable frame(s); flow needs at least 2")
        method = opts.method + (f"({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")
        if opts.fmt == "npz":
            all_q = np.concatenate(quantized)
            meta = store.flow_meta(n_fields, *size, opts.bound, method, None, "npz")
            np.savez_compressed(tmp / store.NPZ_NAME, flow=all_q, meta=np.array(json.dumps(meta)))
        else:
            meta = store.flow_meta(n_fields, *size, opts.bound, method, opts.quality, "jpg")
            (tmp / store.META_NAME).write_text(json.dumps(meta, indent=1) + "\n")
    return {"frames": n_frames, "fields": n_fields, "height": size[0], "width": size[1], "method": method,
            "bound": opts.bound, "format": opts.fmt}


def _worker(args: tuple[str, str, dict, int]) -> tuple[dict | None, str | None]:
    video, out_dir, opts, threads = args
    torch.set_num_threads(threads)
    try:
        return extract_video(Path(video), Path(out_dir), ExtractOptions(**opts)), None
    except Exception as e:  # noqa: BLE001 - one bad video never ends the run: reported instead
        return None, _reason(e)


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if isinstance(e, (OSError, ValueError)) else f"{type(e).__name__}: {text}"


def extract(inputs: Iterable[str | os.PathLike], out: str | os.PathLike, opts: ExtractOptions | None = None,
            workers: int = 1, shard: tuple[int, int] | None = None, progress: bool | None = None
            ) -> ExtractSummary:
    """Extract flow for every video of this shard; see the module docstring."""
    opts = opts or ExtractOptions()
    from deepvideo.flow.api import METHODS

    if opts.method not in METHODS:
        raise ValueError(f"unknown flow method {opts.method!r}; choose one of {', '.join(METHODS)}")
    if opts.fmt not in ("jpg", "npz"):
        raise ValueError(f"format must be 'jpg' or 'npz', got {opts.fmt!r}")
    shard = shard or shard_from_env()
    if opts.device == "cuda" and "LOCAL_RANK" in os.environ:  # torchrun: one GPU per rank
        opts = ExtractOptions(**{**asdict(opts), "device": f"cuda:{os.environ['LOCAL_RANK']}"})
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out}: exists and is not a folder; give an output folder")
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan(inputs, out, shard)
    manifest = read_manifests(out)
    manifest_path = out / f"manifest-{shard[0]}-of-{shard[1]}.jsonl"
    summary = ExtractSummary()
    todo: list[VideoJob] = []
    for job in jobs:
        rec = manifest.get(str(job.rel))
        if job.error:
            summary.failed.append({"video": str(job.video), "reason": job.error})
        elif rec and rec.get("status") == "ok" and job.out is not None and job.out.is_dir():
            summary.skipped.append(str(job.rel))
        else:
            todo.append(job)
    threads = max(1, torch.get_num_threads() // max(1, workers))
    args = [(str(j.video), str(j.out), asdict(opts), threads) for j in todo]
    run_jobs(todo, _worker, args, workers, manifest_path, summary, f"flow ({opts.method})",
             lambda job: str(job.rel.with_suffix("")), progress)
    return summary


def run_jobs(todo: list, worker, args: list, workers: int, manifest_path: Path, summary: ExtractSummary,
             label: str, output_of, progress: bool | None = None) -> None:
    """``worker(args[i])`` -> ``(record | None, error)`` for each job of ``todo`` (a spawn process
    pool when ``workers > 1``), one manifest line per finished video appended to ``manifest_path``
    (fsynced, so a killed run resumes; ``output_of(job)`` names its output), ``summary`` filled in;
    progress with the frame rate. Shared by flow and feature extraction."""
    from deepvideo.progress import progress_task

    start = time.perf_counter()
    disable = True if progress is False else None
    with progress_task(label, total=len(todo), unit="videos", disable=disable) as advance, \
            open(manifest_path, "a") as mf:
        if workers > 1 and len(todo) > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
            results: Iterable = pool.map(worker, args)
        else:
            pool, results = None, map(worker, args)
        try:
            for job, (rec, err) in zip(todo, results, strict=True):
                if rec is None:
                    summary.failed.append({"video": str(job.video), "reason": err})
                    line = {"video": str(job.rel), "status": "failed", "reason": err}
                else:
                    summary.frames += rec["frames"]
                    line = {"video": str(job.rel), "status": "ok", "output": output_of(job), **rec}
                    summary.done.append(line)
                mf.write(json.dumps(line) + "\n")
                mf.flush()
                os.fsync(mf.fileno())
                rate = summary.frames / max(time.perf_counter() - start, 1e-9)
                advance(1, status=f"{rate:,.1f} frames/s, {len(summary.failed)} failed")
        finally:
            if pool is not None:
                pool.shutdown()
    summary.seconds = time.perf_counter() - start
