"""Write a synthetic set to disk in the UCF101 layout, in parallel, resumably.

Layout under ``DIR``::

    videos/<ClassName>/v_<ClassName>_g<GG>_c<CC>.mp4     H.264, written atomically
    annotations/classInd.txt                             "<1-based label> <ClassName>"
    annotations/trainlist0{1,2,3}.txt                    "<ClassName>/v_....mp4 <1-based label>"
    annotations/testlist0{1,2,3}.txt                     "<ClassName>/v_....mp4"
    annotations/camera.txt                               "<ClassName>/v_....mp4 static|moving" (sets
                                                         with camera subsets, see dynamic_scenes, and
                                                         sets rendered with ``mixed_camera``)
    synth.json                                           name, seed, parameters, classes, counts

Like UCF101, the videos of a class are cut into groups ``g01..gNN`` (clips ``c01..``) and
split ``k`` tests on the ``k``-th third of the groups (contiguous blocks), training on the
rest; so every video is in exactly one of train/test per split, and the three test sets are
disjoint. Groups only organise the splits: every video has its own random scene.

Resuming: a video file that already exists is complete (writes are atomic) and is skipped;
``synth.json`` records the parameters and a rerun with different ones is refused.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from deepvideo.data.synth.common import RenderParams
from deepvideo.io.atomic import atomic_write_text

FORMAT_VERSION = 1
ENCODER_PRESET = "superfast"
NUM_SPLITS = 3


class SynthError(ValueError):
    """Bad arguments or an output folder that holds something else."""


@dataclass
class SynthSummary:
    """What :func:`generate_dataset` produced."""

    name: str
    out: Path
    classes: list[str]
    videos: int
    written: int
    skipped: int
    splits: dict[int, dict[str, int]]
    camera: dict[str, int] | None
    seconds: float
    manifest: dict = field(default_factory=dict)


def group_layout(videos_per_class: int, clips_per_group: int) -> list[tuple[int, int]]:
    """1-based ``(group, clip)`` of each video index of a class.

    ``max(3, ceil(N / clips_per_group))`` groups (at least one per split), filled evenly in order.
    """
    if videos_per_class < NUM_SPLITS:
        raise SynthError(f"videos per class must be at least {NUM_SPLITS} (one group per split), "
                         f"got {videos_per_class}")
    if clips_per_group < 1:
        raise SynthError(f"clips per group must be at least 1, got {clips_per_group}")
    groups = max(NUM_SPLITS, math.ceil(videos_per_class / clips_per_group))
    layout, clip, last = [], 0, -1
    for i in range(videos_per_class):
        g = i * groups // videos_per_class
        clip = clip + 1 if g == last else 1
        last = g
        layout.append((g + 1, clip))
    return layout


def held_out_groups(num_groups: int, split: int) -> set[int]:
    """1-based groups held out for testing in 1-based ``split``: its third of the groups."""
    return {g for g in range(1, num_groups + 1) if (g - 1) * NUM_SPLITS // num_groups == split - 1}


def video_relpath(class_name: str, group: int, clip: int) -> str:
    """``<ClassName>/v_<ClassName>_g<GG>_c<CC>.mp4`` (relative to ``DIR/videos``)."""
    return f"{class_name}/v_{class_name}_g{group:02d}_c{clip:02d}.mp4"


def _render_and_write(name: str, seed: int, params: RenderParams, class_index: int,
                      video_index: int, path: str, crf: int) -> tuple[str, bool]:
    """Render one video and write it; returns ``(path, written)`` (False: it already existed)."""
    if os.path.exists(path):
        return path, False
    from deepvideo.data.synth import render_video
    from deepvideo.io import write_video

    clip = render_video(name, class_index, video_index, seed, params)
    # Byte-identical files need a deterministic encoder: one thread, and no macroblock-tree
    # lookahead (x264's default mbtree path gave different bitstreams for the same frames in
    # about 1 of 10 encodes here); "superfast" turns mbtree and rc-lookahead off.
    write_video(path, clip.frames, fps=params.fps, crf=crf, threads=1, preset=ENCODER_PRESET)
    return path, True


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)


def _worker_context():
    """A start method that is safe after OpenCV, OpenMP or torch threads ran in this process.

    Plain ``fork`` can deadlock children on a lock copied from a parent thread; a fork server
    starts clean and, with the heavy modules preloaded, still forks workers quickly.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["deepvideo.data.synth", "deepvideo.io"])
        return context
    return multiprocessing.get_context("spawn")


class _InlineExecutor(Executor):
    """Runs tasks at submission (``workers=1``): same code path, no processes."""

    def submit(self, fn, /, *args, **kwargs):
        from concurrent.futures import Future

        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future


def _flatten(d: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def _check_manifest(out: Path, identity: dict) -> None:
    manifest_path = out / "synth.json"
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SynthError(f"{manifest_path}: unreadable ({exc}); delete it or choose another --out"
                             ) from exc
        before, after = _flatten({k: old.get(k) for k in identity}), _flatten(identity)
        if before != after:
            diff = [f"{k}: {before.get(k)!r} -> {after[k]!r}" for k in after if before.get(k) != after[k]]
            raise SynthError(f"{manifest_path}: the folder holds a synthetic set made with other settings "
                             f"({'; '.join(diff)}); choose another --out or delete the folder")
    elif (out / "videos").exists() or (out / "annotations").exists():
        raise SynthError(f"{out} already has videos/ or annotations/ but no synth.json: it is not a "
                         f"synthetic set; choose an empty --out")


def _write_annotations(ann: Path, classes: list[str], tasks: list[tuple[int, int, str]],
                       layout: list[tuple[int, int]], num_groups: int, synth_set, params: RenderParams
                       ) -> tuple[dict[int, dict], dict[str, int] | None]:
    """classInd, the three splits' train/test lists and, for sets with camera subsets or
    ``mixed_camera``, camera.txt; returns the split counts and the camera counts (or None)."""
    atomic_write_text(ann / "classInd.txt", "".join(f"{i + 1} {cls}\n" for i, cls in enumerate(classes)))
    splits: dict[int, dict[str, int]] = {}
    for split in range(1, NUM_SPLITS + 1):
        held_out = held_out_groups(num_groups, split)
        train_lines, test_lines = [], []
        for ci, vi, rel in tasks:
            if layout[vi][0] in held_out:
                test_lines.append(f"{rel}\n")
            else:
                train_lines.append(f"{rel} {ci + 1}\n")
        atomic_write_text(ann / f"trainlist{split:02d}.txt", "".join(train_lines))
        atomic_write_text(ann / f"testlist{split:02d}.txt", "".join(test_lines))
        splits[split] = {"train": len(train_lines), "test": len(test_lines),
                         "test_groups": sorted(held_out)}
    camera = None
    if synth_set.camera_subsets or params.mixed_camera:
        from deepvideo.data.synth import dynamic_scenes

        camera_of = dynamic_scenes.camera_of if synth_set.camera_subsets else params.camera_of
        atomic_write_text(ann / "camera.txt", "".join(f"{rel} {camera_of(vi)}\n" for _, vi, rel in tasks))
        camera = {kind: sum(camera_of(vi) == kind for _, vi, _ in tasks) for kind in ("static", "moving")}
    return splits, camera


def generate_dataset(name: str, out: str | os.PathLike, *, videos_per_class: int | None = None,
                     params: RenderParams | None = None, seed: int = 0, workers: int = 1,
                     clips_per_group: int = 5, crf: int = 18, progress: bool | None = None,
                     audio: bool = False) -> SynthSummary:
    """Render and write the set ``name`` under ``out`` (see the module docstring for the layout).

    ``audio``: give every video its class tone as an audio track
    (:func:`deepvideo.data.synth.audio.add_class_tones`; resumable, not part of the set's identity).

    ``workers > 1`` renders in that many processes (started by a fork server, so a script
    calling this needs the usual ``if __name__ == "__main__":`` guard); the files do not
    depend on the number of workers. Two runs must not write into the same ``out`` at once.
    """
    from deepvideo.data.synth import get_set

    synth_set = get_set(name)
    params = params or RenderParams()
    _check_arguments(synth_set, params, seed, workers)
    n = synth_set.default_videos_per_class if videos_per_class is None else videos_per_class
    layout = group_layout(n, clips_per_group)
    num_groups = layout[-1][0]
    out = Path(out)
    classes = list(synth_set.classes)
    identity = {
        "name": name,
        "seed": seed,
        "format_version": FORMAT_VERSION,
        "parameters": {**params.as_dict(), "videos_per_class": n, "clips_per_group": clips_per_group,
                       "groups": num_groups, "crf": crf, "preset": ENCODER_PRESET},
        "classes": classes,
    }
    _check_manifest(out, identity)
    videos_dir = out / "videos"
    for cls in classes:
        (videos_dir / cls).mkdir(parents=True, exist_ok=True)
        for stale in (videos_dir / cls).glob(".v_*.tmp-*"):  # left by a killed earlier run
            stale.unlink(missing_ok=True)
    atomic_write_text(out / "synth.json", json.dumps({**identity, "complete": False}, indent=2) + "\n")

    tasks = [(ci, vi, video_relpath(cls, *layout[vi])) for ci, cls in enumerate(classes) for vi in range(n)]
    start = time.perf_counter()
    written, skipped = _render_all(name, seed, params, tasks, videos_dir, crf, workers, progress)
    seconds = time.perf_counter() - start

    splits, camera = _write_annotations(out / "annotations", classes, tasks, layout, num_groups,
                                        synth_set, params)
    if audio:
        from deepvideo.data.synth.audio import add_class_tones

        add_class_tones(out, seed)
    manifest = {
        **identity,
        "description": synth_set.description,
        "counts": {"videos": len(tasks), "per_class": n,
                   "splits": {str(k): {"train": v["train"], "test": v["test"]} for k, v in splits.items()},
                   **({"camera": camera} if camera else {})},
        "layout": "ucf101",
        **({"audio": "class tones"} if audio else {}),
        "complete": True,
    }
    atomic_write_text(out / "synth.json", json.dumps(manifest, indent=2) + "\n")
    return SynthSummary(name=name, out=out, classes=classes, videos=len(tasks), written=written,
                        skipped=skipped, splits=splits, camera=camera, seconds=seconds, manifest=manifest)


def _check_arguments(synth_set, params: RenderParams, seed: int, workers: int) -> None:
    if synth_set.camera_subsets and (params.moving_camera or params.mixed_camera):
        raise SynthError(f"{synth_set.name} always has both a static- and a moving-camera half; "
                         f"drop --moving-camera / --mixed-camera")
    if seed < 0:
        raise SynthError(f"seed must be a non-negative integer, got {seed}")
    if workers < 1:
        raise SynthError(f"workers must be at least 1, got {workers}")


def _render_all(name: str, seed: int, params: RenderParams, tasks: list, videos_dir: Path, crf: int,
                workers: int, progress: bool | None) -> tuple[int, int]:
    """Render and write every ``(class, video, relpath)`` task; returns ``(written, skipped)``."""
    from deepvideo.progress import progress_task

    written = skipped = 0
    if workers == 1:
        executor: Executor = _InlineExecutor()
        lazy = True
    else:
        executor = ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context(),
                                       initializer=_worker_init)
        lazy = False
    with executor, progress_task(f"synth {name}", total=len(tasks), unit="videos",
                                 disable=None if progress is None else not progress) as advance:
        def submit(task):
            ci, vi, rel = task
            return executor.submit(_render_and_write, name, seed, params, ci, vi, str(videos_dir / rel), crf)

        if lazy:
            results = (submit(task) for task in tasks)
        else:
            results = as_completed([submit(task) for task in tasks])
        try:
            for future in results:
                _, was_written = future.result()
                written += was_written
                skipped += not was_written
                advance(1, status=f"{written} written, {skipped} existed")
        except BaseException:
            if isinstance(executor, ProcessPoolExecutor):
                executor.shutdown(wait=True, cancel_futures=True)
            raise
    return written, skipped
