"""Training logs: CSV history, TensorBoard scalars and a rich progress bar.

Files written into the run folder (rank 0 only):

``metrics.csv``, one row per epoch, columns :data:`EPOCH_COLUMNS` (then any extra keys, e.g. per-head
``val_<head>_top1`` of multi-task runs):
  ``epoch`` (1-based, completed), ``step`` (optimizer steps so far), ``lr`` (at the end of
  the epoch), ``train_loss`` (mean total loss over the epoch's clips), ``train_top1``
  (accuracy of the training clips, %), ``val_loss``, ``val_top1``, ``val_top5`` (%, clip
  level, empty when not validated this epoch), ``clips_per_s`` (training throughput),
  ``epoch_time_s``, ``bad_items`` (videos skipped so far).
``steps.csv``, one row every ``train.log_every`` optimizer steps, :data:`STEP_COLUMNS`:
  ``epoch`` (1-based, running), ``step``, ``lr``, ``loss`` (mean over those steps),
  ``clips_per_s``.
``tensorboard/``: the same values as scalars ``train/loss``, ``train/lr``, ``epoch/<column>``.

On the console: a live progress bar per epoch when stderr is a terminal; otherwise (logs,
pipes, CI) one line per epoch on stdout with its figures (:func:`epoch_line`), e.g.
``epoch 2/10  train loss 0.6931  top-1 55.0%  val top-1 60.0%  412.3 clips/s  3.1 s  ETA 24.8 s``,
ending in ``skipped N`` once N videos could not be read. Each newly skipped video also gets
one line (:func:`skipped_line`) when the loop learns of it, above the bar or among the epoch
lines; ``train.log`` and ``bad_items.json`` keep the details.

On resume the CSV files are rewritten from the history stored in the checkpoint, so rows
logged after the last checkpoint by the killed process disappear.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from pathlib import Path

from deepvideo.io.atomic import atomic_write_text
from deepvideo.progress import make_progress

EPOCH_COLUMNS = [
    "epoch",
    "step",
    "lr",
    "train_loss",
    "train_top1",
    "val_loss",
    "val_top1",
    "val_top5",
    "clips_per_s",
    "epoch_time_s",
    "bad_items",
]
STEP_COLUMNS = ["epoch", "step", "lr", "loss", "clips_per_s"]


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def epoch_columns(rows: list[dict]) -> list[str]:
    """:data:`EPOCH_COLUMNS`, then any extra keys of the rows (e.g. per-head ``val_<head>_top1``)."""
    return EPOCH_COLUMNS + sorted({k for r in rows for k in r} - set(EPOCH_COLUMNS))


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in columns])
    atomic_write_text(path, buf.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of ``metrics.csv`` / ``steps.csv`` with numbers parsed (empty -> None)."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            parsed = {}
            for k, v in row.items():
                if v == "":
                    parsed[k] = None
                else:
                    try:
                        parsed[k] = int(v) if k in ("epoch", "step", "bad_items") else float(v)
                    except ValueError:
                        parsed[k] = v
            out.append(parsed)
    return out


def _seconds(s: float) -> str:
    if s < 90:
        return f"{s:.1f} s"
    return f"{s / 60:.1f} min" if s < 5400 else f"{s / 3600:.1f} h"


def epoch_line(row: dict, epochs: int, eta_s: float | None) -> str:
    """One line of an epoch's figures: epoch i/n, train loss, top-1, val top-1, clips/s, time, ETA."""
    parts = [f"epoch {row['epoch']}/{epochs}"]
    if row.get("train_loss") is not None:
        parts.append(f"train loss {row['train_loss']:.4f}")
    if row.get("train_top1") is not None:
        parts.append(f"top-1 {row['train_top1']:.1f}%")
    if row.get("val_top1") is not None:
        parts.append(f"val top-1 {row['val_top1']:.1f}%")
    elif row.get("val_loss") is not None:
        parts.append(f"val loss {row['val_loss']:.4f}")
    if row.get("clips_per_s") is not None:
        parts.append(f"{row['clips_per_s']:.1f} clips/s")
    if row.get("epoch_time_s") is not None:
        parts.append(_seconds(row["epoch_time_s"]))
    if eta_s is not None:
        parts.append(f"ETA {_seconds(eta_s)}")
    if row.get("bad_items"):
        parts.append(f"skipped {row['bad_items']}")
    return "  ".join(parts)


def skipped_line(item: dict) -> str:
    """The console line for a video skipped in training: its path, why, and where it is listed."""
    where = f" (listed at {item['source']})" if item.get("source") else ""
    return f"skipped unreadable video {item['path']}{where}: {item.get('error', 'unknown error')}"


class RunLogger:
    """CSV + TensorBoard + progress bar or epoch lines; every method is a no-op when ``enabled`` is False.

    ``progress``: ``None`` shows the live bar when stderr is a terminal, ``True`` always,
    ``False`` never. Whenever no bar is shown, or stdout is not a terminal, each epoch
    prints :func:`epoch_line` to ``stream`` (default stdout).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        enabled: bool = True,
        tensorboard: bool = True,
        progress: bool | None = None,
        stream=None,
    ):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.epochs: list[dict] = []
        self.steps: list[dict] = []
        self._tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:  # tensorboard is a dependency; stay usable without it
                self._tb = None
        self._show_progress = progress
        self._progress = None
        self._task = None
        self._stream = stream
        self._epochs_total = 0
        self._session_times: list[float] = []  # epoch times of this process (the ETA)
        self._skipped = 0  # videos reported by :meth:`skipped` (shown in the bar's status)

    def _lines(self) -> bool:
        stream = self._stream or sys.stdout
        bar = self._show_progress if self._show_progress is not None else sys.stderr.isatty()
        return not bar or not stream.isatty()

    def restore(self, epochs: list[dict], steps: list[dict]) -> None:
        """Adopt the history saved in a checkpoint and rewrite the CSV files (resume)."""
        self.epochs, self.steps = [dict(r) for r in epochs], [dict(r) for r in steps]
        if self.enabled:
            _write_csv(self.run_dir / "metrics.csv", epoch_columns(self.epochs), self.epochs)
            _write_csv(self.run_dir / "steps.csv", STEP_COLUMNS, self.steps)

    def log_step(self, row: dict) -> None:
        self.steps.append(dict(row))
        if not self.enabled:
            return
        path = self.run_dir / "steps.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            if new:
                w.writerow(STEP_COLUMNS)
            w.writerow([_fmt(row.get(c)) for c in STEP_COLUMNS])
        if self._tb is not None:
            self._tb.add_scalar("train/loss", row["loss"], row["step"])
            self._tb.add_scalar("train/lr", row["lr"], row["step"])
            self._tb.add_scalar("train/clips_per_s", row["clips_per_s"], row["step"])

    def log_epoch(self, row: dict) -> None:
        self.epochs.append(dict(row))
        if not self.enabled:
            return
        columns = epoch_columns(self.epochs)
        _write_csv(self.run_dir / "metrics.csv", columns, self.epochs)
        if self._tb is not None:
            for k in columns[2:]:
                v = row.get(k)
                if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
                    self._tb.add_scalar(f"epoch/{k}", v, row["epoch"])
            self._tb.flush()
        if self._lines():
            if row.get("epoch_time_s") is not None:
                self._session_times.append(float(row["epoch_time_s"]))
            left = self._epochs_total - int(row["epoch"])
            eta = sum(self._session_times) / len(self._session_times) * left if self._session_times else None
            print(epoch_line(row, self._epochs_total, eta), file=self._stream or sys.stdout, flush=True)

    def skipped(self, item: dict) -> None:
        """One console line for a newly skipped video (``{"path", "source", "error"}``)."""
        self._skipped += 1
        if not self.enabled:
            return
        console = getattr(self._progress, "console", None)  # a live rich bar: print above it
        if console is not None:
            console.print(skipped_line(item), soft_wrap=True, markup=False, highlight=False)
        else:
            print(skipped_line(item), file=self._stream or sys.stdout, flush=True)

    # progress ---------------------------------------------------------------------------
    def start_epoch(self, epoch: int, epochs: int, total_clips: int, done_clips: int = 0) -> None:
        self._epochs_total = epochs
        if not self.enabled or self._lines():  # off a terminal the epoch line says it all
            return
        self._progress = make_progress(
            "clips", disable=None if self._show_progress is None else not self._show_progress
        )
        self._progress.start()
        self._task = self._progress.add_task(f"epoch {epoch}/{epochs}", total=total_clips, status="")
        if done_clips:
            self._progress.update(self._task, completed=done_clips)
        self._t0 = time.perf_counter()

    def advance(self, clips: int, loss: float, lr: float) -> None:
        if self._progress is not None:
            status = f"loss {loss:.4f} lr {lr:.2e}" + (f" skipped {self._skipped}" if self._skipped else "")
            self._progress.update(self._task, advance=clips, status=status)

    def end_epoch(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def close(self) -> None:
        self.end_epoch()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
