"""The ``deepvideo`` command: one sub-module per command group."""

from __future__ import annotations

import typer

from deepvideo import __version__

app = typer.Typer(help="deepvideo: deep learning on video.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False, add_completion=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """deepvideo: deep learning on video."""


def _register() -> None:
    from deepvideo.cli import actions, data, detect, engine, features, flow, models, serve, track, visualize

    app.add_typer(data.app, name="data", help="Datasets: synthesize, check, resize.")
    app.add_typer(flow.app, name="flow", help="Optical flow: extract, show.")
    app.add_typer(detect.app, name="detect", help="Video object detection (R-FCN, D&T): detect and link "
                  "tubes in a video, score a model on a VID split, render the synthetic VID set.")
    app.add_typer(features.app, name="features", help="Hand-crafted baselines: improved dense trajectories, "
                  "TDD, Fisher vectors, linear SVM.")
    app.add_typer(track.app, name="track", help="Single-object tracking: run a tracker on a video, "
                  "benchmark trackers, convert result files.")
    app.add_typer(visualize.app, name="visualize", help="What a trained model learned: activation "
                  "maximisation, Grad-CAM, occlusion, filters, top clips.")
    app.add_typer(actions.app, name="detect-actions", help="Action detection: label each person's actions "
                  "over time, write the synthetic AVA-format set, test a detector (frame-mAP).")
    data.register_top_level(app)
    models.register_top_level(app)
    engine.register_top_level(app)
    serve.register_top_level(app)


_register()
