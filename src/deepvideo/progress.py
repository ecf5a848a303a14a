"""Rich progress bars with rate and ETA, shared by every long-running command."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

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


def make_progress(unit: str = "it", disable: bool | None = None) -> Progress:
    """A rich ``Progress`` with description, bar, count, rate, elapsed and ETA."""
    if disable is None:
        disable = not sys.stderr.isatty()
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
        disable=disable,
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None,
          unit: str = "it", disable: bool | None = None) -> Iterator[T]:
    """Iterate ``items`` while showing a progress bar with rate and ETA."""
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
