"""The deep trackers' side of ``bench_track.py``: the library's synthetic training and test data,
training each tracker from its recipe, and the tracker built from the trained weights.

A deep tracker enters the benchmark by one :data:`DEEP` entry: its recipe, its registered
tracker name, how the tracker takes its weights (an environment variable and a keyword),
recipe overrides that point the recipe at the synthetic data (``{train}``, ``{val}``,
``{needs}`` filled in) and tracker options. ``trained_as`` reuses another entry's training
(a variant of the same network); ``needs`` trains another entry first and fills ``{needs}``
(in overrides and tracker options) with its weights, e.g. UpdateNet on a trained SiamFC.
Training runs ``deepvideo.engine.loop.main_train(recipe, overrides)`` into ``<work>/<name>``;
an existing ``<work>/<name>/checkpoints/best`` is reused unless ``--retrain`` (then, or when a
run has no best checkpoint, the run folder is removed and trained again).

Data (:mod:`deepvideo.track.synth`, GOT-10k layout): ``train`` (seed 0) and ``val`` (seed 1)
over backgrounds cropped from frames of three real videos of ``../shared/data/video``
(demo, bikes, bigbuckbunny); the held-out ``test`` split (seed 2) over frames of two other
videos (test.mp4, test.avi), so no test background is seen in training.
"""

from __future__ import annotations

import shutil
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
    overrides: tuple[str, ...] = ()               # recipe overrides ({train}, {val}, {needs})
    tracker_kwargs: dict = field(default_factory=dict)   # string values may hold {needs}
    trained_as: str | None = None                 # reuse this entry's training
    needs: str | None = None                      # train this entry first; {needs} = its weights


DATA_OVERRIDES = ("data.train.root={train}", "data.val.root={val}")
# The benchmark's budget where it is below the recipe's (so that all trackers train in one run of
# about two hours on 2 cores): fewer epochs of the recipe's schedule; the table reports the minutes.
BENCH_BUDGET = {"siamrpn": ("train.epochs=5",), "siamrpnpp": ("train.epochs=1",),
                "rtmdnet": ("train.epochs=6",)}

SIAMFC = ("configs/track/siamfc.yaml", "siamfc", "DEEPVIDEO_SIAMFC_WEIGHTS")
DEEP: dict[str, DeepEntry] = {
    "siamfc": DeepEntry(*SIAMFC, overrides=DATA_OVERRIDES, tracker_kwargs={"optimize": True}),
    "siamfc_5s": DeepEntry(*SIAMFC, trained_as="siamfc",
                           tracker_kwargs={"optimize": True, "num_scales": 5}),
    "siamfc_linear": DeepEntry(*SIAMFC, trained_as="siamfc",
                               tracker_kwargs={"optimize": True, "update": "linear"}),
    "siamfc_updatenet": DeepEntry(
        "configs/track/siamfc_updatenet.yaml", "siamfc", "DEEPVIDEO_UPDATENET_WEIGHTS", "updatenet",
        needs="siamfc", overrides=(*DATA_OVERRIDES, "model.kwargs.embedding={needs}"),
        tracker_kwargs={"weights": "{needs}", "update": "updatenet", "optimize": True}),
    **{name: DeepEntry(f"configs/track/{name}.yaml", name, f"DEEPVIDEO_{name.upper()}_WEIGHTS",
                       overrides=(*DATA_OVERRIDES, *BENCH_BUDGET.get(name, ())))
       for name in ("siamrpn", "siamrpnpp", "siammask", "atom", "dimp", "d3s")},
    # MDNet validates on held-out frames of its training domains: no val split
    "mdnet": DeepEntry("configs/track/mdnet.yaml", "mdnet", "DEEPVIDEO_MDNET_WEIGHTS",
                       overrides=("data.train.root={train}",)),
    "rtmdnet": DeepEntry("configs/track/mdnet.yaml", "rtmdnet", "DEEPVIDEO_RTMDNET_WEIGHTS",
                         overrides=("data.train.root={train}", "model.kwargs.roi_align=true",
                                    *BENCH_BUDGET["rtmdnet"])),
}


@dataclass(frozen=True)
class SynthSplits:
    """Sizes of the synthetic splits (sequences, frames each, frame size)."""

    train: int = 300
    val: int = 20
    test: int = 15
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


def run_name(name: str) -> str:
    """The entry whose training ``name`` uses."""
    return DEEP[name].trained_as or name


def weights_path(work: Path, name: str) -> Path:
    owner = run_name(name)
    return work / owner / DEEP[owner].weights_file


def train(name: str, root: Path, work: Path, splits: dict[str, Path], extra: list[str],
          retrain: bool = False, done: set[str] | None = None) -> Path:
    """Train deep tracker ``name`` (and what it needs) from its recipe on the synthetic splits,
    once per run (``done``); its weights' path."""
    from deepvideo.engine.loop import main_train

    done = set() if done is None else done
    name = run_name(name)
    entry = DEEP[name]
    needs = train(entry.needs, root, work, splits, extra, retrain, done) if entry.needs else ""
    weights = weights_path(work, name)
    if weights.exists() and (name in done or not retrain):
        print(f"{name}: reusing {weights}", flush=True)
        return weights
    done.add(name)
    if (work / name).exists():  # a retraining, or an unfinished run: start it again
        print(f"{name}: removing the earlier run {work / name}", flush=True)
        shutil.rmtree(work / name)
    overrides = [o.format(train=splits["train"], val=splits["val"], needs=needs) for o in entry.overrides]
    overrides += [f"output_dir={work / name}", *(e.split(":", 1)[1] for e in extra
                                                  if e.startswith(f"{name}:"))]
    print(f"{name}: training {entry.config} {' '.join(overrides)}", flush=True)
    result = main_train(root / entry.config, overrides, progress=False)
    if result.best_checkpoint is None:
        raise RuntimeError(f"{name}: training wrote no best checkpoint in {work / name}")
    return weights


def training_seconds(work: Path, name: str) -> float | None:
    """Sum of the epoch times in ``<work>/<run>/metrics.csv`` (None without it); with what it needs."""
    import csv

    entry = DEEP[run_name(name)]
    path = work / run_name(name) / "metrics.csv"
    if not path.is_file():
        return None
    with path.open() as f:
        own = sum(float(row["epoch_time_s"] or 0) for row in csv.DictReader(f))
    return own + ((training_seconds(work, entry.needs) or 0.0) if entry.needs else 0.0)


def tracker_factory(name: str, work: Path, weights: dict[str, Path] | None = None):
    """A zero-argument factory of deep tracker ``name`` with its trained weights (``weights``:
    entry name -> weights, overriding the run folders)."""
    from deepvideo.track.registry import get_tracker_info

    weights = weights or {}
    entry = DEEP[name]

    def path(of: str) -> str:
        return str(weights.get(of) or weights.get(run_name(of)) or weights_path(work, of))

    needs = path(DEEP[run_name(name)].needs) if DEEP[run_name(name)].needs else ""
    options = {entry.weights_kwarg: path(name),
               **{k: v.format(needs=needs) if isinstance(v, str) else v
                  for k, v in entry.tracker_kwargs.items()}}
    factory = get_tracker_info(entry.tracker).factory
    return lambda: factory(**options)
