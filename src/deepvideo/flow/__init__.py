"""Optical flow: methods, quantized storage, stacking for motion streams, colour coding.

``compute_flow`` runs DIS / Farnebäck / OpenCV TV-L1 or our batched PyTorch TV-L1
(:mod:`.tvl1`); :mod:`.store` reads and writes the two-stream JPEG/npz convention;
:mod:`.stacking` builds the temporal-stream inputs of Simonyan & Zisserman 2014;
:mod:`.colour` renders flow for people; :mod:`.groundtruth` makes pairs with known flow;
:mod:`.extract` is the resumable dataset driver behind ``deepvideo flow extract``.
"""

from deepvideo.flow import store
from deepvideo.flow.api import METHODS, compute_flow
from deepvideo.flow.colour import colour_code, flow_to_mag, flow_to_uv, flow_to_wheel
from deepvideo.flow.groundtruth import epe
from deepvideo.flow.stacking import (
    backward_flow,
    bidirectional_stack,
    stack_flow,
    subtract_mean_flow,
    trajectory_stack,
)
from deepvideo.flow.store import num_flow_fields, read_flow, read_flow_meta, write_flow

__all__ = ["METHODS", "backward_flow", "bidirectional_stack", "colour_code", "compute_flow", "epe",
           "flow_to_mag", "flow_to_uv", "flow_to_wheel", "num_flow_fields", "read_flow", "read_flow_meta",
           "stack_flow", "store", "subtract_mean_flow", "trajectory_stack", "write_flow"]
