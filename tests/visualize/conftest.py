"""A tiny motion stream trained on motion-shapes in seconds, for the acceptance tests: the
model and data of ``benchmarks/bench_visualize.py`` (one definition, loaded from there)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_visualize.py"


@pytest.fixture(scope="session")
def vis_bench():
    spec = importlib.util.spec_from_file_location("bench_visualize", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def motion_stream(vis_bench):
    return vis_bench.train_motion_stream(seed=vis_bench.SEED)
