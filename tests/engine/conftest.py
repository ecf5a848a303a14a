"""Engine test fixtures: the helpers module (tiny registered models, tiny videos and recipes).

``engine_helpers.py`` is loaded once, the way a recipe's ``model.imports`` loads it (so the
test models register once per process, and subprocess runs load the same file), and is
made importable as ``engine_helpers`` for the test modules (an entry in ``sys.modules``
made here, before they are collected; no ``sys.path`` edits); the ``helpers`` fixture
returns the same module.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from deepvideo.engine.build import import_model_modules

HELPERS_FILE = Path(__file__).resolve().with_name("engine_helpers.py")


def _load_helpers():
    import_model_modules([str(HELPERS_FILE)])
    module = next(m for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) and Path(m.__file__).resolve() == HELPERS_FILE)
    sys.modules.setdefault("engine_helpers", module)
    return module


HELPERS = _load_helpers()


@pytest.fixture(scope="session")
def helpers():
    """The engine test helpers module (``TinyNet``, ``TensorClips``, ``make_videos``, ...)."""
    return HELPERS
