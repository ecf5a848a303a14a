"""`deepvideo data synth NAME`: deterministic synthetic benchmark datasets."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from deepvideo.cli.params import parse_size


def synth(
    name: str = typer.Argument(..., help="Set: motion-shapes, kind-direction or dynamic-scenes."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (UCF101 layout)."),
    videos_per_class: int | None = typer.Option(None, "--videos-per-class", "-n",
                                                help="Videos per class; default 300 videos in all."),
    size: str = typer.Option("112x112", "--size", help="Frame size WIDTHxHEIGHT."),
    frames: int = typer.Option(32, "--frames", help="Frames per video."),
    fps: float = typer.Option(25.0, "--fps", help="Frame rate written into the files."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives identical videos."),
    workers: int = typer.Option(min(4, os.cpu_count() or 1), "--workers", "-j",
                                help="Parallel worker processes."),
    moving_camera: bool = typer.Option(False, "--moving-camera",
                                       help="Pan, zoom and jitter the whole frame (object sets)."),
    mixed_camera: bool = typer.Option(False, "--mixed-camera",
                                      help="Moving camera for every other video of a class (object sets)."),
    clips_per_group: int = typer.Option(5, "--clips-per-group",
                                        help="Clips per group g01..gNN (splits hold out groups)."),
    audio: bool = typer.Option(False, "--audio", help="Give every video its class's tone as an audio "
                               "track (for audio and audiovisual models)."),
) -> None:
    """Render a synthetic set as H.264 videos with UCF101-style annotations and 3 splits."""
    from rich.console import Console
    from rich.table import Table

    from deepvideo.data.synth import SETS, RenderParams, generate_dataset
    from deepvideo.data.synth.writer import SynthError

    if name not in SETS:
        raise typer.BadParameter(f"unknown set {name!r}; choose one of: {', '.join(SETS)}", param_hint="NAME")
    width, height = parse_size(size)
    try:
        params = RenderParams(width=width, height=height, frames=frames, fps=fps, moving_camera=moving_camera,
                              mixed_camera=mixed_camera)
        summary = generate_dataset(name, out, videos_per_class=videos_per_class, params=params, seed=seed,
                                   workers=workers, clips_per_group=clips_per_group, audio=audio)
    except (SynthError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    console = Console()
    console.print(f"[bold]{summary.name}[/bold]: {len(summary.classes)} classes x "
                  f"{summary.manifest['counts']['per_class']} videos = {summary.videos} videos "
                  f"({summary.written} written, {summary.skipped} already there) in {summary.seconds:.1f} s")
    console.print("classes: " + ", ".join(summary.classes))
    table = Table("split", "train", "test", "test groups")
    for split, counts in summary.splits.items():
        groups = counts["test_groups"]
        table.add_row(f"{split:02d}", str(counts["train"]), str(counts["test"]),
                      f"g{groups[0]:02d}-g{groups[-1]:02d}")
    console.print(table)
    if summary.camera:
        console.print(f"camera: {summary.camera['static']} static, {summary.camera['moving']} moving "
                      f"(annotations/camera.txt)")
    console.print(f"written to {summary.out.resolve()} (videos/, annotations/, synth.json)")


def register(data_app: typer.Typer) -> None:
    """Add the ``synth`` command to the ``deepvideo data`` group."""
    data_app.command("synth")(synth)
