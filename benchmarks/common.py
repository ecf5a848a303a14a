"""Shared by every benchmark: machine facts and the JSON result format.

Each ``bench_*.py`` calls :func:`write_result`; ``render_docs.py`` turns all results into
``docs/benchmarks.md``. A result is one JSON object::

    {"name": "decode", "title": "...", "command": "python benchmarks/bench_decode.py",
     "description": "markdown paragraph", "columns": [...], "rows": [[...], ...],
     "summary": {"ratio": 4.2, "goal": ">= 3x", "met": true}, "machine": {...}}
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED_DATA = ROOT.parent / "shared" / "data"


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }


def write_result(name: str, *, title: str, command: str, description: str,
                 columns: list[str], rows: list[list], summary: dict | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` atomically and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"name": name, "title": title, "command": command, "description": description,
               "columns": columns, "rows": rows, "summary": summary or {}, "machine": machine()}
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    os.replace(tmp, path)
    return path


class Timer:
    """``with Timer() as t: ...; t.seconds``"""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
