"""`deepvideo data ...` commands and `deepvideo info`.

Thin wrappers: the work is in :mod:`deepvideo.data.check`, :mod:`deepvideo.data.resize`
and :mod:`deepvideo.io`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from deepvideo.cli import synth
from deepvideo.io.atomic import atomic_write_json

app = typer.Typer(no_args_is_help=True)
synth.register(app)


def _console():
    from rich.console import Console

    return Console()


def _shown(path: str, root: Path) -> str:
    """``path`` relative to ``root`` when inside it (short table cells), else as given."""
    try:
        return str(Path(path).absolute().relative_to(root.absolute()))
    except ValueError:
        return str(path)


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def info(
    video: Path = typer.Argument(..., help="Video file or frame folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the metadata as JSON."),
    template: str = typer.Option("img_{:05d}.jpg", "--template", help="Frame file names (frame folders)."),
    start_index: int = typer.Option(1, "--start-index", help="First frame number (frame folders)."),
) -> None:
    """Print a video's metadata (frame count, fps, duration, size, codec) without decoding it."""
    from rich.table import Table

    from deepvideo.io import VideoError, probe

    try:
        meta = probe(video, template=template, start_index=start_index)
    except VideoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(meta.to_dict(), indent=2))
        return
    _console().print(f"[bold]{video}[/bold]", soft_wrap=True)
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in meta.to_dict().items():
        if key != "path":
            table.add_row(key, _fmt(value))
    _console().print(table)


def _items(dataset: Path, fmt: str | None, annotations: Path | None, split: str | None, args: list[str]):
    """The videos of DATASET: a recursive folder scan, or ``load_dataset(fmt, ...)``."""
    from deepvideo.data.check import find_videos, items_from_index

    if fmt is None:
        if not dataset.is_dir():
            raise typer.BadParameter(f"{dataset}: not a folder", param_hint="DATASET")
        return find_videos(dataset)
    try:
        from deepvideo.data.formats import load_dataset
    except ImportError:
        raise typer.BadParameter("annotation formats (deepvideo.data.formats) are not available",
                                 param_hint="--format") from None
    kwargs: dict = {"root": str(dataset)}
    if annotations is not None:
        kwargs["annotations"] = str(annotations)
    if split is not None:
        kwargs["split"] = split
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {arg!r}", param_hint="--arg")
        kwargs[key.replace("-", "_")] = value
    try:
        index = load_dataset(fmt, **kwargs)
    except TypeError as exc:
        raise typer.BadParameter(f"format {fmt!r} does not take these options ({exc})",
                                 param_hint="--format/--arg") from None
    except (ValueError, OSError) as exc:  # unknown format, malformed line (file:line), missing file
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return items_from_index(index)


def check(
    dataset: Path = typer.Argument(..., help="Dataset folder (scanned recursively) or root of --format."),
    fmt: str | None = typer.Option(None, "--format", help="Annotation format (ucf101, kinetics, ...)."),
    annotations: Path | None = typer.Option(None, "--annotations", help="Annotation file or folder."),
    split: str | None = typer.Option(None, "--split", help="Split to check (format dependent)."),
    args: list[str] = typer.Option([], "--arg", help="Extra KEY=VALUE option for the format loader."),
    full: bool = typer.Option(False, "--full", help="Decode every frame (default: first and last) and report "
                              "damaged videos: decoder errors FFmpeg concealed, with their frames."),
    workers: int = typer.Option(1, "--workers", "-j", help="Parallel worker processes."),
    strict: bool = typer.Option(False, "--strict", help="Exit with status 1 if any video is bad."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the full report to this JSON file."),
) -> None:
    """Open and decode-check every video of a dataset; list the bad ones with the reason.

    Bad: cannot be opened or decoded, truncated, or damaged (decoder errors FFmpeg concealed).
    Training skips the first kinds and keeps a damaged video, warning once.
    """
    from rich.table import Table

    from deepvideo.data.check import check_videos, summarize
    from deepvideo.progress import progress_task

    items = _items(dataset, fmt, annotations, split, args)
    console = _console()
    with progress_task("check", total=len(items), unit="videos") as advance:
        def on_result(r) -> None:
            advance(1, status="" if r.ok else "bad: " + Path(r.path).name)

        results = check_videos(items, full=full, workers=workers, on_result=on_result)
    summary = summarize(results)
    bad = [r for r in results if not r.ok]
    if bad:
        table = Table(title=f"{len(bad)} bad video(s)")
        table.add_column("video", overflow="fold")
        table.add_column("reason", overflow="fold")
        for r in bad:
            table.add_row(_shown(r.path, dataset), r.reason or "")
        console.print(table)
    console.print(f"{summary['ok']}/{summary['videos']} videos ok, {summary['bad']} bad; "
                  f"{summary['frames']} frames, {summary['hours']} h", soft_wrap=True)
    if json_path is not None:
        atomic_write_json(json_path, {"dataset": str(dataset), "summary": summary,
                                "videos": [r.to_dict() for r in results]})
    if strict and bad:
        raise typer.Exit(1)


def resize(
    src: Path = typer.Argument(..., help="Dataset folder of videos (scanned recursively)."),
    dst: Path = typer.Argument(..., help="Output folder; mirrors SRC's layout, one .mp4 per video."),
    short_side: int = typer.Option(256, "--short-side", min=2, help="Shorter side of the output frames."),
    gop: int = typer.Option(16, "--gop", min=1, help="Keyframe interval of the output (random access cost)."),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="H.264 quality (lower = better, larger)."),
    preset: str = typer.Option("veryfast", "--preset", help="x264 speed preset."),
    workers: int = typer.Option(min(4, os.cpu_count() or 1), "--workers", "-j", help="Parallel processes."),
    strict: bool = typer.Option(False, "--strict", help="Exit with status 1 if any video failed "
                                "(without it: only when every video failed)."),
) -> None:
    """Re-encode every video to a short side and keyframe interval; resumable, in parallel.

    Exit status 1 when every video failed, or with --strict when any did.
    Failures (dangling symbolic links too) are listed with the reason.
    """
    from rich.table import Table

    from deepvideo.data.resize import plan_resize, run_resize
    from deepvideo.progress import progress_task

    if not src.is_dir():
        raise typer.BadParameter(f"{src}: not a folder", param_hint="SRC")
    if dst.exists() and not dst.is_dir():
        typer.echo(f"error: DST {dst}: exists and is not a folder; give an output folder", err=True)
        raise typer.Exit(2)
    jobs, refused = plan_resize(src, dst)
    console = _console()
    with progress_task("resize", total=len(jobs), unit="videos") as advance:
        results = run_resize(jobs, short_side=short_side, gop=gop, crf=crf, preset=preset, workers=workers,
                             on_result=lambda r: advance(1, status=f"{r.status}: {Path(r.src).name}"))
    results = refused + results
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    failed = [r for r in results if r.status == "failed"]
    if failed:
        table = Table(title=f"{len(failed)} video(s) failed")
        table.add_column("video", overflow="fold")
        table.add_column("reason", overflow="fold")
        for r in failed:
            table.add_row(_shown(r.src, src), r.reason or "")
        console.print(table)
    console.print(f"{counts['done']} resized, {counts['skipped']} skipped (output exists), "
                  f"{counts['failed']} failed -> {dst}", soft_wrap=True)
    if not results:
        typer.echo(f"error: {src}: no videos found", err=True)
        raise typer.Exit(1)
    if failed and (strict or len(failed) == len(results)):
        typer.echo(f"error: {len(failed)} of {len(results)} videos failed"
                   + ("" if strict else " (every one)"), err=True)
        raise typer.Exit(1)


app.command("check")(check)
app.command("resize")(resize)


def register_top_level(root: typer.Typer) -> None:
    """Add this group's top-level commands to the root app: ``deepvideo info``."""
    root.command("info")(info)
