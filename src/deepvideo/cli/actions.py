"""`deepvideo detect-actions ...`: spatio-temporal action detection.

``deepvideo detect-actions VIDEO --checkpoint RUN --persons proposals.csv`` (short for
``... run VIDEO``) writes per-person action labels with boxes at every keyframe (JSON and an
AVA-layout CSV) and an annotated video; ``deepvideo detect-actions synth OUT`` writes the
synthetic AVA-format set; ``deepvideo detect-actions test RUN`` reports frame-mAP per class.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from deepvideo.cli.params import RunByDefault, fail

app = typer.Typer(cls=RunByDefault, no_args_is_help=True)


@app.command("run")
def run(video: Path = typer.Argument(..., help="Video file."),
        checkpoint: Path = typer.Option(..., "--checkpoint", help="Trained action detector (run folder)."),
        persons: Path = typer.Option(None, "--persons", help="Person boxes per keyframe (AVA proposals "
                                     "CSV / JSON / npz; keyed by the video id)."),
        person_detector: Path = typer.Option(None, "--person-detector",
                                             help="A trained object detector run (deepvideo detect's "
                                             "R-FCN / D&T) whose --person-class boxes are the persons."),
        person_class: str = typer.Option("person", "--person-class",
                                         help="The detector's class that holds the persons."),
        person_score: float = typer.Option(0.5, "--person-score",
                                           help="Lowest detector score of a person box."),
        video_id: str = typer.Option(None, "--video-id",
                                     help="Id of the video in --persons (default: file stem)."),
        start: float = typer.Option(0.0, "--start", help="Time of frame 0 in seconds (AVA clips: 900)."),
        threshold: float = typer.Option(0.5, "--threshold", help="Score at which an action is a label."),
        out: Path = typer.Option(None, "--out", help="Output folder (default <video stem>_actions)."),
        device: str = typer.Option("cpu", "--device")) -> None:
    """Label each person's actions over time: JSON, CSV and an annotated video."""
    from deepvideo.detect.actions.ava import AvaFormatError, read_proposals, write_ava_csv
    from deepvideo.detect.actions.predict import as_json, as_rows, detect_video, write_annotated
    from deepvideo.engine.tasks.action_detection import load_detector
    from deepvideo.io.atomic import atomic_write_json

    if (persons is None) == (person_detector is None):
        fail("give the person boxes: one of --persons FILE or --person-detector RUN", 2)
    vid = video_id or video.stem
    try:
        model, cfg, meta = load_detector(checkpoint, device)
        if persons is not None:
            boxes = {ts: arr for (v, ts), arr in read_proposals(persons).items() if v == vid}
            if not boxes:
                fail(f"{persons}: no boxes for video id {vid!r} (use --video-id)")
        else:
            boxes = _detected_persons(person_detector, video, person_class, person_score, start)
        results = detect_video(model, video, boxes, start=start, device=device)
    except (OSError, ValueError, KeyError, AvaFormatError) as err:
        fail(str(err).strip("'\""))
    names, ids = [str(n) for n in meta["class_names"]], [int(i) for i in meta["action_ids"]]
    folder = out or video.with_name(f"{video.stem}_actions")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "actions.json", as_json(vid, results, names, threshold))
    write_ava_csv(folder / "actions.csv", as_rows(vid, results, ids))
    write_annotated(video, folder / "annotated.mp4", results, names, threshold, start)
    people = sum(len(r.boxes) for r in results)
    typer.echo(f"{len(results)} keyframes, {people} person boxes: {folder / 'actions.json'}, "
               f"{folder / 'actions.csv'}, {folder / 'annotated.mp4'}")


def _detected_persons(run: Path, video: Path, person_class: str, min_score: float, start: float) -> dict:
    """Person boxes per keyframe from a trained ``deepvideo detect`` run."""
    from deepvideo.detect.actions.predict import person_boxes
    from deepvideo.engine.tasks.detect_track import load_detector as load_object_detector

    model, classes, _ = load_object_detector(run)
    if person_class not in classes:
        fail(f"{run}: the detector has no class {person_class!r} (its classes: {', '.join(classes)}); "
             "name one with --person-class", 2)
    detector = getattr(model, "detector", model)  # a D&T model detects with its R-FCN
    return person_boxes(detector, video, classes.index(person_class) + 1, min_score=min_score, start=start)


@app.command("synth")
def synth(out: Path = typer.Argument(..., help="Output folder."),
          train_videos: int = typer.Option(48, "--train-videos"),
          val_videos: int = typer.Option(16, "--val-videos"),
          size: int = typer.Option(96, "--size", help="Frame side in pixels."),
          seconds: int = typer.Option(6, "--seconds", help="Video length."),
          fps: float = typer.Option(8.0, "--fps"),
          seed: int = typer.Option(0, "--seed")) -> None:
    """Write the synthetic AVA-format set (videos, AVA CSVs, action list, proposals)."""
    from deepvideo.detect.actions.synth import SynthParams, write_synth

    try:
        params = SynthParams(train_videos, val_videos, size, seconds, fps, seed)
    except ValueError as err:
        fail(str(err), 2)
    summary = write_synth(out, params)
    typer.echo(json.dumps(summary))


@app.command("test")
def test(run_dir: Path = typer.Argument(..., help="Run folder or checkpoint folder."),
         subset: str = typer.Option("test", "--subset", help="test (falls back to val), val or train."),
         out: Path = typer.Option(None, "--out", help="Output folder (default <run>/test)."),
         batch_size: int = typer.Option(4, "--batch-size"),
         device: str = typer.Option("cpu", "--device")) -> None:
    """Frame-mAP at IoU 0.5 per action class of a trained action detector."""
    from deepvideo.engine.tasks.action_detection import evaluate_run

    try:
        metrics = evaluate_run(run_dir, subset, out, batch_size, device)
    except (OSError, ValueError, KeyError) as err:
        fail(str(err).strip("'\""))
    for name, ap in metrics["per_class"].items():
        typer.echo(f"{name:40s} {'-' if ap is None else f'{100 * ap:.1f}'}")
    typer.echo(f"frame-mAP@0.5 {100 * metrics['frame_map']:.1f} over {metrics['keyframes']} keyframes; "
               f"detections and metrics in {metrics['out_dir']}")
