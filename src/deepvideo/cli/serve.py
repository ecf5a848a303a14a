"""``deepvideo export`` and ``deepvideo serve``, and the windowed / stream / ONNX paths of
``deepvideo predict`` (the logic lives in :mod:`deepvideo.serve`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from deepvideo.cli.params import fail


def open_scorer(checkpoint: Path | None, onnx: Path | None, device: str | None, allow_imports: bool):
    """The scorer of a run folder or of an exported ONNX file (errors end the command)."""
    from deepvideo.serve.scorer import load_scorer

    try:
        if onnx is not None:
            from deepvideo.serve.onnx_model import OnnxScorer

            return OnnxScorer(onnx)
        return load_scorer(checkpoint, device=device, allow_imports=allow_imports)
    except (OSError, ValueError, KeyError) as err:
        fail(str(err).strip("'\""))


def _print_top(name: str, top: list[dict], prefix: str = "") -> None:
    typer.secho(f"{prefix}{name}", bold=True)
    for rank, p in enumerate(top, 1):
        typer.echo(f"  {rank}. {p['class']:<30} {p['probability']:.3f}")


def predict_timelines(scorer, videos: list[Path], window: str, stride: str, smooth: int, top_k: int,
                      outs: list[Path], as_json: bool) -> None:
    """Per-window top-k of each video; ``outs`` (.json/.csv/.png) written per video."""
    from deepvideo.io.errors import VideoError
    from deepvideo.serve.longvideo import predict_long_video

    if outs and len(videos) > 1:
        fail("--out names one file per format: give one video at a time", 2)
    docs, failed = [], 0
    for video in videos:
        try:
            timeline = predict_long_video(scorer, video, window, stride, smooth=smooth)
        except (VideoError, OSError) as err:
            typer.secho(f"error: {video}: {err}", err=True, fg=typer.colors.RED)
            failed += 1
            continue
        except ValueError as err:
            fail(str(err), 2)
        doc = timeline.to_dict(top_k)
        docs.append(doc)
        for out in outs:
            try:
                timeline.write(out, top_k)
            except ValueError as err:
                fail(str(err), 2)
        if not as_json:
            typer.secho(f"{video}: {len(doc['windows'])} windows", bold=True)
            for w in doc["windows"]:
                tops = ", ".join(f"{t['class']} {t['probability']:.2f}" for t in w["top"])
                typer.echo(f"  {w['start']:8.2f}-{w['end']:8.2f} s  {tops}")
            for s in doc["segments"]:
                typer.echo(f"  segment {s['start']:.2f}-{s['end']:.2f} s: {s['class']}")
    if as_json:
        typer.echo(json.dumps({"model": scorer.name, "timelines": docs}, indent=2, allow_nan=False))
    for out in outs:
        typer.echo(f"written: {out}", err=True)
    if failed:
        raise typer.Exit(1)


def predict_whole(scorer, videos: list[Path], top_k: int, as_json: bool) -> None:
    """Top-k of each whole video with a scorer (the ONNX path of ``deepvideo predict``)."""
    from deepvideo.io.errors import VideoError
    from deepvideo.serve.longvideo import predict_whole_video
    from deepvideo.serve.timeline import top_k as top_classes

    results = []
    for video in videos:
        try:
            probs = predict_whole_video(scorer, video)
            results.append({"video": str(video), "top": top_classes(probs, scorer.class_names, top_k)})
        except (VideoError, OSError, ValueError) as err:
            results.append({"video": str(video), "error": str(err)})
    if as_json:
        typer.echo(json.dumps({"model": scorer.name, "predictions": results}, indent=2, allow_nan=False))
    for r in results:
        if "error" in r:
            typer.secho(f"error: {r['video']}: {r['error']}", err=True, fg=typer.colors.RED)
        elif not as_json:
            _print_top(r["video"], r["top"])
    if any("error" in r for r in results):
        raise typer.Exit(1)


def predict_served(checkpoint: Path | None, videos: list[Path], *, onnx: Path | None, window: str | None,
                   stride: str, smooth: int, outs: list[Path], top_k: int, as_json: bool, device: str | None,
                   allow_imports: bool, stream: str | None, count: int | None, post: str | None) -> None:
    """``deepvideo predict`` with ``--window``, ``--onnx`` or ``--stream``."""
    if onnx is not None and checkpoint is not None:
        videos = [checkpoint, *videos]  # with --onnx every positional argument is a video
        checkpoint = None
    if onnx is None and checkpoint is None:
        fail("give a run folder (or --onnx MODEL)", 2)
    if stream is not None and videos:
        fail("--stream takes its source instead of video files", 2)
    if stream is None and not videos:
        fail("give at least one video (or --stream SOURCE)", 2)
    if smooth < 1:
        fail(f"--smooth must be >= 1, got {smooth}", 2)
    scorer = open_scorer(checkpoint, onnx, device, allow_imports)
    if stream is not None:
        from deepvideo.cli.stream import predict_stream

        predict_stream(scorer, stream, window or "2s", stride, top_k, count, post)
    elif window is not None:
        predict_timelines(scorer, videos, window, stride, smooth, top_k, outs, as_json)
    else:
        if outs:
            fail("--out writes a timeline: give --window too", 2)
        predict_whole(scorer, videos, top_k, as_json)


def export(checkpoint: Path = typer.Argument(..., help="Run folder or checkpoint folder."),
           fmt: str = typer.Option("onnx", "--format", "-f", help="onnx or torchscript."),
           out: Path = typer.Option(None, "--out", "-o", help="Output file (default: RUN/model.onnx, .pt)."),
           exporter: str = typer.Option("auto", "--exporter", help="ONNX: auto, torchscript or dynamo."),
           allow_imports: bool = typer.Option(False, "--allow-imports", help="Import the checkpoint's "
                                              "model.imports (only for checkpoints you trust)."),
           ) -> None:
    """Export a trained model to ONNX or TorchScript, with its InputSpec and classes as metadata;
    the file's scores are checked against PyTorch's on random input."""
    from deepvideo.serve.export import FORMATS, ExportError, check_export, export_model
    from deepvideo.serve.scorer import default_short_side

    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}", 2)
    from deepvideo.engine.evaluate import load_for_inference

    try:
        predictor = load_for_inference(checkpoint, device="cpu", allow_imports=allow_imports)
    except (OSError, ValueError, KeyError) as err:
        fail(str(err).strip("'\""))
    cfg, model = predictor.cfg, predictor.model
    short = default_short_side(model.input_spec, cfg.eval.short_side or cfg.data.short_side)
    out = out or Path(checkpoint) / ("model.onnx" if fmt == "onnx" else "model.pt")
    try:
        export_model(model, out, fmt, class_names=predictor.class_names, short_side=short,
                     model_name=str(cfg.model.name), exporter=exporter)
        check = check_export(model, out)
    except (ExportError, ValueError) as err:
        fail(f"{checkpoint}: {err}")
    typer.echo(f"exported {cfg.model.name} to {out} ({fmt}); "
               f"max |exported - PyTorch| = {check.max_abs_diff:.2e}")


def serve(runs: list[Path] = typer.Argument(..., help="Run folders (or exported .onnx files) to serve."),
          host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
          port: int = typer.Option(8000, "--port", help="Port."),
          token: str = typer.Option(None, "--token", envvar="DEEPVIDEO_API_TOKEN",
                                    help="Require 'Authorization: Bearer TOKEN' (env DEEPVIDEO_API_TOKEN)."),
          allowed_root: Path = typer.Option(None, "--allowed-root", help="Allow server-side paths under it."),
          max_upload_mb: float = typer.Option(200.0, "--max-upload-mb", help="Largest upload."),
          max_duration: float = typer.Option(600.0, "--max-duration", help="Longest video, seconds."),
          max_side: int = typer.Option(4096, "--max-side", help="Largest width or height, pixels."),
          workers: int = typer.Option(1, "--workers", help="Predictions running at once."),
          queue: int = typer.Option(4, "--queue", help="Predictions waiting (more: 503)."),
          work_dir: Path = typer.Option(None, "--work-dir", help="Where private upload folders go."),
          window: str = typer.Option("2s", "--window", help="Default window."),
          stride: str = typer.Option("1s", "--stride", help="Default stride."),
          device: str = typer.Option(None, "--device", help="cpu, cuda, ..."),
          ) -> None:
    """HTTP server with a web page: POST /predict (upload or server-side path) -> top-k and timeline."""
    import uvicorn

    from deepvideo.serve.app import ServeSettings
    from deepvideo.serve.routes import create_app

    scorers = {}
    for run in runs:
        scorer = open_scorer(None if run.suffix == ".onnx" else run, run if run.suffix == ".onnx" else None,
                             device, False)
        name = run.stem if run.suffix == ".onnx" else run.name
        scorers[name if name not in scorers else f"{name}-{len(scorers)}"] = scorer
    settings = ServeSettings(max_upload_mb=max_upload_mb, max_duration_s=max_duration, max_side=max_side,
                             allowed_root=allowed_root, token=token, workers=workers, queue=queue,
                             work_dir=work_dir, window=window, stride=stride)
    try:
        app = create_app(scorers, settings)
    except ValueError as err:
        fail(str(err), 2)
    typer.echo(f"serving {', '.join(scorers)} on http://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning", h11_max_incomplete_event_size=64 * 1024)


def register_top_level(root: typer.Typer) -> None:
    """Add ``export`` and ``serve`` to the root app."""
    root.command("export")(export)
    root.command("serve")(serve)
