"""Optical flow: methods, quantized storage, stacking for motion streams, colour coding.

``compute_flow`` runs DIS / Farnebäck / OpenCV TV-L1 or our batched PyTorch TV-L1;
``store`` reads and writes the two-stream JPEG/npz convention; ``stacking`` builds the
temporal-stream inputs of Simonyan & Zisserman 2014; ``colour`` renders flow for people;
``extract`` is the resumable dataset extraction driver behind ``deepvideo flow extract``.
"""

from deepvideo.flow.api import METHODS, compute_flow
from deepvideo.flow.store import num_flow_fields, read_flow, read_flow_meta, write_flow

__all__ = ["METHODS", "compute_flow", "num_flow_fields", "read_flow", "read_flow_meta", "write_flow"]
