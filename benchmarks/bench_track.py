"""Single-object trackers on the real sequences of ``../shared/data/tracking`` (Crossing, OTB
format; bag, VOT format), one-pass evaluation from the first ground-truth box, in one run:
success AUC and precision at 20 px (GOT-10k toolkit OTB mode, :mod:`deepvideo.track.metrics`)
and frames per second of the tracker's own calls (frames decoded beforehand, not timed), each
tracker beside OpenCV's CSRT, KCF and MOSSE. Goal (issue "Tracking I"): ECO-HC's AUC above
OpenCV CSRT's and >= 40 fps, with 2 threads.

    python benchmarks/bench_track.py [--threads 2] [--trackers eco_hc mosse ...]

With ``--deep NAME ...`` (entries of ``deep_track.DEEP``: siamfc, siamfc_5s, siamfc_linear,
siamfc_updatenet, ...) it is the deep trackers' acceptance benchmark instead, written to
``results/track_deep.json``: each deep tracker trained from its recipe (``--train``; else the
weights of an earlier run in ``--work`` or ``--weights NAME=PATH``) on a synthetic set of
:mod:`deepvideo.track.synth` (train / val splits; a held-out test split with another seed and
other backgrounds, see ``deep_track``), then evaluated on the real sequences and on the
synthetic test split beside ECO-HC and OpenCV's KCF and CSRT. Goals (issue "Tracking II"):
trained SiamFC's real-sequence AUC above OpenCV KCF's and >= 60 fps on 2 cores; the best deep
tracker's synthetic-test AUC above CSRT's.

    nice python benchmarks/bench_track.py --deep siamfc siamfc_5s siamfc_linear --train
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import deep_track
from common import ROOT, SHARED_DATA, write_result
from deepvideo.track import evaluate, metrics
from deepvideo.track.datasets import Sequence, load_dataset, load_sequence
from deepvideo.track.registry import get_tracker_info, list_trackers

SEQUENCES = ("Crossing", "bag")
PEERS = ("opencv_csrt", "opencv_kcf", "opencv_mosse")
GOAL_FPS = 40.0
DEEP_PEERS = ("eco_hc", "opencv_kcf", "opencv_csrt")
DEEP_GOAL_FPS = 60.0


class InMemory(Sequence):
    """A sequence whose frames are decoded once, before any tracker is timed."""

    def frame(self, index: int) -> np.ndarray:
        return self.__dict__["_frames"][index]

    def frames(self, start: int = 0):
        yield from self.__dict__["_frames"][start:]


def in_memory(seq: Sequence) -> InMemory:
    from dataclasses import fields

    copy = InMemory(**{f.name: getattr(seq, f.name) for f in fields(seq) if f.init})
    copy.__dict__["_frames"] = list(seq.frames())
    return copy


def score(name: str, sequences: list[Sequence], factory=None) -> dict:
    """OTB-mode figures of tracker ``name`` (made by ``factory``, default the registry's) on
    ``sequences``, one run each."""
    factory = factory or get_tracker_info(name).factory
    per_sequence = {}
    for seq in sequences:
        run = evaluate.track_ope(factory(), seq)
        per_sequence[seq.name] = metrics.ope_sequence(run.boxes, evaluate.file_boxes(seq),
                                                      seq.absent, run.times)
    return {"sequences": per_sequence, "overall": metrics.ope_summary(per_sequence)}


def trackers_to_run(requested: list[str] | None) -> list[str]:
    if requested:
        return requested
    return [info.name for info in list_trackers(available_only=True)
            if info.name not in ("opencv_mil",)]  # MIL: not repeatable between runs (documented)


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "tracking")
    parser.add_argument("--trackers", nargs="+")
    deep = parser.add_argument_group("deep trackers (results/track_deep.json)")
    deep.add_argument("--deep", nargs="+", choices=sorted(deep_track.DEEP), metavar="NAME",
                      help=f"deep trackers to benchmark: {', '.join(sorted(deep_track.DEEP))}")
    deep.add_argument("--train", action="store_true", help="train those without weights in --work")
    deep.add_argument("--retrain", action="store_true", help="train even when --work has weights")
    deep.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_track",
                      help="synthetic data and training runs")
    deep.add_argument("--videos", type=Path, default=SHARED_DATA / "video",
                      help="real videos whose frames become the synthetic backgrounds")
    deep.add_argument("--weights", nargs="+", default=[], metavar="NAME=PATH",
                      help="weights to use instead of a run in --work")
    deep.add_argument("--train-override", nargs="+", default=[], metavar="RUN:KEY=VALUE",
                      help="recipe overrides for one training run, e.g. siamfc:train.epochs=5")
    deep.add_argument("--synth", type=int, nargs=3, metavar=("TRAIN", "VAL", "TEST"),
                      help="numbers of synthetic sequences (default: deep_track.SynthSplits)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import cv2

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if args.deep:
        return deep_main(args)
    sequences = [in_memory(load_sequence(args.data / name)) for name in SEQUENCES]
    names = trackers_to_run(args.trackers)
    names = [n for n in names if n not in PEERS] + [p for p in PEERS if p in names]
    results = {}
    for name in names:
        results[name] = score(name, sequences)
        o = results[name]["overall"]
        print(f"{name:14s} AUC {o['auc']:.3f}  P@20 {o['precision']:.3f}  {o['fps']:.1f} fps",
              flush=True)
    rows, csrt = [], results.get("opencv_csrt", {}).get("overall")
    for name in names:
        per, o = results[name]["sequences"], results[name]["overall"]
        rows.append([name, *(round(per[s]["auc"], 3) for s in SEQUENCES), round(o["auc"], 3),
                     round(o["precision"], 3), round(o["fps"], 1),
                     round(o["fps"] / csrt["fps"], 2) if csrt else None,
                     get_tracker_info(name).paper])
    summary = {}
    if "eco_hc" in results and csrt:
        eco = results["eco_hc"]["overall"]
        summary = {"eco_hc_auc": round(eco["auc"], 3), "opencv_csrt_auc": round(csrt["auc"], 3),
                   "eco_hc_fps": round(eco["fps"], 1), "goal": f"AUC > CSRT and >= {GOAL_FPS:g} fps",
                   "met": bool(eco["auc"] > csrt["auc"] and eco["fps"] >= GOAL_FPS)}
    write_result(
        "track", title="Single-object trackers on real sequences (OPE)",
        command="python benchmarks/bench_track.py",
        description=__doc__.split("\n\n")[0].replace("\n", " ")
        + " AUC per sequence, their mean (the OTB-mode dataset figure), P@20 over both; fps "
        "is the mean over the two sequences, and its ratio to OpenCV CSRT's in the same run.",
        columns=["tracker", *(f"AUC {s}" for s in SEQUENCES), "AUC", "P@20", "fps",
                 "fps / CSRT", "paper"],
        rows=rows, summary=summary)


def deep_weights(args) -> dict[str, Path]:
    """``--weights NAME=PATH`` as a dict (a ValueError naming a bad item)."""
    out = {}
    for item in args.weights:
        name, sep, path = item.partition("=")
        if not sep or name not in deep_track.DEEP:
            raise ValueError(f"--weights {item!r}: expected NAME=PATH with NAME one of "
                             f"{', '.join(sorted(deep_track.DEEP))}")
        out[name] = Path(path)
    return out


def deep_factories(args, splits) -> dict:
    """Name -> tracker factory of each ``--deep`` tracker, trained first where asked."""
    given = deep_weights(args)
    done: set[str] = set()
    factories = {}
    for name in args.deep:
        owner = deep_track.run_name(name)
        if owner not in given and (args.train or args.retrain):
            deep_track.train(name, ROOT, args.work, splits, args.train_override, args.retrain, done)
        missing = [n for n in (owner, deep_track.DEEP[owner].needs) if n and n not in given
                   and not deep_track.weights_path(args.work, n).exists()]
        if missing:
            raise SystemExit(f"{name}: no weights for {', '.join(missing)} in {args.work} "
                             "(train with --train, or give --weights NAME=PATH)")
        factories[name] = deep_track.tracker_factory(name, args.work, given)
    return factories


def deep_main(args) -> None:
    """The deep trackers' acceptance benchmark (see the module docstring)."""
    sizes = deep_track.SynthSplits(*args.synth) if args.synth else deep_track.SynthSplits()
    splits = deep_track.make_splits(args.work, args.videos, sizes)
    factories = deep_factories(args, splits)
    real = [in_memory(load_sequence(args.data / name)) for name in SEQUENCES]
    synth = [in_memory(seq) for seq in load_dataset(splits["test"])]
    results = {}
    for name in [*args.deep, *DEEP_PEERS]:
        factory = factories.get(name)
        results[name] = {"real": score(name, real, factory), "synth": score(name, synth, factory)}
        r, t = results[name]["real"]["overall"], results[name]["synth"]["overall"]
        print(f"{name:18s} real AUC {r['auc']:.3f} P@20 {r['precision']:.3f} {r['fps']:.1f} fps | "
              f"synthetic test AUC {t['auc']:.3f}", flush=True)
    write_deep_result(args, sizes, results)


def deep_summary(args, results: dict) -> dict:
    kcf, csrt = results["opencv_kcf"], results["opencv_csrt"]
    deep_synth = {n: results[n]["synth"]["overall"]["auc"] for n in args.deep}
    best = max(deep_synth, key=deep_synth.get)
    summary = {"opencv_kcf_real_auc": round(kcf["real"]["overall"]["auc"], 3),
               "opencv_csrt_synth_auc": round(csrt["synth"]["overall"]["auc"], 3),
               "best_deep_synth": best, "best_deep_synth_auc": round(deep_synth[best], 3),
               "goal": f"SiamFC real AUC > OpenCV KCF and >= {DEEP_GOAL_FPS:g} fps; "
                       "best deep synthetic AUC > CSRT"}
    met = deep_synth[best] > csrt["synth"]["overall"]["auc"]
    if "siamfc" in results:
        siamfc = results["siamfc"]["real"]["overall"]
        summary.update(siamfc_real_auc=round(siamfc["auc"], 3), siamfc_fps=round(siamfc["fps"], 1))
        met = met and siamfc["auc"] > kcf["real"]["overall"]["auc"] and siamfc["fps"] >= DEEP_GOAL_FPS
    summary["met"] = bool(met)
    return summary


def write_deep_result(args, sizes, results: dict) -> None:
    rows = []
    for name, res in results.items():
        real, synth = res["real"], res["synth"]["overall"]
        entry = deep_track.DEEP.get(name)
        seconds = deep_track.training_seconds(args.work, name) if entry else None
        options = ", ".join(f"{k}={v}" for k, v in entry.tracker_kwargs.items()
                            if "{" not in str(v)) if entry else ""
        rows.append([name, *(round(real["sequences"][s]["auc"], 3) for s in SEQUENCES),
                     round(real["overall"]["auc"], 3), round(real["overall"]["precision"], 3),
                     round(real["overall"]["fps"], 1), round(synth["auc"], 3),
                     round(synth["precision"], 3), round(seconds / 60, 1) if seconds else None,
                     entry.config if entry else get_tracker_info(name).paper, options])
    write_result(
        "track_deep", title="Deep trackers trained on the library's synthetic set (OPE)",
        command="nice python benchmarks/bench_track.py " + " ".join(sys.argv[1:]),
        description=(
            f"Each deep tracker trained on the CPU from its recipe on a synthetic set of "
            f"`deepvideo.track.synth` ({sizes.train} training and {sizes.val} validation sequences of "
            f"{sizes.frames} frames at {sizes.size[0]}×{sizes.size[1]} over frames of real videos), "
            f"then evaluated one-pass from the first ground-truth box on the real sequences of "
            f"`../shared/data/tracking` (Crossing, bag: AUC per sequence, their mean, P@20) and on a "
            f"held-out synthetic test split ({sizes.test} sequences, another seed, other background "
            f"videos), beside ECO-HC and OpenCV's KCF and CSRT, {args.threads} threads, one run. fps: "
            f"the tracker's own calls on the real sequences. Training time: the epochs' wall time "
            f"(shared machine) of the run (and of what it builds on), in minutes."),
        columns=["tracker", *(f"AUC {s}" for s in SEQUENCES), "AUC real", "P@20 real", "fps",
                 "AUC synth test", "P@20 synth test", "training min", "recipe / paper", "options"],
        rows=rows, summary=deep_summary(args, results))


if __name__ == "__main__":
    main()
