"""Annotations, sampling, transforms and datasets.

``deepvideo.data.transforms`` (torch) and ``deepvideo.data.dataset`` are imported on use.
"""

from deepvideo.data.formats import AnnotationError, load_dataset, read_label_map
from deepvideo.data.record import DatasetIndex, VideoRecord
from deepvideo.data.sampling import build_sampler

__all__ = [
    "AnnotationError",
    "DatasetIndex",
    "VideoRecord",
    "build_sampler",
    "load_dataset",
    "read_label_map",
]
