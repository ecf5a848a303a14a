"""Annotations, sampling, transforms and datasets."""

from deepvideo.data.record import DatasetIndex, VideoRecord

__all__ = ["DatasetIndex", "VideoRecord"]
