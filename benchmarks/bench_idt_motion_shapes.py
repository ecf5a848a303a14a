"""IDT + Fisher vectors on motion-shapes against the single-frame appearance CNN of `make demo`.

The data are the demo's (``configs/demo/demo.yaml``): motion-shapes, 30 videos per class, 112×112,
32 frames, seed 0, every other video filmed by a moving camera; split 1 (200 training videos, 100
test videos). Pipeline, all with the papers' parameters: improved trajectories
(``deepvideo features idt``), per descriptor type PCA to half the dimensions and a 256-component
diagonal GMM fitted on descriptors of the training videos, Fisher vectors (power 0.5, L2),
linear one-vs-rest SVMs with C = 100; the test accuracy is compared with the appearance, motion
and fused rows of the latest recorded demo run (``benchmarks/results/demo.json``, the same
videos and split). Two-stream + IDT needs the demo's score files, which the recorded run does
not keep; run ``deepvideo fuse RUN/fused/test runs/idt --l2`` after ``make demo`` for that row.

    python benchmarks/bench_idt_motion_shapes.py [--data /tmp/idt_accept/data] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, write_result  # noqa: E402
from deepvideo.features import videos  # noqa: E402
from deepvideo.features.encoding import fit_encoder, train_svm  # noqa: E402
from deepvideo.features.extract import FeatureOptions, extract_features, feature_files  # noqa: E402

SYNTH = {"set": "motion-shapes", "videos_per_class": 30, "size": 112, "frames": 32, "seed": 0}


def render(data: Path) -> None:
    from deepvideo.data.synth import RenderParams, generate_dataset

    params = RenderParams(width=SYNTH["size"], height=SYNTH["size"], frames=SYNTH["frames"],
                          mixed_camera=True)
    generate_dataset(SYNTH["set"], data, videos_per_class=SYNTH["videos_per_class"], params=params,
                     seed=SYNTH["seed"], workers=1)


def demo_rows() -> dict:
    runs = json.loads((RESULTS / "demo.json").read_text())["runs"]
    return runs[-1]["rows"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/idt_accept/data"))
    parser.add_argument("--features", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=256_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    manifest = args.data / "synth.json"
    if not manifest.is_file() or not json.loads(manifest.read_text())["complete"]:
        render(args.data)
    feats = args.features or args.data.parent / "idt"
    start = time.perf_counter()
    summary = extract_features([args.data / "videos"], feats, FeatureOptions("idt"), workers=args.workers,
                               progress=False)
    t_extract = time.perf_counter() - start
    if summary.failed:
        raise SystemExit(f"{len(summary.failed)} videos failed: {summary.failed[:3]}")
    files = feature_files(feats)
    train_ids = videos.read_id_list(args.data / "annotations" / "trainlist01.txt")
    test_ids = videos.read_id_list(args.data / "annotations" / "testlist01.txt")
    classes = sorted({videos.class_of(v) for v in files})
    start = time.perf_counter()
    encoder = fit_encoder(videos.sample_descriptors({v: files[v] for v in train_ids}, total=args.samples))
    ids, x = videos.encode_files(files, encoder)
    t_encode = time.perf_counter() - start

    def part(wanted):
        labels = np.array([classes.index(videos.class_of(v)) for v in wanted])
        return videos.select(ids, x, wanted, "vectors"), labels

    svm = train_svm(*part(train_ids))
    x_test, y_test = part(test_ids)
    acc = float((svm.predict(x_test) == y_test).mean())
    demo = demo_rows()
    rows = [["IDT + FV + linear SVM (ours)", f"{100 * acc:.1f}"]]
    rows += [[f"{name} (make demo)", f"{100 * r['video_hit@1']:.1f}"] for name, r in demo.items()]
    appearance = demo["appearance"]["video_hit@1"]
    two_stream = max(r["video_hit@1"] for n, r in demo.items() if n.startswith("late fusion"))
    trajectories = sum(d["trajectories"] for d in summary.done)
    write_result(
        "idt_motion_shapes", title="IDT + Fisher vectors on motion-shapes",
        command="python benchmarks/bench_idt_motion_shapes.py",
        description=__doc__.split("\n\n")[1] + f"\n\nCPU time here: trajectories of {len(files)} videos "
        f"{t_extract:.0f} s ({args.workers} workers, {trajectories} trajectories), PCA + GMM + encoding "
        f"{t_encode:.0f} s, on a machine shared with other jobs.",
        columns=["method (split 1, video accuracy %)", "accuracy"], rows=rows,
        summary={"idt_fv": round(100 * acc, 1), "appearance_cnn": round(100 * appearance, 1),
                 "goal": "IDT+FV > single-frame CNN", "met": acc > appearance,
                 "two_stream": round(100 * two_stream, 1), "two_stream_plus_idt": "not measured"})
    print(rows)


if __name__ == "__main__":
    main()
