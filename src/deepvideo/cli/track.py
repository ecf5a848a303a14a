"""`deepvideo track ...`: follow one target through a video, benchmark trackers on datasets,
convert result files between the toolkits' layouts, list the trackers.

``deepvideo track VIDEO --init x,y,w,h`` is short for ``deepvideo track run VIDEO ...``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from deepvideo.cli.params import RunByDefault, fail, parse_params, parse_size

app = typer.Typer(cls=RunByDefault, no_args_is_help=True)


def register_top_level(root: typer.Typer) -> None:
    """Add this group's top-level commands to the root app (none: all live under ``track``)."""


def _parse_box(text: str | None):
    from deepvideo.track.base import as_box

    if text is None:
        return None
    try:
        return as_box(text.replace(" ", "").split(","), "--init")
    except ValueError as exc:
        fail(f"{exc}; expected x,y,w,h in pixels, e.g. 120,80,40,60", 2)


def _sequence(video: Path, init):
    """A video file with ``--init``, or a sequence folder (its first ground-truth box, or
    ``--init`` in its place)."""
    from deepvideo.track.datasets import load_sequence, video_sequence

    if not video.is_dir():
        return video_sequence(video, init)
    seq = load_sequence(video)
    if init is not None:
        seq.boxes[0] = init
    return seq


def _follow(seq, tracker, progress: bool, masks: list | None = None):
    """Track ``seq``; a tracker's masks (``extras["mask"]``) are packed into ``masks`` when given."""
    from deepvideo.progress import make_progress
    from deepvideo.track.evaluate import track_ope
    from deepvideo.track.show import PackedMask

    def keep_mask(index, result):
        masks[index] = PackedMask.of(result.extras.get("mask"))

    with make_progress("frames", disable=not progress) as bar:
        task = bar.add_task(f"track {seq.name}", total=len(seq))
        return track_ope(tracker, seq, on_frame=lambda index: bar.advance(task),
                         on_result=keep_mask if masks is not None else None)


def _write_outputs(seq, run, out: Path | None, scores_out: Path | None, show: Path | None,
                   fps: float, masks: list | None = None) -> None:
    from deepvideo.io.atomic import atomic_write_text
    from deepvideo.track.show import write_tracking_video

    if out is not None:
        atomic_write_text(out, "".join(",".join(f"{v:.3f}" for v in b) + "\n" for b in run.boxes))
    if scores_out is not None:
        atomic_write_text(scores_out, "".join(f"{s:.6f}\n" for s in run.scores))
    if show is not None:
        gt = seq.boxes if seq.format != "video" else None
        shown = masks if masks and any(m is not None for m in masks) else None
        write_tracking_video(show, seq.frames(), run.boxes, run.scores, gt=gt, fps=fps, masks=shown)


@app.command("run")
def run(
    video: Path = typer.Argument(..., help="A video file, or a sequence folder (OTB, VOT, GOT-10k, LaSOT, "
                                 "TrackingNet) whose first ground-truth box starts the tracker."),
    init: str = typer.Option(None, "--init", help="The target's box in the first frame: x,y,w,h in pixels "
                             "(0-based, top-left corner)."),
    tracker: str = typer.Option("eco_hc", "--tracker", help="A tracker name (deepvideo track list)."),
    param: list[str] = typer.Option([], "--param", help="Tracker parameter key=value (repeatable)."),
    out: Path = typer.Option(None, "--out", help="Write one x,y,w,h line per frame here."),
    scores_out: Path = typer.Option(None, "--scores", help="Write the tracker's score per frame here."),
    show: Path = typer.Option(None, "--show", help="Write an mp4: each frame with the box (and the "
                              "ground truth of a sequence folder), the score plotted beside it."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress."),
) -> None:
    """Follow one target through a video from its first box."""
    from deepvideo.io import VideoError, probe
    from deepvideo.track.registry import TrackerUnavailableError, create_tracker
    from deepvideo.track.sequence_files import SequenceError

    if show is not None and show.suffix.lower() != ".mp4":
        fail(f"--show {show}: the annotated video is an mp4; name it *.mp4", 2)
    if not video.exists():
        fail(f"{video}: file not found", 2)
    box = _parse_box(init)
    if box is None and not video.is_dir():
        fail("a video needs the target's first box: --init x,y,w,h", 2)
    try:
        follower = create_tracker(tracker, **parse_params(param))
    except KeyError as exc:
        fail(exc.args[0], 2)
    except (TrackerUnavailableError, TypeError) as exc:
        fail(f"--tracker {tracker}: {exc}", 2)
    try:
        seq = _sequence(video, box)
        masks = [None] * len(seq) if show is not None else None
        run = _follow(seq, follower, progress, masks)
        fps = (probe(video).fps or 25.0) if seq.video_path is not None else 25.0
        _write_outputs(seq, run, out, scores_out, show, fps, masks)
    except (SequenceError, VideoError, ValueError) as exc:
        fail(str(exc))
    _summary(tracker, run, [p for p in (out, scores_out, show) if p])


def _summary(tracker: str, run, outputs: list[Path]) -> None:
    seconds = np.nansum(run.times)
    scores = run.scores[1:]
    mean = float(np.nanmean(scores)) if np.isfinite(scores).any() else float("nan")
    low = float(np.nanmin(scores)) if np.isfinite(scores).any() else float("nan")
    typer.echo(f"{tracker}: {len(run.boxes)} frames, {(len(run.boxes) - 1) / max(seconds, 1e-9):.1f} fps; "
               f"score mean {mean:.3f}, lowest {low:.3f}" + "".join(f" -> {p}" for p in outputs))


@app.command("bench")
def bench(
    dataset: Path = typer.Argument(..., help="A folder of tracking sequences (any supported format)."),
    trackers: str = typer.Option(..., "--trackers", help="Comma-separated tracker names."),
    protocol: str = typer.Option("ope", "--protocol", help="ope | got10k | vot."),
    report: Path = typer.Option(..., "--report", help="Folder for report.md, plots and scores.json."),
    results: Path = typer.Option(None, "--results", help="Result files (default: REPORT/results)."),
    repetitions: int = typer.Option(None, "--repetitions", help="Runs per sequence (default: got10k 3, "
                                    "else 1)."),
    shard: str = typer.Option(None, "--shard", help="i/n: run every n-th sequence from i (default: torchrun "
                              "RANK/WORLD_SIZE, else all)."),
    eao_interval: str = typer.Option("100,356", "--eao-interval", help="VOT: sequence lengths lo,hi "
                                     "over which EAO averages (VOT2018: 100,356)."),
) -> None:
    """Run trackers on a dataset (resumable), evaluate, and write plots and report.md."""
    from deepvideo.flow.extract import parse_shard
    from deepvideo.track.benchmark import benchmark
    from deepvideo.track.layouts import ResultFileError
    from deepvideo.track.sequence_files import SequenceError

    names = [t.strip() for t in trackers.split(",") if t.strip()]
    try:
        interval = tuple(int(v) for v in eao_interval.split(","))
        result = benchmark(dataset, names, protocol, report, results_dir=results,
                           repetitions=repetitions, shard=parse_shard(shard) if shard else None,
                           eao_interval=interval)
    except KeyError as exc:
        fail(exc.args[0], 2)
    except (SequenceError, ResultFileError, ValueError) as exc:
        fail(str(exc))
    if result.report is None:
        typer.echo(f"this shard is done; results in {result.results_dir}. Run again without --shard "
                   "when every shard finished to write the report.")
    else:
        typer.echo(f"report: {result.report}")


@app.command("convert")
def convert(
    src: Path = typer.Argument(..., help="One tracker's result folder."),
    dst: Path = typer.Argument(..., help="Output folder."),
    src_layout: str = typer.Option(None, "--from", help="otb | got10k | vot (default: detected)."),
    dst_layout: str = typer.Option(..., "--to", help="otb | got10k | vot."),
    repetition: int = typer.Option(None, "--repetition", help="To otb: which GOT-10k repetition."),
) -> None:
    """Convert one tracker's result files between the toolkits' layouts."""
    from deepvideo.track.layouts import ResultFileError, detect_layout
    from deepvideo.track.layouts import convert as run_convert

    try:
        names = run_convert(src, src_layout or detect_layout(src), dst, dst_layout, repetition)
    except (ResultFileError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    typer.echo(f"converted {len(names)} sequences -> {dst} ({dst_layout})")


@app.command("synth")
def synth(
    out: Path = typer.Argument(..., help="Output folder (GOT-10k layout, with masks/)."),
    sequences: int = typer.Option(8, "--sequences", "-n", help="Number of sequences."),
    frames: int = typer.Option(40, "--frames", help="Frames per sequence."),
    size: str = typer.Option("160x120", "--size", help="Frame size WIDTHxHEIGHT."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives identical sequences."),
    split: str = typer.Option(None, "--split", help="train | val | test: a split's sequences never share "
                              "a random stream with another split's, and take frames of --backgrounds / "
                              "--targets videos only from their part (train 0-70 %, val 70-80 %, "
                              "test 80-100 % of each video)."),
    backgrounds: list[Path] = typer.Option([], "--backgrounds", help="Videos, frame folders, images or "
                                           "folders of them to crop backgrounds from (repeatable; "
                                           "default: procedural textures)."),
    targets: list[Path] = typer.Option([], "--targets", help="Videos, frame folders, images or folders "
                                       "of them whose patches become targets (repeatable)."),
    target_share: float = typer.Option(0.5, "--target-share", help="Share of sequences whose target is "
                                       "a real patch (with --targets)."),
    per_video: int = typer.Option(8, "--per-video", help="Frames taken from each background/target video."),
) -> None:
    """Render a synthetic tracking set (moving, scaling, rotating, occluded textured objects with
    a look-alike distractor, motion blur and camera motion) in GOT-10k format with masks."""
    from deepvideo.io import VideoError
    from deepvideo.track.sequence_files import SequenceError
    from deepvideo.track.synth import load_images, render_tracking_set

    width, height = parse_size(size)
    try:
        pools = [load_images(paths, per_video, split) if paths else None for paths in (backgrounds, targets)]
        names = render_tracking_set(out, num_sequences=sequences, frames=frames, size=(width, height),
                                    seed=seed, backgrounds=pools[0], targets=pools[1],
                                    target_share=target_share, split=split,
                                    sources={"backgrounds": [str(p) for p in backgrounds],
                                             "targets": [str(p) for p in targets], "per_video": per_video})
    except (SequenceError, VideoError) as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc), 2)
    typer.echo(f"{len(names)} sequences of {frames} frames -> {out} (GOT-10k layout, masks/"
               f"{', split ' + split if split else ''})")


@app.command("list")
def list_() -> None:
    """The registered trackers, their papers, and whether they can run here."""
    from deepvideo.track.registry import list_trackers

    for info in list_trackers():
        status = "" if info.is_available() else "  (not available here)"
        typer.echo(f"{info.name:16s} {info.summary}{status}")
        if info.paper:
            typer.echo(f"{'':16s} {info.paper}")
