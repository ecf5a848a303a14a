"""Top-level engine commands: ``train``, ``test``, ``predict``, ``fuse`` and ``demo``.

Heavy imports (torch, the training loop) happen inside the commands so ``deepvideo --help`` stays fast.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import typer

from deepvideo.cli.params import fail

AGGREGATES = ("mean", "softmax", "max")
ALLOW_IMPORTS_HELP = ("Import the plugins the checkpoint's model.imports names (runs their code: only "
                      "for checkpoints you trust). Without it a checkpoint imports nothing.")


def _pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * float(v):.1f}"


def print_metrics_table(rows: dict, title: str = "Results") -> None:
    """A rich table of clip / video accuracies, one row per model (values in percent)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    cols = [("clip_hit@1", "clip hit@1"), ("clip_hit@5", "clip hit@5"), ("video_hit@1", "video hit@1"),
            ("video_hit@5", "video hit@5"), ("mean_class_accuracy", "mean class acc.")]
    cols = [(k, t) for k, t in cols if any(k in r for r in rows.values())]
    table.add_column("model", style="bold")
    for _, t in cols:
        table.add_column(t + " %", justify="right")
    for name, r in rows.items():
        table.add_row(name, *(_pct(r.get(k)) for k, _ in cols))
    console = Console()
    if not console.is_terminal:  # logs and pipes: wide enough that headers never wrap
        console = Console(width=max(console.width, 120))
    console.print(table)


def _split_list(values: list[str] | None) -> list[str]:
    out = []
    for v in values or []:
        out += [s for s in v.split(",") if s]
    return out


def train(config: Path = typer.Argument(..., help="YAML recipe (configs/...)."),
          overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. train.lr=0.01"),
          splits: str = typer.Option(None, "--splits",
                                     help="Split protocol, e.g. 1,2,3: train and test once per split "
                                          "(data.*.split), report each and the mean."),
          resume: bool = typer.Option(False, "--resume",
                                      help="Continue exactly from <output_dir>/checkpoints/last (an error "
                                           "when it is missing or damaged)."),
          resume_or_start: bool = typer.Option(False, "--resume-or-start",
                                               help="Continue the run if <output_dir> holds checkpoints, "
                                                    "else start it."),
          ) -> None:
    """Train a model from a YAML recipe (also under `torchrun -m deepvideo train ...`).

    The recipe's model.imports (modules or .py files registering models or tasks) are imported:
    train only recipes you trust.
    """
    overrides = [*(overrides or []), *(["resume=true"] if resume else []),
                 *(["resume_or_start=true"] if resume_or_start else [])]
    from deepvideo.engine.checkpoint import CheckpointError
    from deepvideo.engine.config import ConfigError
    from deepvideo.engine.loop import NonFiniteLossError, main_train

    if splits is not None:
        from deepvideo.engine.splits import three_split_protocol

        try:
            numbers = [int(x) for x in splits.split(",") if x]
        except ValueError:
            fail(f"--splits must be comma-separated split numbers, got {splits!r}", 2)
        try:
            out = three_split_protocol(config, list(overrides or []), numbers)
        except (ConfigError, FileNotFoundError) as err:
            fail(str(err), 2)
        except (CheckpointError, NonFiniteLossError) as err:
            fail(str(err), 1)
        print_metrics_table({**out["per_split"], "mean": out["mean"]}, title="Split protocol")
        typer.echo(f"report: {out['out_dir'] / 'report.md'}")
        return
    try:
        result = main_train(str(config), list(overrides or []))
    except (ConfigError, FileNotFoundError) as err:
        fail(str(err), 2)
    except (CheckpointError, NonFiniteLossError) as err:
        fail(str(err), 1)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 reports
        best = f", best checkpoint {result.best_checkpoint}" if result.best_checkpoint else ""
        typer.echo(f"run written to {result.run_dir} (last checkpoint {result.last_checkpoint}{best})")


def test(run: Path = typer.Argument(..., help="Run folder or checkpoint folder."),
         views: int = typer.Option(None, "--views", help="Temporal clips per video (default: the recipe's)."),
         crops: int = typer.Option(None, "--crops", help="Spatial crops per clip: 1, 3 or 10."),
         flip: bool = typer.Option(None, "--flip/--no-flip", help="Add horizontally flipped views."),
         full_frame: bool = typer.Option(None, "--full-frame/--no-full-frame",
                                         help="Fully convolutional testing on whole frames."),
         aggregate: str = typer.Option(None, "--aggregate", help="mean | softmax | max of view scores."),
         split: str = typer.Option(None, "--split", help="Dataset split to test (e.g. 1, 2, 3)."),
         subset: str = typer.Option("test", "--subset",
                                    help="test, val or train (train scores feed `fuse --svm`)."),
         out: Path = typer.Option(None, "--out", help="Output folder (default <run>/test[-<subset>])."),
         batch_size: int = typer.Option(None, "--batch-size", help="Videos per batch."),
         device: str = typer.Option(None, "--device", help="cpu, cuda, cuda:1 (default: the recipe's)."),
         workers: int = typer.Option(None, "--workers", help="Data loading workers."),
         allow_imports: bool = typer.Option(False, "--allow-imports", help=ALLOW_IMPORTS_HELP),
         ) -> None:
    """Evaluate a trained model: clip and video hit@1/5, mean class accuracy, confusion matrix;
    detection runs (tasks detect_track, action_detection): mAP per class."""
    from deepvideo.engine.evaluate import evaluate_checkpoint

    if aggregate is not None and aggregate not in AGGREGATES:
        fail(f"--aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}", 2)
    if crops is not None and crops not in (1, 3, 10):
        fail(f"--crops must be 1, 3 or 10, got {crops}", 2)
    if views is not None and views < 1:
        fail(f"--views must be >= 1, got {views}", 2)
    if subset not in ("test", "val", "train"):
        fail(f"--subset must be test, val or train, got {subset!r}", 2)
    if _run_task(run) != "recognition":
        _test_task_run(run, subset, out, batch_size, device)
        return
    try:
        result = evaluate_checkpoint(run, num_clips=views, test_crops=crops, flip=flip,
                                     fully_convolutional=full_frame, aggregation=aggregate, split=split,
                                     subset=subset, out_dir=out, batch_size=batch_size, device=device,
                                     num_workers=workers, allow_imports=allow_imports)
    except (OSError, ValueError, KeyError) as err:
        fail(str(err).strip("'\""))
    print_metrics_table({result.name: result.metrics}, title=f"Test: {result.name}")
    total, done = result.metrics.get("videos_total"), result.metrics.get("videos_evaluated")
    typer.echo(f"evaluated {done} of {total} videos")
    for bad in result.unreadable:
        typer.secho(f"unreadable (not scored): {bad['path']}: {bad['error']}", err=True,
                    fg=typer.colors.YELLOW)
    typer.echo(f"scores, metrics and report written to {result.out_dir}")


def _run_task(run: Path) -> str:
    """The task a run (or checkpoint folder) was trained for."""
    from deepvideo.engine.checkpoint import read_meta, resolve_checkpoint

    try:
        config = read_meta(resolve_checkpoint(run)).get("config") or {}
    except (OSError, ValueError, KeyError) as err:
        fail(str(err).strip("'\""))
    return str(config.get("task") or "recognition")


def _test_task_run(run: Path, subset: str, out: Path | None, batch_size: int | None,
                   device: str | None) -> None:
    """``deepvideo test`` of a run whose task has its own test protocol (:meth:`Task.test_run`)."""
    from deepvideo.engine.task import task_class

    try:
        metrics = task_class(_run_task(run)).test_run(run, subset=subset, out_dir=out,
                                                      batch_size=batch_size, device=device)
    except (OSError, ValueError, KeyError) as err:
        fail(str(err).strip("'\""))
    out_dir = metrics.pop("out_dir")
    width = max(len(k) for k in metrics)
    for name, value in metrics.items():
        shown = "n/a (no ground truth)" if value is None or value != value else f"{100 * value:6.2f} %"
        typer.echo(f"{name:<{width}s}  {shown}")
    typer.echo(f"metrics written to {out_dir}")


def predict(checkpoint: Path = typer.Argument(None,
                                       help="Run folder or checkpoint folder (omit with --onnx)."),
            videos: list[Path] = typer.Argument(None, help="Video files or frame folders."),
            top_k: int = typer.Option(5, "--top-k", "-k", help="Classes to show per video."),
            views: int = typer.Option(None, "--views", help="Temporal clips per video."),
            crops: int = typer.Option(None, "--crops", help="Spatial crops per clip: 1, 3 or 10."),
            as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
            device: str = typer.Option(None, "--device", help="cpu, cuda, ... (default: the recipe's)."),
            allow_imports: bool = typer.Option(False, "--allow-imports", help=ALLOW_IMPORTS_HELP),
            window: str = typer.Option(None, "--window", help="Predict windows of this length (2s, "
                                       "500ms, 48f) along the video: a timeline."),
            stride: str = typer.Option("1s", "--stride", help="Step between windows."),
            smooth: int = typer.Option(3, "--smooth", help="Timeline: mean over N windows."),
            out: list[Path] = typer.Option(None, "--out", "-o", help="Timeline file(s): .json, .csv, .png."),
            onnx: Path = typer.Option(None, "--onnx", help="Exported model file (deepvideo export)."),
            stream: str = typer.Option(None, "--stream", help="Live source (rtsp://, http://, file, "
                                       "/dev/video0): rolling-window predictions as they come."),
            count: int = typer.Option(None, "--count", help="With --stream: stop after N windows."),
            post: str = typer.Option(None, "--post", help="With --stream: POST each prediction (JSON) here."),
            ) -> None:
    """Top-k classes with scores for each video; a bad video is reported and the rest still predicted.

    With --window: per-window top-k and a smoothed timeline (decoded once, memory bounded).
    """
    if top_k < 1:
        fail(f"--top-k must be >= 1, got {top_k}", 2)
    if onnx is not None or window is not None or stream is not None or out:
        if views is not None or crops is not None:
            fail("--views and --crops apply to whole-video prediction from a run folder; windows, streams "
                  "and --onnx score one centre clip", 2)
        from deepvideo.cli.serve import predict_served

        predict_served(checkpoint, videos or [], onnx=onnx, window=window, stride=stride, smooth=smooth,
                       outs=out or [], top_k=top_k, as_json=as_json, device=device,
                       allow_imports=allow_imports, stream=stream, count=count, post=post)
        return
    if checkpoint is None or not videos:
        fail("give a run folder and at least one video (or --onnx MODEL VIDEO...)", 2)
    from deepvideo.engine.evaluate import NonFiniteScoresError, load_for_inference, predict_videos

    try:
        predictor = load_for_inference(checkpoint, num_clips=views, test_crops=crops, device=device,
                                       allow_imports=allow_imports)
    except (OSError, ValueError, KeyError) as err:
        fail(str(err).strip("'\""))
    try:
        results = predict_videos(predictor, [str(v) for v in videos], top_k)
    except NonFiniteScoresError as err:  # nothing is printed: NaN is no prediction (nor valid JSON)
        fail(str(err))
    failed = [r for r in results if "error" in r]
    if as_json:
        typer.echo(json.dumps({"checkpoint": str(checkpoint), "predictions": results}, indent=2,
                              allow_nan=False))
    else:
        for r in results:
            if "error" in r:
                continue
            typer.secho(r["video"], bold=True)
            for rank, p in enumerate(r["top"], 1):
                typer.echo(f"  {rank}. {p['class']:<30} {p['probability']:.3f}")
    for r in failed:
        typer.secho(f"error: {r['video']}: {r['error']}", err=True, fg=typer.colors.RED)
    if failed:
        raise typer.Exit(1)


def fuse(scores: list[Path] = typer.Argument(..., help="scores.npz files (or test folders), one per model."),
         weights: str = typer.Option(None, "--weights", "-w", help="Comma-separated weights, e.g. 1,3."),
         svm: list[str] = typer.Option(None, "--svm",
                                       help="Train-split scores of the same models, in the same order "
                                            "(repeat --svm or separate with commas): fuse by a linear SVM."),
         space: str = typer.Option("softmax", "--space", help="softmax (probabilities) or logits."),
         c: float = typer.Option(1.0, "--C", help="SVM regularisation constant."),
         out: Path = typer.Option(None, "--out", help="Folder for fused scores, metrics, report."),
         l2: bool = typer.Option(False, "--l2", help="Average L2-normalised scores (the '+ IDT' rows); "
                                 "SVM scores of `deepvideo features svm` are used as they are."),
         val: list[str] = typer.Option(None, "--val", help="Validation scores of the same models, in the "
                                       "same order: choose the --l2 weights on them."),
         ) -> None:
    """Late fusion of several models' saved test scores: weighted average or linear SVM.

    SVM fusion (Simonyan & Zisserman 2014) trains a linear SVM on the stacked, L2-normalised
    scores of the same models on their training videos (`deepvideo test RUN --subset train`)
    and applies it to the test scores. `--l2` averages the L2-normalised scores (ConvNets in
    --space, hand-crafted SVM scores raw), with the weights chosen on `--val` scores if given.
    """
    from deepvideo.engine.evaluate import score_metrics, write_evaluation
    from deepvideo.engine.fusion import ScoreSet, align, fuse_sets, load_scores
    from deepvideo.engine.metrics import softmax
    from deepvideo.features.late_fusion import choose_weights, l2_average

    def l2_inputs(score_sets):
        return [s.scores if s.meta.get("scores") == "svm" or space != "softmax" else softmax(s.scores)
                for s in align(score_sets)]

    try:
        w = [float(x) for x in weights.split(",")] if weights else None
    except ValueError:
        fail(f"--weights must be comma-separated numbers, got {weights!r}", 2)
    svm_paths = _split_list(svm)
    if svm_paths and len(svm_paths) != len(scores):
        fail(f"--svm needs one train scores file per model: {len(scores)} test, {len(svm_paths)} train", 2)
    if svm_paths and w is not None:
        fail("--weights and --svm are alternatives; give one of them", 2)
    val_paths = _split_list(val)
    if val_paths and (not l2 or w is not None or len(val_paths) != len(scores)):
        fail("--val needs --l2, no --weights, and one validation scores file per model", 2)
    try:
        sets = [load_scores(p) for p in scores]
        trains = [load_scores(p) for p in svm_paths] or None
        if l2 and not trains:
            vals = [load_scores(p) for p in val_paths]
            if vals:
                w, val_acc = choose_weights(l2_inputs(vals), align(vals)[0].labels)
                typer.echo(f"weights chosen on validation: {w} (accuracy {100 * val_acc:.1f}%)")
            ref, arr = align(sets)[0], l2_average(l2_inputs(sets), w)
            fused = ScoreSet(ref.video_ids, ref.labels, arr[:, None], arr, ref.class_names, "mean",
                             {"fusion": "l2", "weights": w or [1.0] * len(sets), "space": space})
        else:
            fused = fuse_sets(sets, w, space, trains, C=c)
        rows = {Path(s.source).parent.name or s.source: score_metrics(s) for s in sets}
        shown = ",".join(f"{x:g}" for x in (w or [1] * len(sets)))
        label = "fused (svm)" if trains else f"fused ({'l2 ' if l2 else ''}{shown})"
        rows[label] = score_metrics(fused)
        if out is not None:
            write_evaluation(out, fused, title="Late fusion", name=label,
                             notes=[f"Inputs: {', '.join(f'`{s.source}`' for s in sets)}"])
    except (OSError, ValueError) as err:
        fail(str(err))
    print_metrics_table(rows, title="Late fusion")
    if out is not None:
        typer.echo(f"fused scores and report written to {out}")


def demo(out: Path = typer.Option(Path("runs/demo"), "--out", help="Output folder."),
         videos_per_class: int = typer.Option(None, "--videos-per-class", help="Videos per class."),
         size: int = typer.Option(None, "--size", help="Frame width and height."),
         frames: int = typer.Option(None, "--frames", help="Frames per video."),
         epochs: int = typer.Option(None, "--epochs", help="Training epochs per stream."),
         recipe: Path = typer.Option(None, "--recipe", help="Demo recipe YAML (default: configs/demo/)."),
         ) -> None:
    """Synthetic motion data -> flow -> appearance, motion and fused two-stream nets -> report."""
    from deepvideo.engine.demo import DemoError, run_demo

    try:
        result = run_demo(out, recipe=recipe, videos_per_class=videos_per_class, size=size, frames=frames,
                          epochs=epochs)
    except DemoError as err:
        fail(str(err))
    print_metrics_table(result.rows, title=f"Demo: motion-shapes, split 1 ({result.wall_time_s:.0f} s)")
    typer.echo(f"report: {result.report}")


def register_top_level(root: typer.Typer) -> None:
    """Add ``train``, ``test``, ``predict``, ``fuse`` and ``demo`` to the root app."""
    root.command("train", context_settings={"allow_extra_args": False})(train)
    root.command("test")(test)
    root.command("predict")(predict)
    root.command("fuse")(fuse)
    root.command("demo")(demo)
