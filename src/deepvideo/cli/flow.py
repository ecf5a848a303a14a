"""`deepvideo flow ...` commands: ``extract`` (datasets to stored flow) and ``show`` (look at flow)."""

from __future__ import annotations

from pathlib import Path

import typer

from deepvideo.cli.params import parse_params

app = typer.Typer(no_args_is_help=True)


def register_top_level(root: typer.Typer) -> None:
    """Add this group's top-level commands to the root app (none: all live under ``flow``)."""


@app.command()
def extract(
    inputs: list[Path] = typer.Argument(..., help="Dataset folders (searched recursively) and/or videos."),
    out: Path = typer.Option(..., "--out", help="Output root; folders mirror the videos' relative paths."),
    method: str = typer.Option(None, "--method", help="dis | farneback | opencv-tvl1 | tvl1 "
                               "(default: chosen by benchmarks/bench_flow.py, see deepvideo.flow.extract)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (tvl1 only; OpenCV methods run on cpu)."),
    workers: int = typer.Option(1, "--workers", help="Parallel worker processes."),
    rgb: bool = typer.Option(False, "--rgb", help="Also write RGB frames img_00001.jpg ..."),
    short_side: int = typer.Option(None, "--short-side", help="Resize frames so the short side is this."),
    bound: float = typer.Option(20.0, "--bound", help="Clip flow to ±bound px before quantizing to 0..255."),
    fmt: str = typer.Option("jpg", "--format", help="jpg (x_/y_00001.jpg + flow.json) or npz (flow.npz)."),
    shard: str = typer.Option(None, "--shard", help="i/n: take every n-th video from i (default: torchrun "
                              "RANK/WORLD_SIZE, else all)."),
    param: list[str] = typer.Option([], "--param", help="Method parameter key=value (repeatable), "
                                    "e.g. --param preset=default."),
    strict: bool = typer.Option(False, "--strict", help="Exit with status 1 if any video failed "
                                "(without it: only when every video failed)."),
) -> None:
    """Compute and store optical flow for every video (resumable, atomic, shardable).

    Exit status 1 when every video failed, or with --strict when any did.
    Failures (dangling symbolic links too) are listed with the reason.
    """
    from deepvideo.flow.extract import DEFAULT_METHOD, ExtractOptions, parse_shard
    from deepvideo.flow.extract import extract as run

    try:
        opts = ExtractOptions(method=method or DEFAULT_METHOD, device=device, rgb=rgb, short_side=short_side,
                              bound=bound, fmt=fmt, params=parse_params(param))
        summary = run(inputs, out, opts, workers=workers, shard=parse_shard(shard) if shard else None)
    except (ValueError, OSError) as exc:  # bad options, missing input, --out not a folder
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    rate = summary.frames / summary.seconds if summary.seconds else 0.0
    typer.echo(f"{len(summary.done)} extracted ({summary.frames} frames, {rate:.1f} frames/s), "
               f"{len(summary.skipped)} already done, {len(summary.failed)} failed -> {out}")
    for fail in summary.failed:
        reason = fail["reason"]
        shown = reason if reason.startswith(fail["video"]) else f"{fail['video']}: {reason}"
        typer.echo(f"  failed: {shown}", err=True)
    failed, total = len(summary.failed), len(summary.failed) + len(summary.done) + len(summary.skipped)
    if failed and (strict or failed == total):
        typer.echo(f"error: {failed} of {total} videos failed" + ("" if strict else " (every one)"), err=True)
        raise typer.Exit(1)


def _output_problem(out: Path, png_dir: Path | None) -> str | None:
    """Why ``flow show`` cannot write to ``out`` / ``png_dir`` (checked before any work), or None."""
    if out.is_dir():
        return f"--out {out}: is a folder; give a file name ending in .mp4"
    if out.suffix.lower() != ".mp4":
        return f"--out {out}: the output is an H.264 mp4 video; give a file name ending in .mp4"
    if png_dir is not None and png_dir.exists() and not png_dir.is_dir():
        return f"--png-dir {png_dir}: exists and is not a folder"
    return None


@app.command()
def show(
    video: Path = typer.Argument(..., help="Video file or frame folder."),
    out: Path = typer.Option(..., "--out", help="Output mp4: RGB and colour-coded flow side by side."),
    method: str = typer.Option("dis", "--method", help="dis | farneback | opencv-tvl1 | tvl1."),
    coding: str = typer.Option("wheel", "--coding", help="wheel (Middlebury) | mag (R=u,G=v,B=|d|) | uv."),
    png_dir: Path = typer.Option(None, "--png-dir", help="Also write one PNG per flow field here."),
    short_side: int = typer.Option(None, "--short-side", help="Resize frames so the short side is this."),
    max_frames: int = typer.Option(None, "--max-frames", help="Only the first N frames."),
) -> None:
    """Render a video beside its colour-coded optical flow."""
    import cv2
    import numpy as np

    from deepvideo.flow import compute_flow
    from deepvideo.flow.colour import CODINGS, colour_code
    from deepvideo.io import VideoError, open_video, write_video

    if coding not in CODINGS:
        typer.echo(f"error: unknown --coding {coding!r}; choose one of {', '.join(CODINGS)}", err=True)
        raise typer.Exit(2)
    problem = _output_problem(out, png_dir)
    if problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    try:
        with open_video(video, short_side=short_side) as reader:
            n = len(reader) if max_frames is None else min(len(reader), max_frames)
            frames = reader.get_frames(list(range(n))).numpy()
            fps = reader.fps or 25.0
        flow = compute_flow(frames, method=method)
    except (VideoError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    coded = colour_code(flow, coding)
    rgb = frames[:-1]
    if coded.shape[2] != rgb.shape[2]:  # uv is two images wide: show the frame at the same scale
        size = (rgb.shape[2], rgb.shape[1])
        coded = np.stack([cv2.resize(c, size, interpolation=cv2.INTER_AREA) for c in coded])
    side = np.concatenate([rgb, coded], axis=2)
    try:
        write_video(out, side, fps=fps)
        if png_dir is not None:
            png_dir.mkdir(parents=True, exist_ok=True)
            for t, img in enumerate(side):
                cv2.imwrite(str(png_dir / f"flow_{t + 1:05d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    except OSError as exc:  # e.g. no permission, disk full: the path is in the message
        typer.echo(f"error: writing {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {out} ({len(side)} frames, {coding} coding, method {method})"
               + (f" and PNGs in {png_dir}" if png_dir else ""))
