"""Progress with count, rate and ETA, shared by every long-running command.

On a terminal (stderr is a tty) a live rich bar; otherwise (a log file, a pipe, CI) plain
lines on stderr, :class:`LineProgress`: one when a task starts, one every ``step`` of its total
(10 % by default) or every ``interval`` seconds, whichever comes first, and one when it ends,
each with the count, rate, elapsed time and ETA. ``disable=True`` prints nothing.
:func:`stage_line` prints one line for a finished stage of a longer command.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO, TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


class _RateColumn(TextColumn):
    """Items per second with the unit, e.g. ``12.3 frames/s``."""

    def __init__(self, unit: str):
        super().__init__("")
        self.unit = unit

    def render(self, task):
        speed = task.finished_speed or task.speed
        text = f"{speed:,.1f} {self.unit}/s" if speed else f"-- {self.unit}/s"
        return super().render(task).__class__(text, style="progress.data.speed")


def _clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class _LineTask:
    description: str
    total: float | None
    start: float
    status: str = ""
    completed: float = 0.0
    last_time: float = 0.0
    last_step: int = 0
    finished: bool = False
    fields: dict = field(default_factory=dict)


class LineProgress:
    """Line-by-line progress for non-terminals, with the part of rich's ``Progress`` API the
    callers use: ``start``/``stop`` (or ``with``), ``add_task``, ``advance``, ``update``.

    A line is printed when a task is added, when its completion crosses the next multiple of
    ``step`` (a fraction of the total) at least ``min_gap`` seconds after its last line, when
    ``interval`` seconds passed since its last line, and when it completes (or, unfinished,
    at ``stop``). A task shorter than ``min_gap`` thus prints two lines.
    """

    def __init__(self, unit: str = "it", *, file: TextIO | None = None, interval: float = 10.0,
                 step: float = 0.1, min_gap: float = 1.0, clock: Callable[[], float] = time.perf_counter):
        self.unit, self.file, self.interval, self.step, self.clock = unit, file, interval, step, clock
        self.min_gap = min_gap
        self.tasks: dict[int, _LineTask] = {}

    def __enter__(self) -> LineProgress:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Nothing to set up (kept for rich's API)."""

    def stop(self) -> None:
        for task in self.tasks.values():
            if not task.finished:
                self._emit(task, "stopped")
                task.finished = True

    def add_task(self, description: str, total: float | None = None, status: str = "", **fields) -> int:
        now = self.clock()
        task_id = len(self.tasks)
        self.tasks[task_id] = _LineTask(description, total, now, status, last_time=now, fields=fields)
        self._emit(self.tasks[task_id], "started")
        return task_id

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(self, task_id: int, *, advance: float | None = None, completed: float | None = None,
               total: float | None = None, status: str | None = None, description: str | None = None,
               **fields) -> None:
        task = self.tasks[task_id]
        if total is not None:
            task.total = total
        if description is not None:
            task.description = description
        if status is not None:
            task.status = status
        task.fields.update(fields)
        if completed is not None:
            task.completed = completed
        if advance:
            task.completed += advance
        self._maybe_emit(task)

    def _maybe_emit(self, task: _LineTask) -> None:
        if task.finished:
            return
        now = self.clock()
        if task.total and task.completed >= task.total:
            self._emit(task, "done")
            task.finished = True
            return
        step = int(task.completed / task.total / self.step) if task.total and self.step > 0 else 0
        since = now - task.last_time
        if (step > task.last_step and since >= self.min_gap) or since >= self.interval:
            self._emit(task)

    def _emit(self, task: _LineTask, event: str = "") -> None:
        now = self.clock()
        elapsed = now - task.start
        count = f"{task.completed:g}" + (f"/{task.total:g}" if task.total else "") + f" {self.unit}"
        parts = [count]
        if task.total:
            parts.append(f"{100 * task.completed / task.total:.0f}%")
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        if task.completed and elapsed > 0:
            parts.append(f"{rate:,.1f} {self.unit}/s")
        parts.append(f"elapsed {_clock_text(elapsed)}")
        if task.total and rate > 0 and task.completed < task.total:
            parts.append(f"ETA {_clock_text((task.total - task.completed) / rate)}")
        text = f"{task.description}: " + ", ".join(parts)
        if task.status:
            text += f" | {task.status}"
        if event:
            text += f" [{event}]"
        print(text, file=self.file or sys.stderr, flush=True)
        task.last_time = now
        if task.total and self.step > 0:
            task.last_step = int(task.completed / task.total / self.step)


def stage_line(message: str, file: TextIO | None = None) -> None:
    """Print one line for a finished stage of a long command (on a terminal and off it)."""
    print(message, file=file or sys.stderr, flush=True)


def make_progress(unit: str = "it", disable: bool | None = None) -> Progress | LineProgress:
    """Progress with description, count, rate, elapsed and ETA: a rich live bar on a terminal,
    :class:`LineProgress` lines when stderr is not one, nothing with ``disable=True``.

    ``disable=None`` decides by the terminal; ``disable=False`` off a terminal also prints lines.
    """
    if disable is not True and not sys.stderr.isatty():
        return LineProgress(unit)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        disable=bool(disable),
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None,
          unit: str = "it", disable: bool | None = None) -> Iterator[T]:
    """Iterate ``items`` while showing progress (see :func:`make_progress`) with rate and ETA."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress(unit, disable) as progress:
        task = progress.add_task(description, total=total, status="")
        for item in items:
            yield item
            progress.advance(task)


@contextmanager
def progress_task(description: str, total: int | None, unit: str = "it",
                  disable: bool | None = None):
    """Context manager yielding ``advance(n=1, status="")`` for manual progress updates."""
    with make_progress(unit, disable) as progress:
        task = progress.add_task(description, total=total, status="")

        def advance(n: float = 1, status: str | None = None) -> None:
            if status is None:
                progress.advance(task, n)
            else:
                progress.update(task, advance=n, status=status)

        yield advance
