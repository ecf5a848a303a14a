"""`deepvideo demo`: a two-stream network on synthetic motion videos, end to end on a CPU.

Steps (recipes in ``configs/demo/``):

1. render the synthetic ``motion-shapes`` set (classes defined only by motion) in the UCF101
   layout with :func:`deepvideo.data.synth.generate_dataset`;
2. compute optical flow (DIS) for every video and store it quantized (``flow.npz``);
3. train an appearance stream (one RGB frame) and a motion stream (a stack of flow fields),
   the two streams of Simonyan & Zisserman 2014, miniaturised
   (:mod:`deepvideo.models.demo_nets`), and, if a convolutional-fusion model is registered
   (Feichtenhofer et al. 2016), that too;
4. test every model on split 1 (several clips per video), fuse the two streams' scores late
   (weighted softmax average, and a linear SVM trained on the train split's scores);
5. write ``<out>/report.md`` with the table, training curves and the confusion matrix.

Expected: appearance near chance (10 %), motion far above it, fusion at least as good as
motion. Data and flow are cached in ``<out>/data`` and ``<out>/flow`` (a rerun reuses them);
the trained runs are replaced on every run.
"""

from __future__ import annotations

import json
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
from deepvideo.io.atomic import atomic_write_text

DEFAULTS = {
    "synth": {"set": "motion-shapes", "videos_per_class": 30, "size": 96, "frames": 32, "seed": 0,
              "workers": 2},
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


def make_data(out: Path, synth: dict, progress: bool | None) -> Path:
    """Render the synthetic set into ``out`` (existing videos are kept)."""
    from deepvideo.data.synth import RenderParams, generate_dataset

    params = RenderParams(width=int(synth["size"]), height=int(synth["size"]), frames=int(synth["frames"]))
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


def _data_overrides(data_dir: Path, flow_root: Path, split: int) -> list[str]:
    root = data_dir.resolve()
    ann, vids = root / "annotations", root / "videos"
    out = [f"data.video_root={vids}", f"data.flow_root={flow_root.resolve()}"]
    for section, subset in (("train", "train"), ("val", "test"), ("test", "test")):
        out += [f"data.{section}.format=ucf101", f"data.{section}.root={root}",
                f"data.{section}.annotation_dir={ann}", f"data.{section}.video_root={vids}",
                f"data.{section}.split={split}", f"data.{section}.subset={subset}"]
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


def _train_and_test(recipe: Path, name: str, out: Path, overrides: list[str], progress: bool | None,
                    svm: bool, train_flip: bool = False) -> tuple[object, object, object | None]:
    """Train one model, test it on the test split (and, for SVM fusion, on the train split).

    ``train_flip=False`` builds the training set with horizontal flips switched off: a
    mirrored "move left" video is a "move right" one (and clockwise becomes counterclockwise),
    so the usual flip augmentation would teach wrong labels on motion-shapes.
    """
    from deepvideo.data.transforms import build_transforms
    from deepvideo.engine.config import load_config
    from deepvideo.engine.evaluate import evaluate_checkpoint
    from deepvideo.engine.trainer import build_dataset, build_model, load_index, train

    run_dir = out / name
    shutil.rmtree(run_dir, ignore_errors=True)
    cfg = load_config(recipe, [*overrides, f"name=demo_{name}", f"output_dir={run_dir}"])
    index = load_index(cfg, "train")
    model = build_model(cfg, cfg.model.num_classes or len(index.classes))
    dataset = build_dataset(cfg, "train", model.input_spec, train=True, index=index)
    if not train_flip:
        dataset.transform = build_transforms(model.input_spec, train=True, recipe=cfg.data.recipe,
                                             short_side=cfg.data.short_side, flip=False)
    run = train(cfg, model=model, train_dataset=dataset, class_names=list(index.classes), progress=progress)
    test = evaluate_checkpoint(run.last_checkpoint, progress=progress, name=name)
    train_scores = None
    if svm:
        train_scores = evaluate_checkpoint(run.last_checkpoint, subset="train", num_clips=1,
                                           progress=progress, name=name)
    return run, test, train_scores


def _curves(out: Path, runs: dict) -> list[str]:
    lines = []
    for name, run in runs.items():
        hist = Path(run.run_dir) / "metrics.csv"
        if hist.is_file() and plot_history(out / f"curves_{name}.png", read_history(hist), name):
            lines += [f"![{name} training curves](curves_{name}.png)", ""]
    return lines


def run_demo(out: str | Path = "runs/demo", *, recipe: str | Path | None = None,
             videos_per_class: int | None = None, size: int | None = None, frames: int | None = None,
             epochs: int | None = None,
             extra_overrides: tuple[str, ...] = (), conv_fusion: bool | str | None = None,
             progress: bool | None = None) -> DemoResult:
    """Run the whole demo (see the module docstring); small ``videos_per_class``/``size`` for tests.

    ``conv_fusion``: ``None`` follows the recipe (``auto``: a registered CPU-sized conv-fusion
    model if any), ``False`` skips it, a string names the model.
    """
    from deepvideo.engine.evaluate import score_metrics, write_evaluation
    from deepvideo.engine.fusion import fuse_sets

    t0, c0 = time.perf_counter(), time.process_time()
    out = Path(out)
    rec, rec_dir = load_demo_recipe(recipe)
    synth = rec["synth"]
    for key, value in (("videos_per_class", videos_per_class), ("size", size), ("frames", frames)):
        if value is not None:
            synth[key] = value
    timings = {}
    cpu = {}
    try:
        t, c = time.perf_counter(), time.process_time()
        data_dir = make_data(out / "data", synth, progress)
        timings["synthesize videos"] = time.perf_counter() - t
        cpu["synthesize videos"] = time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        flow = rec["flow"]
        make_flow(data_dir / "videos", out / "flow", flow["method"], float(flow["bound"]), progress)
        timings["optical flow"] = time.perf_counter() - t
        cpu["optical flow"] = time.process_time() - c
    except (OSError, ValueError) as err:
        raise DemoError(f"preparing the demo data in {out} failed: {err}") from err

    overrides = _data_overrides(data_dir, out / "flow", int(rec["split"]))
    if epochs is not None:
        overrides.append(f"train.epochs={epochs}")
    overrides += list(extra_overrides)
    fusion = rec["fusion"]
    runs, tests, trains = {}, {}, {}
    streams = dict(rec["streams"])
    conv = fusion.get("conv") if conv_fusion is None else conv_fusion
    conv = conv_fusion_model() if conv in ("auto", True) else (conv or None)
    for name, rel in streams.items():
        t, c = time.perf_counter(), time.process_time()
        try:
            runs[name], tests[name], trains[name] = _train_and_test(
                rec_dir / rel, name, out, overrides, progress, bool(fusion.get("svm")),
                bool(rec["train_flip"]))
        except (OSError, ValueError) as err:
            raise DemoError(f"training the {name} stream failed: {err}") from err
        timings[f"train + test {name}"] = time.perf_counter() - t
        cpu[f"train + test {name}"] = time.process_time() - c

    rows = {name: tests[name].metrics for name in streams}
    sets = [tests[n].scores for n in streams]
    weights = [float(w) for w in fusion["weights"]]
    w_text = ":".join(f"{w:g}" for w in weights)
    fused = fuse_sets(sets, weights, fusion["space"])
    fused_name = f"late fusion ({fusion['space']} avg {w_text})"
    rows[fused_name] = write_evaluation(out / "fusion_average", fused, title="Late fusion (average)",
                                        name=fused_name)
    best_name, best_set = fused_name, fused
    if fusion.get("svm"):
        svm_set = fuse_sets(sets, None, fusion["space"], [trains[n].scores for n in streams])
        rows["late fusion (linear SVM)"] = write_evaluation(out / "fusion_svm", svm_set,
                                                            title="Late fusion (linear SVM)",
                                                            name="late fusion (linear SVM)")
    if conv is not None:
        t, c = time.perf_counter(), time.process_time()
        conv_recipe = rec_dir / fusion["conv_recipe"]
        try:
            run, test, _ = _train_and_test(conv_recipe, "conv_fusion", out,
                                           [*overrides, *_conv_overrides(conv, conv_recipe, overrides)],
                                           progress, False, bool(rec["train_flip"]))
        except (OSError, ValueError) as err:
            raise DemoError(f"training the convolutional fusion model {conv} failed: {err}") from err
        runs["conv_fusion"] = run
        rows[f"conv fusion ({conv})"] = test.metrics
        timings["train + test conv fusion"] = time.perf_counter() - t
        cpu["train + test conv fusion"] = time.process_time() - c

    wall = time.perf_counter() - t0
    cpu["total"] = time.process_time() - c0
    report = _write_demo_report(out, rows, runs, best_name, score_metrics(best_set), best_set.class_names,
                                synth, rec, wall, timings, conv, cpu)
    summary = {"rows": {k: {kk: v for kk, v in m.items() if isinstance(v, (int, float, str))}
                        for k, m in rows.items()},
               "wall_time_s": wall, "timings_s": timings, "cpu_s": cpu, "synth": synth}
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2, default=float) + "\n")
    return DemoResult(rows, report, wall, out, timings)


def _write_demo_report(out: Path, rows: dict, runs: dict, best_name: str, best_metrics: dict,
                       class_names: list[str], synth: dict, rec: dict, wall: float, timings: dict,
                       conv: str | None, cpu: dict) -> Path:
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
        f"class of {synth['frames']} frames at {synth['size']}x{synth['size']} pixels; split {rec['split']} "
        "(UCF101-style groups: train and test videos never share a group).",
        f"Optical flow: {rec['flow']['method']}, stored quantized to +-{rec['flow']['bound']:g} px.",
        "Models: the spatial (one RGB frame) and temporal (a stack of 5 flow fields) streams of "
        "Simonyan & Zisserman 2014, miniaturised (`deepvideo.models.demo_nets`); late fusion of their "
        "video scores by a weighted average of softmax scores and by a linear SVM on the stacked "
        "L2-normalised scores (trained on the train split's scores)."
        + (f" Convolutional fusion (Feichtenhofer et al. 2016): `{conv}`, both towers trained end to end "
           "from scratch."
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
        "## Training curves",
        "",
        "Validation is the test split (for the curves only; no model selection on it).",
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
