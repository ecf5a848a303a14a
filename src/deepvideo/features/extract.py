"""Dataset driver behind ``deepvideo features idt|tdd``: one float16 ``.npz`` per video.

Inputs and outputs follow the flow extraction driver (:mod:`deepvideo.flow.extract`, whose
planning, manifest and shard helpers are reused): videos are found recursively, the output
mirrors their paths relative to the dataset root (``a/b.mp4`` -> ``OUT/a/b.npz``), each file is
written atomically, every finished video appends a JSON line to
``OUT/manifest-<i>-of-<n>.jsonl`` (a rerun skips videos recorded ``ok`` whose file exists),
``shard=(i, n)`` (default: torchrun's RANK/WORLD_SIZE) takes every n-th video, ``workers``
processes run in parallel. A video that cannot be decoded or is too short is recorded as
failed with the reason; it never stops the run.

TDD (``kind="tdd"``) needs the two stream nets (``spatial`` / ``temporal`` modules); each video
file then holds the trajectory ``info`` and one array per ``<stream>/<layer>/<normalisation>``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from deepvideo.features.store import save_features
from deepvideo.features.trajectories import TrajectoryParams, extract_trajectories
from deepvideo.flow.extract import ExtractSummary, plan, read_manifests, run_jobs, shard_from_env


@dataclass
class FeatureOptions:
    """What to compute for every video of a run."""

    kind: str = "idt"
    params: dict = field(default_factory=dict)        # TrajectoryParams fields
    short_side: int | None = None
    max_frames: int | None = None
    spatial: torch.nn.Module | None = None             # TDD nets
    temporal: torch.nn.Module | None = None
    spatial_layers: tuple[str, ...] | None = None
    temporal_layers: tuple[str, ...] | None = None

    def trajectory_params(self) -> TrajectoryParams:
        known = {f.name for f in fields(TrajectoryParams)}
        unknown = sorted(set(self.params) - known)
        if unknown:
            raise ValueError(f"unknown trajectory parameter(s) {unknown}; known: {sorted(known)}")
        return TrajectoryParams(**self.params)


def feature_file(folder: Path) -> Path:
    """``OUT/a/b`` (the planned output of ``a/b.mp4``) -> ``OUT/a/b.npz``."""
    return folder.parent / (folder.name + ".npz")


def _read_frames(video: Path, short_side: int | None, max_frames: int | None) -> np.ndarray:
    from deepvideo.io import VideoReader

    frames = []
    with VideoReader(video, short_side=short_side) as reader:
        for frame in reader:
            frames.append(frame.numpy())
            if max_frames is not None and len(frames) >= max_frames:
                break
    return np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)


def video_features(video: Path, path: Path, opts: FeatureOptions) -> dict:
    """Compute and write one video's features; returns its manifest record."""
    params = opts.trajectory_params()
    start = time.perf_counter()
    frames = _read_frames(video, opts.short_side, opts.max_frames)
    if len(frames) <= params.track_length:
        raise ValueError(f"{video}: {len(frames)} decodable frame(s); trajectories of length "
                         f"{params.track_length} need at least {params.track_length + 1}")
    tr = extract_trajectories(frames, params)
    meta = {"video": str(video), "kind": opts.kind, "params": {k: v for k, v in vars(params).items()},
            "stats": tr.stats, "height": int(frames.shape[1]), "width": int(frames.shape[2])}
    if opts.kind == "idt":
        save_features(path, tr.info, tr.descriptors, meta)
    elif opts.kind == "tdd":
        from deepvideo.features import tdd

        desc = tdd.extract_tdd(frames, opts.spatial, opts.temporal, tr,
                               opts.spatial_layers or tdd.SPATIAL_LAYERS,
                               opts.temporal_layers or tdd.TEMPORAL_LAYERS, flow_method=params.flow_method)
        save_features(path, tr.info, desc, meta)
    else:
        raise ValueError(f"unknown feature kind {opts.kind!r}; choose idt or tdd")
    return {"frames": len(frames), "trajectories": len(tr), "seconds": round(time.perf_counter() - start, 3),
            **{k: tr.stats[k] for k in ("static", "erratic", "camera", "out_of_frame")}}


def _worker(args: tuple[str, str, FeatureOptions, int]) -> tuple[dict | None, str | None]:
    video, path, opts, threads = args
    torch.set_num_threads(threads)
    try:
        return video_features(Path(video), Path(path), opts), None
    except Exception as e:  # noqa: BLE001 - one bad video never ends the run: reported instead
        text = str(e) or type(e).__name__
        return None, text if isinstance(e, (OSError, ValueError)) else f"{type(e).__name__}: {text}"


def extract_features(inputs: Iterable[str | os.PathLike], out: str | os.PathLike,
                     opts: FeatureOptions | None = None, workers: int = 1,
                     shard: tuple[int, int] | None = None, progress: bool | None = None) -> ExtractSummary:
    """Features of every video of this shard (see the module docstring)."""
    opts = opts or FeatureOptions()
    opts.trajectory_params()  # bad parameters fail before any work
    if opts.kind == "tdd":
        if opts.spatial is None and opts.temporal is None:
            raise ValueError("TDD needs a spatial and/or a temporal net")
        from deepvideo.features.tdd import stream_layers

        opts = replace(opts, spatial_layers=stream_layers(opts.spatial, opts.spatial_layers, "spatial"),
                       temporal_layers=stream_layers(opts.temporal, opts.temporal_layers, "temporal"))
    shard = shard or shard_from_env()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out}: exists and is not a folder; give an output folder")
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifests(out)
    summary, todo = ExtractSummary(), []
    for job in plan(inputs, out, shard):
        rec = manifest.get(str(job.rel))
        if job.error:
            summary.failed.append({"video": str(job.video), "reason": job.error})
        elif rec and rec.get("status") == "ok" and feature_file(job.out).is_file():
            summary.skipped.append(str(job.rel))
        else:
            todo.append(job)
    threads = max(1, torch.get_num_threads() // max(1, workers))
    args = [(str(j.video), str(feature_file(j.out)), opts, threads) for j in todo]
    run_jobs(todo, _worker, args, workers, out / f"manifest-{shard[0]}-of-{shard[1]}.jsonl", summary,
             f"features ({opts.kind})", lambda job: feature_file(job.out).relative_to(out).as_posix(),
             progress)
    return summary


def feature_files(root: str | os.PathLike) -> dict[str, Path]:
    """Video id (path relative to the dataset root, as in the manifests) -> its feature file,
    for every video recorded ``ok`` in ``root``'s manifests whose file exists."""
    root = Path(root)
    records = read_manifests(root)
    if not records:
        raise FileNotFoundError(f"{root}: no manifest-*.jsonl; run `deepvideo features idt ... --out {root}`")
    files = {vid: root / rec["output"] for vid, rec in records.items() if rec.get("status") == "ok"}
    return {vid: p for vid, p in sorted(files.items()) if p.is_file()}
