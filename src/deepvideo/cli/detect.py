"""`deepvideo detect ...`: detect (and track, and link) objects in a video with a trained R-FCN or
D&T model, score a model on a VID split, render the synthetic VID set.

``deepvideo detect VIDEO --checkpoint RUN`` is short for ``deepvideo detect run VIDEO ...``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import typer

from deepvideo.cli.params import RunByDefault, fail

app = typer.Typer(cls=RunByDefault, no_args_is_help=True)


def _load(checkpoint: Path):
    from deepvideo.engine.checkpoint import CheckpointError
    from deepvideo.engine.config import ConfigError
    from deepvideo.engine.tasks.detect_track import load_detector

    try:
        return load_detector(checkpoint)
    except (CheckpointError, ConfigError, FileNotFoundError, KeyError) as exc:
        fail(f"--checkpoint {checkpoint}: {exc}", 2)


def detections_table(result, classes: list[str]) -> list[dict]:
    """One row per box: frame, class, score, x1, y1, x2, y2, tube (-1: not linked)."""
    rows = []
    for frame, (boxes, scores, labels, tubes) in enumerate(zip(result.boxes, result.scores, result.labels,
                                                                result.tube_ids, strict=True)):
        for box, score, label, tube in zip(boxes, scores, labels, tubes, strict=True):
            rows.append({"frame": frame, "class": classes[int(label) - 1], "score": round(float(score), 5),
                         **{k: round(float(v), 2)
                            for k, v in zip(("x1", "y1", "x2", "y2"), box, strict=True)},
                         "tube": int(tube)})
    return rows


def annotate(frames: list[np.ndarray], result, classes: list[str], min_score: float) -> list[np.ndarray]:
    """The frames with the boxes scoring at least ``min_score``: class, score and tube id."""
    import cv2

    out = []
    for t, frame in enumerate(frames):
        image = np.ascontiguousarray(frame).copy()
        for box, score, label, tube in zip(result.boxes[t], result.scores[t], result.labels[t],
                                           result.tube_ids[t], strict=True):
            if score < min_score:
                continue
            hue = np.random.default_rng(int(tube) + 7).integers(64, 256, 3).tolist()
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            cv2.rectangle(image, (x1, y1), (x2, y2), hue, 1)
            text = f"{classes[int(label) - 1]} {score:.2f}" + (f" #{tube}" if tube >= 0 else "")
            cv2.putText(image, text, (x1, max(y1 - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.3, hue, 1)
        out.append(image)
    return out


@app.command("run")
def run(
    video: Path = typer.Argument(..., help="A video file or a folder of frames."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A detect_track run or checkpoint folder."),
    link: bool = typer.Option(True, "--link/--no-link", help="Link detections into tubes and rescore."),
    causal: bool = typer.Option(False, "--causal", help="Rescore online (the best path ending at each "
                                "detection, past frames only) instead of linking the whole video."),
    stride: int = typer.Option(1, "--stride", help="Detect every τ frames (linking interpolates between)."),
    out: Path = typer.Option(None, "--out", help="Output folder (default: <video name>_detections)."),
    show: Path = typer.Option(None, "--show", help="Write an mp4 with the boxes, classes and tube ids."),
    min_score: float = typer.Option(0.3, "--min-score", help="Boxes drawn in --show score at least this."),
    template: str = typer.Option("img_{:05d}.jpg", "--template", help="Frame file names of a folder."),
    start_index: int = typer.Option(1, "--start-index", help="First frame number of a folder."),
) -> None:
    """Detect objects in a video: detections.json / .csv and tubes.json (and an annotated mp4)."""
    from deepvideo.detect.inference import detect_video
    from deepvideo.io import VideoError, open_video, probe
    from deepvideo.io.atomic import atomic_write_json, atomic_write_text
    from deepvideo.io.writer import write_video

    if show is not None and show.suffix.lower() != ".mp4":
        fail(f"--show {show}: the annotated video is an mp4; name it *.mp4", 2)
    if stride < 1:
        fail(f"--stride must be >= 1, got {stride}", 2)
    if not video.exists():
        fail(f"{video}: file not found", 2)
    model, classes, _ = _load(checkpoint)
    try:
        with open_video(video, template=template, start_index=start_index) as reader:
            frames = [np.asarray(f) for f in reader]
        fps = probe(video, template=template, start_index=start_index).fps or 25.0
    except VideoError as exc:
        fail(str(exc))
    result = detect_video(model, frames, stride=stride, link=link, causal=causal)
    out = out or video.parent / f"{video.stem}_detections"
    rows = detections_table(result, classes)
    atomic_write_json(out / "detections.json", {"video": str(video), "classes": classes, "stride": stride,
                                                "linked": link and not causal, "causal": causal,
                                                "detections": rows})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["frame", "class", "score", "x1", "y1", "x2", "y2", "tube"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "detections.csv", text.getvalue())
    tubes = [{"tube": i, "class": classes[t.label - 1], "frames": t.frames,
              "boxes": np.round(t.boxes, 2).tolist(), "scores": np.round(t.scores, 5).tolist()}
             for i, t in enumerate(result.tubes)]
    atomic_write_json(out / "tubes.json", {"video": str(video), "tubes": tubes})
    if show is not None:
        write_video(show, np.stack(annotate(frames, result, classes, min_score)), fps=fps)
    typer.echo(f"{len(frames)} frames, {len(rows)} boxes, {len(tubes)} tubes -> {out}"
               + (f", {show}" if show else ""))


@app.command("eval")
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A detect_track run or checkpoint folder."),
    root: Path = typer.Option(..., "--root", help="An ImageNet VID layout folder."),
    split: str = typer.Option("val", "--split", help="The ImageSets/VID list to score."),
    link: bool = typer.Option(True, "--link/--no-link", help="Link (D&T models) and rescore."),
    stride: int = typer.Option(1, "--stride", help="Detect every τ frames."),
    out: Path = typer.Option(None, "--out", help="Write the metrics JSON here."),
) -> None:
    """Frame mAP (IoU 0.5) per class and by motion speed on a VID split."""
    from deepvideo.detect.evaluate import evaluate_videos
    from deepvideo.detect.inference import detect_video
    from deepvideo.detect.pairs import read_rgb
    from deepvideo.detect.vid import read_split
    from deepvideo.io.atomic import atomic_write_json

    model, classes, _ = _load(checkpoint)
    try:
        videos = read_split(root, split)
    except (OSError, ValueError) as exc:
        fail(str(exc), 2)
    results = [detect_video(model, (read_rgb(f.image) for f in v.frames), stride=stride, link=link)
               for v in videos]
    scores = evaluate_videos(results, videos, classes)
    for name, ap in scores["per_class"].items():
        typer.echo(f"{name:>16s}  AP {100 * ap:5.1f}")
    typer.echo(f"{'mean':>16s}  mAP {100 * scores['mean']:5.1f}  ("
               + ", ".join(f"{s} {100 * v['mean']:.1f}" for s, v in scores["by_speed"].items())
               + f"; {len(videos)} videos)")
    if out is not None:
        atomic_write_json(out, {"checkpoint": str(checkpoint), "split": split, "link": link,
                                "stride": stride, **scores}, default=float)


@app.command("synth")
def synth(
    out: Path = typer.Argument(..., help="The VID root to write (replaced when complete)."),
    train: int = typer.Option(24, "--train", help="Training videos."),
    val: int = typer.Option(4, "--val", help="Validation videos."),
    test: int = typer.Option(8, "--test", help="Test videos."),
    frames: int = typer.Option(24, "--frames", help="Frames per video."),
    size: str = typer.Option("256x192", "--size", help="WIDTHxHEIGHT (the CPU configs suit 256x192)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
) -> None:
    """Render the synthetic multi-object VID set (textured shapes, tracks, occlusions, blur)."""
    from deepvideo.cli.params import fail, parse_size
    from deepvideo.detect.vid_synth import render_vid_set

    videos = {k: n for k, n in (("train", train), ("val", val), ("test", test)) if n > 0}
    try:
        names = render_vid_set(out, videos, frames=frames, size=parse_size(size), seed=seed)
    except ValueError as exc:
        fail(str(exc), 2)
    typer.echo(f"{out}: " + ", ".join(f"{len(v)} {k} videos" for k, v in names.items()))
