"""Audio-only and audiovisual SlowFast learning check on a synthetic set with class tones.

Renders a small ``motion-shapes`` set (``--videos`` per class, 16 frames of 64x64 at 8 fps, so 2 s
of sound) with ``generate_dataset(..., audio=True)`` (one tone per class,
:mod:`deepvideo.data.synth.audio`), then trains ``audio_resnet_small`` (the AVSlowFast Audio
pathway alone) and ``av_slowfast_small`` (Xiao et al. 2020: SlowFast + Audio pathway, A→FS
laterals, DropPathway) with the engine on split 1 for ``--epochs`` epochs and tests them
(video accuracy, 2 clips x 1 crop). Goal: both well above chance (10%); the tones make audio
sufficient, so the audio-only model is the peer the AV model should reach. The AV model is trained
with the paper's DropPathway probability P_d = 0.8 (Kinetics) and with lower ones: DropPathway drops
the whole Audio pathway for an iteration, so with P_d = 0.8 it gets a fifth of the updates, which a
200-iteration budget cannot spare when the audio is the only cue.

Writes ``benchmarks/results/audio_av.json`` (``--only`` retrains those rows and keeps the others);
``--quick``: 2 iterations per model, nothing written.

    .venv/bin/python benchmarks/bench_audio.py
    .venv/bin/python benchmarks/bench_audio.py --only av_pd0.2
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import RESULTS, write_result  # noqa: E402

COMMAND = "python benchmarks/bench_audio.py"
# row name -> (model, DropPathway probability P_d or None for the audio-only model)
ROWS = {"audio": ("audio_resnet_small", None), "av_pd0.8": ("av_slowfast_small", 0.8),
        "av_pd0.5": ("av_slowfast_small", 0.5), "av_pd0.2": ("av_slowfast_small", 0.2),
        "av_pd0": ("av_slowfast_small", 0.0)}
COLUMNS = ["row", "model", "DropPathway P_d", "epochs", "video acc %", "minutes"]


def make_data(out: Path, videos: int) -> Path:
    from deepvideo.data.synth import RenderParams, generate_dataset

    generate_dataset("motion-shapes", out, videos_per_class=videos, clips_per_group=1,
                     params=RenderParams(width=64, height=64, frames=16, fps=8.0), audio=True)
    return out


def run(model: str, drop: float | None, data: Path, out: Path, epochs: int, quick: bool) -> dict:
    from deepvideo.engine.config import load_config
    from deepvideo.engine.evaluate import evaluate_checkpoint
    from deepvideo.engine.loop import train

    root = data.resolve()
    tag = model if drop is None else f"{model}_pd{drop}"
    overrides = [f"output_dir={out / tag}", f"name=audio_{tag}", "device=cpu", "seed=0",
                 f"model.name={model}", f"data.video_root={root / 'videos'}", "data.num_workers=0",
                 "data.flip=false", f"train.epochs={epochs}", "train.batch_size=8", "train.optimizer=adamw",
                 "train.lr=0.002", "train.weight_decay=0.0001", "train.schedule=cosine",
                 "train.warmup_epochs=0.5", "train.monitor=train_loss", "train.log_every=5",
                 "eval.num_clips=2", "eval.test_crops=1", "eval.batch_size=8"]
    for section, subset in (("train", "train"), ("test", "test")):
        overrides += [f"data.{section}.format=ucf101", f"data.{section}.root={root}",
                      f"data.{section}.split=1", f"data.{section}.subset={subset}"]
    if drop is not None:
        overrides.append(f"model.kwargs.drop_pathway={drop}")
    if quick:
        overrides += ["train.epochs=1", "train.max_iters_per_epoch=2", "eval.num_clips=1"]
    t0 = time.perf_counter()
    result = train(load_config(None, overrides))
    test = evaluate_checkpoint(result.last_checkpoint, name=model)
    return {"video_acc": float(test.metrics["video_hit@1"]), "epochs": result.epochs_completed,
            "minutes": (time.perf_counter() - t0) / 60}


def merged(table: list[list]) -> list[list]:
    """``table`` plus the rows of the last written result this run did not retrain, in ROWS order."""
    path = RESULTS / "audio_av.json"
    old = json.loads(path.read_text()) if path.exists() else {"columns": COLUMNS, "rows": []}
    rows = {}
    if old["columns"] == COLUMNS:
        rows = {r[0]: r for r in old["rows"]}
    rows.update({r[0]: r for r in table})
    return [rows[name] for name in ROWS if name in rows]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT / "runs" / "audio_data" / "ms_audio12")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "audio_bench")
    p.add_argument("--videos", type=int, default=12, help="videos per class")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--only", action="append", choices=list(ROWS), help="run only this row")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = make_data(args.data, args.videos)
    shutil.rmtree(args.out, ignore_errors=True)
    table = []
    for name in [n for n in ROWS if not args.only or n in args.only]:
        model, drop = ROWS[name]
        r = run(model, drop, data, args.out, args.epochs, args.quick)
        print(f"{name} ({model}): {100 * r['video_acc']:.1f}% ({r['minutes']:.1f} min)", flush=True)
        table.append([name, model, "-" if drop is None else drop, f"{r['epochs']}",
                      f"{100 * r['video_acc']:.1f}", f"{r['minutes']:.1f}"])
    if args.quick:
        return
    table = merged(table)
    desc = (f"Audio-only (`audio_resnet_small`) and audiovisual SlowFast (`av_slowfast_small`, Xiao et al. "
            f"2020) on motion-shapes with class tones ({args.videos} videos per class, 16 frames of 64x64 at "
            f"8 fps, split 1; log-mel 64 steps x 40 bins of 16 kHz audio), trained with the engine, batch 8 "
            f"({args.epochs} epochs of 80 clips = 200 iterations); test 2 clips per video. Chance 10%. "
            "DropPathway P_d: the probability of dropping the whole Audio pathway for an iteration (0.8 is "
            "the paper's Kinetics value). Minutes are wall time on a machine shared with other jobs.")
    chance = 0.1
    path = write_result("audio_av", title="Audio and audiovisual SlowFast on synthetic tones",
                        command=COMMAND, description=desc, columns=COLUMNS, rows=table,
                        summary={f"{r[0]}_above_chance_by": round(float(r[4]) / 100 - chance, 3)
                                 for r in table})
    print(f"wrote {path}")

if __name__ == "__main__":
    main()
