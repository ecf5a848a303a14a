"""The deep trackers' side of ``bench_track.py``: the library's synthetic training and test data,
training each tracker from its recipe, and the tracker built from the trained weights.

A deep tracker enters the benchmark by one :data:`DEEP` entry: its recipe, its registered
tracker name, how the tracker takes its weights (an environment variable and a keyword) and
recipe overrides that point the recipe at the synthetic data. Training runs
``deepvideo.engine.loop.main_train(recipe, overrides)`` into ``<work>/<name>``; an existing
``<work>/<name>/checkpoints/best`` is reused unless ``--retrain``.

Data (:mod:`deepvideo.track.synth`, GOT-10k layout): ``train`` (seed 0) and ``val`` (seed 1)
over backgrounds cropped from frames of three real videos of ``../shared/data/video``
(demo, bikes, bigbuckbunny); the held-out ``test`` split (seed 2) over frames of two other
videos (test.mp4, test.avi), so no test background is seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TRAIN_VIDEOS = ("demo.mp4", "bikes.mp4", "bigbuckbunny.mp4")
TEST_VIDEOS = ("test.mp4", "test.avi")
BACKGROUND_EVERY = 10  # one background image every 10 frames of each video


@dataclass(frozen=True)
class DeepEntry:
    """How the benchmark trains and runs one deep tracker."""

    config: str                                   # recipe, relative to the project root
    tracker: str                                  # registered tracker name
    weights_env: str                              # environment variable the tracker reads
    weights_kwarg: str = "weights"                # keyword of the tracker's constructor
    weights_file: str = "checkpoints/best"        # inside the run folder
    overrides: tuple[str, ...] = ()               # extra recipe overrides ({train}, {val} filled in)
    tracker_kwargs: dict = field(default_factory=dict)


DATA_OVERRIDES = ("data.train.root={train}", "data.val.root={val}")

DEEP: dict[str, DeepEntry] = {
    "siamfc": DeepEntry("configs/track/siamfc.yaml", "siamfc", "DEEPVIDEO_SIAMFC_WEIGHTS",
                        overrides=DATA_OVERRIDES),
}


@dataclass(frozen=True)
class SynthSplits:
    """Sizes of the synthetic splits (sequences, frames each, frame size)."""

    train: int = 300
    val: int = 20
    test: int = 30
    frames: int = 60
    size: tuple[int, int] = (256, 192)


def video_frames(path: Path, every: int = BACKGROUND_EVERY) -> list[np.ndarray]:
    """Every ``every``-th frame of ``path`` as RGB uint8 (a ValueError when none is read)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames, index = [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % every == 0:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        index += 1
    capture.release()
    if not frames:
        raise ValueError(f"{path}: no frame could be read for the synthetic backgrounds")
    return frames


def backgrounds(video_dir: Path, names: tuple[str, ...]) -> list[np.ndarray]:
    return [frame for name in names for frame in video_frames(video_dir / name)]


def make_splits(work: Path, video_dir: Path, sizes: SynthSplits) -> dict[str, Path]:
    """The train / val / test folders under ``work/synth``, rendered unless present."""
    from deepvideo.track.synth import render_tracking_set

    plan = {"train": (sizes.train, 0, TRAIN_VIDEOS), "val": (sizes.val, 1, TRAIN_VIDEOS),
            "test": (sizes.test, 2, TEST_VIDEOS)}
    out = {}
    for split, (count, seed, videos) in plan.items():
        folder = work / "synth" / split
        if not (folder / "list.txt").is_file():
            print(f"rendering the synthetic {split} split ({count} sequences) -> {folder}", flush=True)
            render_tracking_set(folder, num_sequences=count, frames=sizes.frames, size=sizes.size,
                                seed=seed, backgrounds=backgrounds(video_dir, videos), progress=False)
        out[split] = folder
    return out


def weights_path(work: Path, name: str) -> Path:
    return work / name / DEEP[name].weights_file


def train(name: str, root: Path, work: Path, splits: dict[str, Path], extra: list[str],
          retrain: bool = False) -> Path:
    """Train deep tracker ``name`` from its recipe on the synthetic splits; its weights' path."""
    from deepvideo.engine.loop import main_train

    entry = DEEP[name]
    weights = weights_path(work, name)
    if weights.exists() and not retrain:
        print(f"{name}: reusing {weights}", flush=True)
        return weights
    overrides = [o.format(train=splits["train"], val=splits["val"]) for o in entry.overrides]
    overrides += [f"output_dir={work / name}", *extra]
    print(f"{name}: training {entry.config} {' '.join(overrides)}", flush=True)
    result = main_train(root / entry.config, overrides, progress=False)
    if result.best_checkpoint is None:
        raise RuntimeError(f"{name}: training wrote no best checkpoint in {work / name}")
    return weights


def tracker_factory(name: str, weights: Path, **kwargs):
    """A zero-argument factory of deep tracker ``name`` with ``weights``."""
    from deepvideo.track.registry import get_tracker_info

    entry = DEEP[name]
    factory = get_tracker_info(entry.tracker).factory
    options = {entry.weights_kwarg: str(weights), **entry.tracker_kwargs, **kwargs}
    return lambda: factory(**options)
