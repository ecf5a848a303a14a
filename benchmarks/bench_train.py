"""Training throughput of the engine versus a minimal hand-written PyTorch loop.

Both train the same tiny 3D conv net on the same synthetic in-memory clips through the same
DataLoader (``deepvideo.data.dataset.build_loader``: EpochSampler, clip collation), with
SGD + momentum and a per-iteration cosine schedule, on the CPU. The engine adds what a run
needs: the loss/accuracy bookkeeping, NaN checks, CSV/TensorBoard logging, the progress bar
and an atomic checkpoint (weights + optimizer + RNG state) after every epoch. Epochs 2..E are
timed from the end of epoch 1 to the end of epoch E, so the engine's end-of-epoch checkpoints
are included. Throughput is clips per CPU-second of the process (all its threads, including
TensorBoard's writer), with one torch thread, and clips per wall-clock second. Repetitions
interleave the two loops (engine first in odd repetitions, hand-written first in even ones).
Each ratio (CPU time, wall-clock) is the median over repetitions of engine / hand-written
within a repetition: on a machine shared with other jobs the wall time of one run swings by
tens of percent with their load, and short runs in quick alternation (many repetitions of
few epochs) let the two runs of a pair see about the same load; the best run of each loop
is stored too. Goal: engine overhead at most 5% by CPU time and by wall-clock (both
ratios >= 0.95).

    python benchmarks/bench_train.py --reps 15 --epochs 3     # the stored run

    python benchmarks/bench_train.py [--reps 5] [--epochs 4] [--clips 384] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402
from deepvideo.data.dataset import build_loader  # noqa: E402
from deepvideo.engine.config import load_config  # noqa: E402
from deepvideo.engine.loop import train  # noqa: E402
from deepvideo.spec import InputSpec  # noqa: E402

SPEC = InputSpec(modalities=("rgb",), num_frames=8, crop_size=32)


class Tiny3D(nn.Module):
    """conv3d(3->16) BN ReLU, conv3d(16->32, stride 2) BN ReLU, global pool, linear."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 16, 3, padding=1, bias=False),
            nn.BatchNorm3d(16),
            nn.ReLU(inplace=True),
            nn.Conv3d(16, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm3d(32),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(32, num_classes)
        self.input_spec = SPEC

    def forward(self, batch):
        return self.head(self.features(batch["rgb"]).mean(dim=(2, 3, 4)))


class SyntheticClips(torch.utils.data.Dataset):
    """Random float clips [3,8,32,32] held in memory; keys ``(index, epoch)`` like ClipDataset."""

    def __init__(self, n: int, classes: int = 10):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, SPEC.num_frames, SPEC.crop_size, SPEC.crop_size, generator=g)
        self.y = torch.randint(0, classes, (n,), generator=g)
        self.classes = [str(c) for c in range(classes)]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, key):
        i = key[0] if isinstance(key, tuple) else key
        return {"rgb": self.x[i], "label": int(self.y[i]), "index": int(i)}


def _stamp() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _intervals(stamps: list[tuple[float, float]]) -> tuple[float, float]:
    """(wall, cpu) seconds from the first stamp to the last."""
    return stamps[-1][0] - stamps[0][0], stamps[-1][1] - stamps[0][1]


def engine_run(data, epochs: int, batch: int, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of epochs 2..E (from the end of epoch 1 to the end of epoch E)."""
    cfg = load_config(
        overrides=[
            "model.name=bench_tiny3d",
            f"output_dir={out}",
            "data.num_workers=0",
            f"train.epochs={epochs}",
            f"train.batch_size={batch}",
            "train.lr=0.05",
            "train.schedule=cosine",
            "train.amp=none",
            "train.log_every=5",
            "seed=0",
        ]
    )
    torch.manual_seed(0)
    stamps = []
    result = train(
        cfg,
        model=Tiny3D(),
        train_dataset=data,
        progress=None,
        on_epoch_end=lambda row: stamps.append(_stamp()),
    )
    assert len(result.history) == epochs
    return _intervals(stamps)


def manual_run(data, epochs: int, batch: int) -> tuple[float, float]:
    """The minimal loop: forward, cross-entropy, backward, SGD step, cosine lr; nothing else."""
    torch.manual_seed(0)
    model = Tiny3D()
    loader = build_loader(data, batch, train=True, num_workers=0, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    total = epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / total)))
    stamps = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        model.train()
        for b in loader:
            loss = F.cross_entropy(model({"rgb": b["rgb"]}), b["label"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        stamps.append(_stamp())
    return _intervals(stamps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--clips", type=int, default=384)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from deepvideo.models.registry import register_model

    register_model("bench_tiny3d", lambda num_classes=10: Tiny3D(num_classes), SPEC, summary="benchmark net")
    data = SyntheticClips(args.clips)
    timed = (args.epochs - 1) * (args.clips // args.batch) * args.batch
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    rows, rates = [], {"engine": ([], []), "manual": ([], [])}
    try:
        for rep in range(args.reps):
            order = ("engine", "manual") if rep % 2 == 0 else ("manual", "engine")
            for who in order:
                if who == "engine":
                    wall, cpu = engine_run(data, args.epochs, args.batch, tmp / f"run{rep}")
                    shutil.rmtree(tmp / f"run{rep}", ignore_errors=True)
                else:
                    wall, cpu = manual_run(data, args.epochs, args.batch)
                rates[who][0].append(timed / cpu)
                rates[who][1].append(timed / wall)
                rows.append([rep + 1, who, round(timed / cpu, 1), round(timed / wall, 1)])
                print(
                    f"rep {rep + 1} {who:7s} {timed / cpu:8.1f} clips/CPU-s {timed / wall:8.1f} clips/s",
                    flush=True,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    e_cpu, m_cpu = statistics.median(rates["engine"][0]), statistics.median(rates["manual"][0])
    e_wall, m_wall = statistics.median(rates["engine"][1]), statistics.median(rates["manual"][1])
    paired = [[e / m for e, m in zip(rates["engine"][i], rates["manual"][i], strict=True)] for i in (0, 1)]
    ratio, paired_wall = statistics.median(paired[0]), statistics.median(paired[1])
    best_e, best_m = max(rates["engine"][1]), max(rates["manual"][1])
    print(
        f"CPU time: engine {e_cpu:.1f}, hand-written {m_cpu:.1f} clips/CPU-s, ratio {ratio:.3f}; "
        f"wall: engine {e_wall:.1f}, hand-written {m_wall:.1f} clips/s, ratio {paired_wall:.3f} "
        f"(best of {args.reps}: {best_e:.1f} vs {best_m:.1f})"
    )
    write_result(
        "train",
        title="Training engine throughput vs a hand-written loop",
        command=f"python benchmarks/bench_train.py --reps {args.reps} --epochs {args.epochs}",
        description=(
            f"Training a tiny 3D conv net (2 conv3d+BN layers, {SPEC.num_frames}x{SPEC.crop_size}x"
            f"{SPEC.crop_size} clips, batch {args.batch}, {args.clips} synthetic in-memory clips, "
            f"{args.threads} torch thread) with `deepvideo.engine.loop.train` versus a minimal PyTorch "
            f"loop over the same DataLoader, SGD and cosine schedule. The engine's figure includes its "
            f"bookkeeping, CSV and TensorBoard logging, progress bar and a checkpoint after every epoch. "
            f"{args.epochs} epochs per run, the first not timed; {args.reps} interleaved repetitions. "
            f"Throughput per second of CPU time used by the process and per wall-clock second. Both "
            f"ratios are medians over repetitions of engine / hand-written within a repetition (short "
            f"runs in quick alternation, so that both runs of a pair see about the same load from other "
            f"jobs on a shared machine). Goal: overhead at most 5% by both measures."
        ),
        columns=["repetition", "loop", "clips per CPU-second", "clips/s (wall)"],
        rows=rows,
        summary={
            "engine clips/CPU-s": round(e_cpu, 1),
            "hand-written clips/CPU-s": round(m_cpu, 1),
            "engine clips/s (wall, median)": round(e_wall, 1),
            "hand-written clips/s (wall, median)": round(m_wall, 1),
            "engine clips/s (wall, best)": round(best_e, 1),
            "hand-written clips/s (wall, best)": round(best_m, 1),
            "ratio": round(ratio, 3),
            "wall-clock ratio": round(paired_wall, 3),
            "goal": "both ratios >= 0.95 (overhead <= 5%)",
            "met": bool(ratio >= 0.95 and paired_wall >= 0.95),
        },
    )


if __name__ == "__main__":
    main()
