"""`deepvideo demo`: a two-stream network on synthetic motion videos, end to end on a CPU.

Steps (recipes in ``configs/demo/``):

1. render the synthetic ``motion-shapes`` set (classes defined only by motion) in the UCF101
   layout with :func:`deepvideo.data.synth.generate_dataset` into ``<out>/data/main`` (the
   recipe's ``synth.camera``: ``mixed`` films every other video with a moving camera), and a
   moving-camera test set of the same classes with other scenes (``moving_camera_test``) into
   ``<out>/data/moving_camera_test``;
2. compute optical flow (DIS) for every video and store it quantized (``<out>/flow``);
3. train an appearance stream (one RGB frame) and a motion stream (a stack of flow fields with
   the mean flow subtracted), the two streams of Simonyan & Zisserman 2014 (CPU-sized presets),
   then a convolutional fusion network (Feichtenhofer et al. 2016) started from both;
4. test every model on split 1 (several clips per video) and on the moving-camera set, fuse the
   two streams' scores late (weighted softmax average, and a linear SVM trained on the train
   split's scores);
5. write ``<out>/report.md`` (table, curves, confusion matrix, time per step) and
   ``<out>/results.json`` (every figure, the source of the README's demo table).

Each model's initial weights are seeded from its recipe, so a rerun on the same machine gives
the same figures. Data and flow are cached in ``<out>/data`` and ``<out>/flow`` (a rerun reuses
them); the trained runs are replaced on every run.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from deepvideo.engine.report import (
    metrics_table,
    plot_confusion,
    plot_history,
    read_history,
)
from deepvideo.io.atomic import atomic_write_json, atomic_write_text
from deepvideo.progress import stage_line

DEFAULTS = {
    "synth": {"set": "motion-shapes", "videos_per_class": 30, "size": 96, "frames": 32, "seed": 0,
              "workers": 2, "camera": "static"},
    "moving_camera_test": {"seed": 1, "videos_per_class": 15, "subset": "train"},
    "flow": {"method": "dis", "bound": 8.0},
    "split": 1,
    "train_flip": False,
    "streams": {"appearance": "appearance.yaml", "motion": "motion.yaml"},
    "fusion": {"weights": [1.0, 3.0], "space": "softmax", "svm": True, "conv": "auto",
               "conv_recipe": "conv_fusion.yaml"},
}


class DemoError(RuntimeError):
    """The demo cannot run (missing recipe, failed step); the message says which and why."""


@dataclass
class DemoResult:
    rows: dict  # model name -> metrics
    report: Path
    wall_time_s: float
    out: Path
    timings: dict = field(default_factory=dict)  # step -> seconds
    moving_rows: dict = field(default_factory=dict)  # model name -> metrics on the moving-camera test set


def find_recipe_dir() -> Path:
    """``configs/demo`` of the source tree (or of the working directory)."""
    for base in (Path.cwd(), *Path(__file__).resolve().parents):
        cand = base / "configs" / "demo"
        if (cand / "demo.yaml").is_file():
            return cand
    raise DemoError("configs/demo/demo.yaml not found: run the demo from the deepvideo source folder "
                    "or pass --recipe PATH")


def load_demo_recipe(path: str | Path | None) -> tuple[dict, Path]:
    path = Path(path) if path is not None else find_recipe_dir() / "demo.yaml"
    if not path.is_file():
        raise DemoError(f"demo recipe not found: {path}")
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as err:  # yaml errors carry the line number
        raise DemoError(f"{path}: not valid YAML: {err}") from None
    merged = OmegaConf.merge(OmegaConf.create(DEFAULTS), OmegaConf.create(loaded or {}))
    merged = OmegaConf.to_container(merged)
    return merged, path.parent


CAMERAS = ("static", "moving", "mixed")


def make_data(out: Path, synth: dict, progress: bool | None) -> Path:
    """Render the synthetic set into ``out`` (existing videos are kept).

    ``synth["camera"]``: ``static``, ``moving`` (every video panned, zoomed and jittered) or
    ``mixed`` (every other video of a class filmed by a moving camera).
    """
    from deepvideo.data.synth import RenderParams, generate_dataset

    camera = synth.get("camera", "static")
    if camera not in CAMERAS:
        raise DemoError(f"synth.camera: {camera!r} is not one of {', '.join(CAMERAS)}; fix the demo recipe")
    params = RenderParams(width=int(synth["size"]), height=int(synth["size"]), frames=int(synth["frames"]),
                          moving_camera=camera == "moving", mixed_camera=camera == "mixed")
    generate_dataset(synth["set"], out, videos_per_class=int(synth["videos_per_class"]), params=params,
                     seed=int(synth["seed"]), workers=int(synth.get("workers", 1)), progress=progress)
    return out


def make_flow(videos: Path, flow_root: Path, method: str, bound: float, progress: bool | None) -> int:
    """Flow of each video under ``videos`` into ``flow_root/<class>/<stem>.npz``; returns the new count."""
    from deepvideo.flow import compute_flow, write_flow
    from deepvideo.io import open_video
    from deepvideo.progress import progress_task

    paths = sorted(videos.rglob("*.mp4"))
    written = 0
    with progress_task(f"flow ({method})", total=len(paths), unit="videos",
                       disable=None if progress is None else not progress) as advance:
        for p in paths:
            target = flow_root / p.relative_to(videos).with_suffix(".npz")
            if not target.is_file():
                with open_video(p) as reader:
                    frames = reader.get_frames(list(range(len(reader))))
                flow = compute_flow(frames, method=method)
                write_flow(target, flow, bound=bound, method=method)
                written += 1
            advance(1)
    return written


def data_overrides(data_dir: Path, flow_root: Path, split: int, moving: Path | None = None,
                    moving_subset: str = "train", video_root: Path | None = None) -> list[str]:
    """Train and test on the synthetic set in ``data_dir`` (``split``); validate on the
    moving-camera test set ``moving`` (its ``moving_subset`` list of split 1) or, without one, on
    the test split. Stored flow under ``flow_root`` mirrors ``video_root`` (default
    ``data_dir/videos``)."""
    main = data_dir.resolve()
    videos = (video_root or main / "videos").resolve()
    out = [f"data.video_root={videos}", f"data.flow_root={flow_root.resolve()}"]
    val = ("val", main, split, "test") if moving is None else ("val", moving.resolve(), 1, moving_subset)
    sections = [("train", main, split, "train"), ("test", main, split, "test"), val]
    for section, root, section_split, subset in sections:
        out += [f"data.{section}.format=ucf101", f"data.{section}.root={root}",
                f"data.{section}.annotation_dir={root / 'annotations'}",
                f"data.{section}.video_root={root / 'videos'}",
                f"data.{section}.split={section_split}", f"data.{section}.subset={subset}"]
    return out


def conv_fusion_model() -> str | None:
    """A registered model taking both RGB and flow whose name says it is a CPU-sized preset."""
    from deepvideo.models.registry import list_models

    found = [i.name for i in list_models() if set(i.spec.modalities) >= {"rgb", "flow"}
             and "fusion" in f"{i.name} {i.family}".lower()
             and any(t in i.name.lower() for t in ("tiny", "demo", "small", "cpu"))]
    return found[0] if found else None


def _conv_overrides(name: str, recipe: Path, overrides: list[str]) -> list[str]:
    """Model name and, for presets built for a fixed input size, that size = the demo's crop."""
    from deepvideo.engine.config import load_config
    from deepvideo.models.registry import get_model_info

    cfg = load_config(recipe, overrides)
    if cfg.model.name == name:  # the recipe's own model: its settings stand
        return []
    info = get_model_info(name)
    crop = int(cfg.model.spec.get("crop_size", info.spec.crop_size))
    if "input_size" in info.defaults:  # fixed-size FC head: the smallest size >= crop it accepts
        from deepvideo.models.registry import create_model

        for size in range(crop, 225, 8):
            try:
                create_model(name, num_classes=2, input_size=size)
                crop = size
                break
            except ValueError:
                continue
    out = [f"model.name={name}", f"model.spec.crop_size={crop}",
           f"model.spec.flow_stack={info.spec.flow_stack}"]
    if "input_size" in info.defaults:
        out.append(f"model.kwargs.input_size={crop}")
    return out


@dataclass
class Trained:
    """One trained model of the demo: its run and its evaluations."""

    run: object
    test: object                  # EvalResult on the test split
    train_scores: object | None   # EvalResult on the train split (input of SVM fusion)
    moving: object | None         # EvalResult on the moving-camera test set (data.val)


def _train_and_test(recipe: Path, name: str, out: Path, overrides: list[str], progress: bool | None,
                    svm: bool, train_flip: bool = False, moving: bool = False) -> Trained:
    """Train one model, test it on the test split (for SVM fusion also on the train split, and
    with ``moving`` on the moving-camera test set, ``data.val``).

    ``train_flip=False`` trains with horizontal flips switched off (``data.flip=false``): a
    mirrored "move left" video is a "move right" one (and clockwise becomes counterclockwise),
    so the usual flip augmentation would teach wrong labels on motion-shapes.
    """
    from deepvideo.engine.config import load_config
    from deepvideo.engine.evaluate import evaluate_checkpoint
    from deepvideo.engine.loop import train

    run_dir = out / name
    shutil.rmtree(run_dir, ignore_errors=True)
    flip = [] if train_flip else ["data.flip=false"]
    cfg = load_config(recipe, [*overrides, *flip, f"name=demo_{name}", f"output_dir={run_dir}"])
    for entry in cfg.model.init_from:  # relative: runs of this demo (e.g. motion/checkpoints/last)
        if not Path(entry["checkpoint"]).is_absolute():
            entry["checkpoint"] = str(out / entry["checkpoint"])
    # train() seeds before it builds the model, so every run starts from the same weights (the
    # appearance row varied between runs while the demo built its model before train() seeded).
    run = train(cfg, progress=progress)
    test = evaluate_checkpoint(run.last_checkpoint, progress=progress, name=name)
    train_scores = moving_test = None
    if svm:
        train_scores = evaluate_checkpoint(run.last_checkpoint, subset="train", num_clips=1,
                                           progress=progress, name=name)
    if moving:
        moving_test = evaluate_checkpoint(run.last_checkpoint, subset="val", progress=progress,
                                          name=f"{name} (moving camera)")
    return Trained(run, test, train_scores, moving_test)


def _curves(out: Path, runs: dict) -> list[str]:
    lines = []
    for name, run in runs.items():
        hist = Path(run.run_dir) / "metrics.csv"
        if hist.is_file() and plot_history(out / f"curves_{name}.png", read_history(hist), name):
            lines += [f"![{name} training curves](curves_{name}.png)", ""]
    return lines


class _Steps:
    """Wall and CPU seconds per demo step, and one printed line per finished step."""

    def __init__(self, progress: bool | None):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.quiet = progress is False
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def start(self) -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def done(self, name: str, started: tuple[float, float], figures: str = "") -> None:
        self.wall[name] = time.perf_counter() - started[0]
        self.cpu[name] = time.process_time() - started[1]
        if not self.quiet:
            stage_line(f"demo: {name} done in {self.wall[name]:.1f} s" + (f": {figures}" if figures else ""))

    def total(self) -> float:
        self.cpu["total"] = time.process_time() - self.c0
        return time.perf_counter() - self.t0


def _pct(metrics: dict | None) -> str:
    return "-" if metrics is None else f"{100 * metrics['video_hit@1']:.1f}%"


def _prepare_data(out: Path, rec: dict, steps: _Steps, progress: bool | None) -> Path | None:
    """Render the main set (``out/data/main``) and the moving-camera test set
    (``out/data/moving_camera_test``, if the recipe has one) and their flow (``out/flow``).
    Returns the moving-camera set's folder or None."""
    synth, moving_rec = rec["synth"], rec.get("moving_camera_test")
    moving = out / "data" / "moving_camera_test" if moving_rec else None
    try:
        started = steps.start()
        make_data(out / "data" / "main", synth, progress)
        if moving is not None:
            per_class = min(int(moving_rec["videos_per_class"]), int(synth["videos_per_class"]))
            make_data(moving, {**synth, "camera": "moving", "seed": int(moving_rec["seed"]),
                               "videos_per_class": per_class}, progress)
        steps.done("synthesize videos", started, f"{synth['set']} in {out / 'data'}")
        started = steps.start()
        flow = rec["flow"]
        new = make_flow(out / "data", out / "flow", flow["method"], float(flow["bound"]), progress)
        steps.done("optical flow", started, f"{new} new flow files ({flow['method']})")
    except (OSError, ValueError) as err:
        raise DemoError(f"preparing the demo data in {out} failed: {err}; delete {out / 'data'} and "
                        f"{out / 'flow'} if they were made by another version of the demo") from err
    return moving


def _late_fusion(out: Path, rows: dict, trained: dict[str, Trained], fusion: dict):
    """Late fusion of the streams' test scores into ``rows``; returns the averaged score set."""
    from deepvideo.engine.evaluate import write_evaluation
    from deepvideo.engine.fusion import fuse_sets

    sets = [t.test.scores for t in trained.values()]
    weights = [float(w) for w in fusion["weights"]]
    w_text = ":".join(f"{w:g}" for w in weights)
    fused = fuse_sets(sets, weights, fusion["space"])
    fused_name = f"late fusion ({fusion['space']} avg {w_text})"
    rows[fused_name] = write_evaluation(out / "fusion_average", fused, title="Late fusion (average)",
                                        name=fused_name)
    if fusion.get("svm"):
        svm_set = fuse_sets(sets, None, fusion["space"], [t.train_scores.scores for t in trained.values()])
        rows["late fusion (linear SVM)"] = write_evaluation(out / "fusion_svm", svm_set,
                                                            title="Late fusion (linear SVM)",
                                                            name="late fusion (linear SVM)")
    return fused_name, fused


def run_demo(out: str | Path = "runs/demo", *, recipe: str | Path | None = None,
             videos_per_class: int | None = None, size: int | None = None, frames: int | None = None,
             epochs: int | None = None,
             extra_overrides: tuple[str, ...] = (), conv_fusion: bool | str | None = None,
             progress: bool | None = None) -> DemoResult:
    """Run the whole demo (see the module docstring); small ``videos_per_class``/``size`` for tests.

    ``conv_fusion``: ``None`` follows the recipe (a model name, or ``auto``: a registered
    CPU-sized conv-fusion model if any), ``False`` skips it, a string names the model.
    ``progress=False`` prints nothing; otherwise a line per finished step with its figures.
    """
    from deepvideo.engine.evaluate import score_metrics

    steps = _Steps(progress)
    out = Path(out)
    rec, rec_dir = load_demo_recipe(recipe)
    synth = rec["synth"]
    for key, value in (("videos_per_class", videos_per_class), ("size", size), ("frames", frames)):
        if value is not None:
            synth[key] = value
    moving = _prepare_data(out, rec, steps, progress)
    overrides = data_overrides(out / "data" / "main", out / "flow", int(rec["split"]), moving,
                                str((rec.get("moving_camera_test") or {}).get("subset", "train")),
                                video_root=out / "data")
    if epochs is not None:
        overrides.append(f"train.epochs={epochs}")
    overrides += list(extra_overrides)
    fusion = rec["fusion"]
    conv = fusion.get("conv") if conv_fusion is None else conv_fusion
    conv = conv_fusion_model() if conv in ("auto", True) else (conv or None)
    trained: dict[str, Trained] = {}
    for name, rel in dict(rec["streams"]).items():
        started = steps.start()
        try:
            trained[name] = _train_and_test(rec_dir / rel, name, out, overrides, progress,
                                            bool(fusion.get("svm")), bool(rec["train_flip"]),
                                            moving is not None)
        except (OSError, ValueError) as err:
            raise DemoError(f"training the {name} stream failed: {err}") from err
        t = trained[name]
        steps.done(f"train + test {name}", started, f"video hit@1 {_pct(t.test.metrics)}, moving camera "
                                                    f"{_pct(t.moving.metrics if t.moving else None)}")
    rows = {name: t.test.metrics for name, t in trained.items()}
    moving_rows = {name: t.moving.metrics for name, t in trained.items() if t.moving is not None}
    best_name, best_set = _late_fusion(out, rows, trained, fusion)
    runs = {name: t.run for name, t in trained.items()}
    if conv is not None:
        started = steps.start()
        conv_recipe = rec_dir / fusion["conv_recipe"]
        try:
            t = _train_and_test(conv_recipe, "conv_fusion", out,
                                [*overrides, *_conv_overrides(conv, conv_recipe, overrides)],
                                progress, False, bool(rec["train_flip"]), moving is not None)
        except (OSError, ValueError) as err:
            raise DemoError(f"training the convolutional fusion model {conv} failed: {err}") from err
        runs["conv_fusion"] = t.run
        rows[f"conv fusion ({conv})"] = t.test.metrics
        if t.moving is not None:
            moving_rows[f"conv fusion ({conv})"] = t.moving.metrics
        steps.done("train + test conv fusion", started, f"video hit@1 {_pct(t.test.metrics)}")
    wall = steps.total()
    report = _write_demo_report(out, rows, runs, best_name, score_metrics(best_set), best_set.class_names,
                                synth, rec, wall, steps.wall, conv, steps.cpu, moving_rows)
    write_results(out / "results.json", rows, moving_rows, wall, steps, rec, len(best_set.class_names))
    return DemoResult(rows, report, wall, out, steps.wall, moving_rows)


def write_results(path: Path, rows: dict, moving_rows: dict, wall: float, steps: _Steps, rec: dict,
                  num_classes: int) -> Path:
    """``results.json``: every row's scalar metrics, the moving-camera test, the timings, the
    recipe's data settings and the machine's thread count (the one source of the README table)."""
    import os

    import torch

    def scalars(table: dict) -> dict:
        return {k: {kk: v for kk, v in m.items() if isinstance(v, (int, float, str))}
                for k, m in table.items()}

    summary = {"rows": scalars(rows), "moving_camera": scalars(moving_rows), "wall_time_s": wall,
               "timings_s": steps.wall, "cpu_s": steps.cpu, "synth": rec["synth"],
               "moving_camera_test": rec.get("moving_camera_test"), "num_classes": num_classes,
               "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "load_average": os.getloadavg()[0]},
               "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    return atomic_write_json(path, summary, default=float)


def _moving_section(moving_rows: dict, rec: dict) -> list[str]:
    if not moving_rows:
        return []
    m = rec["moving_camera_test"]
    return ["## Moving-camera test set", "",
            "Videos of the same classes rendered by a camera that pans, zooms and jitters "
            f"(seed {m['seed']}, {m['videos_per_class']} videos per class, its split-1 `{m['subset']}` "
            "list): scenes none of the models saw.", "", metrics_table(moving_rows), ""]


def _write_demo_report(out: Path, rows: dict, runs: dict, best_name: str, best_metrics: dict,
                       class_names: list[str], synth: dict, rec: dict, wall: float, timings: dict,
                       conv: str | None, cpu: dict, moving_rows: dict) -> Path:
    k = len(class_names)
    plot_confusion(out / "confusion.png", best_metrics["confusion"], class_names,
                   f"Confusion matrix: {best_name}")
    app, mot = rows.get("appearance", {}), rows.get("motion", {})
    nan = float("nan")
    fused_best = max((m.get("video_hit@1", 0.0) for n, m in rows.items() if "fusion" in n), default=nan)
    verdict = (f"Chance is {100 / k:.1f}%. Appearance reaches {100 * app.get('video_hit@1', nan):.1f}% "
               f"video hit@1, motion {100 * mot.get('video_hit@1', nan):.1f}%, the best fusion "
               f"{100 * fused_best:.1f}%.")
    ev = [f"- **{n}**: {r.run_dir}" for n, r in runs.items()]
    parts = [
        "# deepvideo demo: two-stream networks on synthetic motion",
        "",
        f"Data: `{synth['set']}`, {k} classes defined only by motion, {synth['videos_per_class']} videos per "
        f"class of {synth['frames']} frames at {synth['size']}x{synth['size']} pixels, camera: "
        f"{synth.get('camera', 'static')}; split {rec['split']} "
        "(UCF101-style groups: train and test videos never share a group).",
        f"Optical flow: {rec['flow']['method']}, stored quantized to +-{rec['flow']['bound']:g} px.",
        "Models: the spatial (one RGB frame) and temporal (a stack of flow fields, see the recipes in "
        "`configs/demo/`) streams of Simonyan & Zisserman 2014, CPU-sized; late fusion of their "
        "video scores by a weighted average of softmax scores and by a linear SVM on the stacked "
        "L2-normalised scores (trained on the train split's scores)."
        + (f" Convolutional fusion (Feichtenhofer et al. 2016): `{conv}` (recipe "
           f"`{rec['fusion']['conv_recipe']}`), fine-tuned end to end."
           if conv else " Convolutional fusion was not run (no CPU-sized conv-fusion model registered, "
           "or switched off)."),
        "",
        "## Results (split 1, test set)",
        "",
        "Accuracies in percent. Clip level scores every test clip alone; video level averages the "
        "clips' scores (pre-softmax) per video. The last checkpoint of each run is tested.",
        "",
        metrics_table(rows),
        "",
        verdict,
        "",
        *_moving_section(moving_rows, rec),
        "## Training curves",
        "",
        ("Validation is the moving-camera test set" if moving_rows else "Validation is the test split")
        + " (for the curves only; no model selection on it).",
        "",
        *_curves(out, runs),
        "",
        f"## Confusion matrix ({best_name})",
        "",
        "![confusion matrix](confusion.png)",
        "",
        "## Time",
        "",
        "Wall-clock seconds, and CPU seconds of the demo process (all its threads; the video "
        "rendering workers not included). Wall time depends on what else the machine runs.",
        "",
        "| step | wall s | CPU s |",
        "|---|---:|---:|",
        *[f"| {s} | {v:.1f} | {cpu.get(s, float('nan')):.1f} |" for s, v in timings.items()],
        f"| **total** | **{wall:.1f}** | **{cpu.get('total', float('nan')):.1f}** |",
        "",
        "## Runs",
        "",
        *ev,
        "",
        "Per-model test reports (with per-class accuracy and confusion matrices) are in each run's "
        "`test/` folder; fused scores in `fusion_*/`. Rerun fusion without the models: "
        f"`deepvideo fuse {out}/appearance/test/scores.npz {out}/motion/test/scores.npz "
        f"--weights {','.join(f'{w:g}' for w in rec['fusion']['weights'])}`.",
    ]
    return atomic_write_text(out / "report.md", "\n".join(parts) + "\n")
