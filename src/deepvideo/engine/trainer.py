"""Former home of the training engine, kept so existing imports keep working.

The engine now lives in :mod:`deepvideo.engine.loop` (``train``, ``main_train``,
``RunResult``, ``NonFiniteLossError``), :mod:`deepvideo.engine.build` (``build_model``,
``build_dataset``, ``load_index``, ``load_checkpoint``, ``dataset_kwargs``),
:mod:`deepvideo.engine.losses` (``compute_loss``) and the recognition task
(:mod:`deepvideo.engine.tasks.recognition`, ``validate``). New code imports from there.
"""

from deepvideo.engine.build import build_dataset, build_model, load_checkpoint, load_index
from deepvideo.engine.loop import NonFiniteLossError, RunResult, main_train, train
from deepvideo.engine.losses import compute_loss

__all__ = ["NonFiniteLossError", "RunResult", "build_dataset", "build_model", "compute_loss",
           "load_checkpoint", "load_index", "main_train", "train"]
