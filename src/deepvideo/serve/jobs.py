"""A bounded worker pool for predictions: at most ``workers`` run at once and ``queue`` more
wait; beyond that a request is refused (HTTP 503) instead of piling up frames in memory.
Each job keeps its state and progress so the web page can poll it."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field


class Busy(Exception):
    """All workers busy and the queue full."""


@dataclass
class Job:
    """One prediction: ``state`` queued / running / done / error, ``progress`` in [0, 1]."""

    id: str
    state: str = "queued"
    progress: float = 0.0
    stage: str = "queued"
    result: dict | None = None
    error: tuple[int, str] | None = None  # (HTTP status, message)
    future: Future | None = field(default=None, repr=False)

    def public(self) -> dict:
        out = {"id": self.id, "state": self.state, "stage": self.stage, "progress": round(self.progress, 4)}
        if self.result is not None:
            out["result"] = self.result
        if self.error is not None:
            out["status"], out["error"] = self.error
        return out


class JobPool:
    """``submit(fn)`` runs ``fn(job)`` on a worker thread; finished jobs are kept (the last ``keep``)."""

    def __init__(self, workers: int = 1, queue: int = 4, keep: int = 64):
        if workers < 1 or queue < 0:
            raise ValueError(f"workers must be >= 1 and queue >= 0, got {workers} and {queue}")
        self.capacity = workers + queue
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="deepvideo-serve")
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.keep = keep
        self.lock = threading.Lock()
        self.pending = 0

    def reserve(self) -> Job:
        """A new job holding a place in the pool (raises :class:`Busy` when there is none)."""
        with self.lock:
            if self.pending >= self.capacity:
                raise Busy(f"{self.pending} predictions running or queued (the limit); retry later")
            self.pending += 1
            job = Job(uuid.uuid4().hex)
            self.jobs[job.id] = job
            while len(self.jobs) > self.keep:
                oldest = next(iter(self.jobs.values()))
                if oldest.state not in ("done", "error"):
                    break
                self.jobs.popitem(last=False)
        return job

    def release(self, job: Job) -> None:
        """Give back a reserved place that will not run (the request failed before submitting)."""
        with self.lock:
            self.pending -= 1
            self.jobs.pop(job.id, None)

    def submit(self, job: Job, fn: Callable[[Job], None]) -> Future:
        def run():
            job.state = "running"
            try:
                fn(job)
            finally:
                with self.lock:
                    self.pending -= 1

        job.future = self.executor.submit(run)
        return job.future

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
