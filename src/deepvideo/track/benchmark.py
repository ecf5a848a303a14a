"""Benchmark trackers on a dataset under one protocol: run (resumable, sharded), evaluate,
report. What ``deepvideo track bench`` does.

::

    report = benchmark("data/OTB100", ["eco_hc", "kcf"], protocol="ope", report_dir="report")

Results go to ``results_dir`` (default ``report_dir/results``) in the protocol's toolkit layout
(:mod:`deepvideo.track.layouts`); a tracker's finished sequences are not run again. With a
shard (``--shard i/n`` or torchrun's ranks) each process runs its share; the report is written
by the process that finds every tracker's results complete (run without a shard, or once more
after all shards finished, to write it).
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass
from pathlib import Path

from deepvideo.track import evaluate, metrics
from deepvideo.track.datasets import Sequence, load_dataset
from deepvideo.track.layouts import has_run
from deepvideo.track.registry import get_tracker_info
from deepvideo.track.report import write_report

PROTOCOLS = {  # protocol -> (result layout, default repetitions)
    "ope": ("otb", 1),
    "got10k": ("got10k", 3),
    "vot": ("vot", 1),
}


@dataclass
class BenchmarkResult:
    report: Path | None          # report.md, or None while other shards are unfinished
    evaluations: list[dict]      # one evaluation per tracker (empty while unfinished)
    results_dir: Path


def _run(name: str, protocol: str, sequences: list[Sequence], results_dir: Path,
         repetitions: int, shard, progress: bool) -> None:
    if protocol == "vot":
        evaluate.run_vot(name, sequences, results_dir, repetitions=repetitions, shard=shard,
                         progress=progress)
    else:
        evaluate.run_ope(name, sequences, results_dir, layout=PROTOCOLS[protocol][0],
                         repetitions=repetitions, shard=shard, progress=progress)


def _evaluate(name: str, protocol: str, sequences: list[Sequence], results_dir: Path,
              eao_interval) -> dict:
    tracker_dir = results_dir / name
    if protocol == "ope":
        return evaluate.evaluate_ope(tracker_dir, sequences, layout="otb")
    if protocol == "got10k":
        return evaluate.evaluate_got10k(tracker_dir, sequences, layout="got10k")
    return evaluate.evaluate_vot(tracker_dir, sequences, eao_interval=eao_interval)


def complete(name: str, protocol: str, sequences: list[Sequence], results_dir: Path,
             repetitions: int) -> bool:
    """Every sequence has every repetition of ``name``'s results."""
    layout = PROTOCOLS[protocol][0]
    return all(has_run(results_dir / name, layout, s.name, r)
               for s in sequences for r in range(1, repetitions + 1))


def benchmark(dataset: str | Path | list[Sequence], trackers: Seq[str], protocol: str = "ope",
              report_dir: str | Path = "track_report", *, results_dir: str | Path | None = None,
              repetitions: int | None = None, shard: tuple[int, int] | None = None,
              eao_interval=metrics.VOT2018_EAO_INTERVAL, progress: bool = True,
              title: str | None = None) -> BenchmarkResult:
    """Run ``trackers`` (registered names) on ``dataset`` (a folder of sequences, or loaded
    sequences) under ``protocol`` (ope, got10k, vot) and write the report."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if not trackers:
        raise ValueError("no trackers to benchmark")
    for name in trackers:
        get_tracker_info(name)  # an unknown name fails before any work
    sequences = load_dataset(dataset) if isinstance(dataset, (str, Path)) else list(dataset)
    report_dir = Path(report_dir)
    results_dir = Path(results_dir) if results_dir is not None else report_dir / "results"
    repetitions = repetitions or PROTOCOLS[protocol][1]
    for name in trackers:
        _run(name, protocol, sequences, results_dir, repetitions, shard, progress)
    if not all(complete(n, protocol, sequences, results_dir, repetitions) for n in trackers):
        return BenchmarkResult(None, [], results_dir)
    evaluations = [_evaluate(n, protocol, sequences, results_dir, eao_interval) for n in trackers]
    label = title or f"{protocol.upper()} on {len(sequences)} sequences"
    return BenchmarkResult(write_report(evaluations, report_dir, title=label), evaluations,
                           results_dir)
