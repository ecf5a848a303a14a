"""A tiny motion stream trained on motion-shapes in a few seconds, for the acceptance tests.

The model is the zoo recipe's motion stream (``two_stream_temporal_small``: ResNet-18 at 1/4
width, mean displacement subtraction) at test size: 32x32 frames, a stack of L = 4 flow fields,
all ten classes. Its flow is the renderer's exact motion field (the object's own translation,
rotation and scaling between frames; background still), not DIS: at 32-48 px DIS does not
resolve the rotations (the curl of its fields on rotation clips is near zero with either sign),
so a net trained on it cannot show them. ``benchmarks/bench_visualize.py`` runs the same checks
on DIS flow at a larger size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

SIZE, FRAMES, STRIDE, PER_CLASS, STEPS, WIDTH = 32, 5, 4, 10, 200, 16


def exact_flow(info: dict, width: int, height: int, stride: int = 1) -> torch.Tensor:
    """Flow ``[T-1, 2, H, W]`` (px) between every ``stride``-th frame of a rendered static-camera
    object clip, from its ground truth (object pose per frame and coverage mask)."""
    keep = slice(None, None, stride)
    center, size, angle = info["center"][keep], info["size"][keep], info["angle"][keep]
    mask = info["mask"][keep].astype(np.float32) / 255.0
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    fields = []
    for t in range(len(center) - 1):
        dx = (xs - center[t, 0] + width / 2) % width - width / 2
        dy = (ys - center[t, 1] + height / 2) % height - height / 2
        move = (center[t + 1] - center[t] + np.array([width, height]) / 2) % (width, height) - np.array(
            [width, height]
        ) / 2
        k, a = size[t + 1] / size[t], angle[t + 1] - angle[t]
        c, s = k * math.cos(a), k * math.sin(a)
        u = move[0] + c * dx - s * dy - dx
        v = move[1] + s * dx + c * dy - dy
        on = mask[t] > 0.5
        fields.append(np.stack([np.where(on, u, 0.0), np.where(on, v, 0.0)]))
    return torch.from_numpy(np.stack(fields).astype(np.float32))


def render_set(per_class: int, first: int = 0):
    """Flows ``[N, 2, L, H, W]``, labels, masks ``[N, L, H, W]`` (bool) of motion-shapes clips."""
    from deepvideo.data.synth.common import RenderParams, video_rngs
    from deepvideo.data.synth.motion_shapes import CLASSES, SET

    params = RenderParams(width=SIZE, height=SIZE, frames=(FRAMES - 1) * STRIDE + 1)
    flows, labels, masks = [], [], []
    for c in range(len(CLASSES)):
        for v in range(first, first + per_class):
            clip = SET.render(c, v, *video_rngs(0, SET.name, c, v), params)
            flows.append(exact_flow(clip.info, SIZE, SIZE, STRIDE).transpose(0, 1))
            labels.append(c)
            masks.append(torch.from_numpy(clip.info["mask"][:-1:STRIDE] > 127))
    return torch.stack(flows), torch.tensor(labels), torch.stack(masks)


@dataclass
class MotionStream:
    model: torch.nn.Module
    classes: tuple[str, ...]
    flows: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor


@pytest.fixture(scope="session")
def motion_stream() -> MotionStream:
    from deepvideo.data.synth.motion_shapes import CLASSES
    from deepvideo.models.demo_nets import TinyCNN
    from deepvideo.nn.snippet_net import SnippetNet
    from deepvideo.spec import InputSpec

    torch.manual_seed(0)
    flows, labels, masks = render_set(PER_CLASS)
    net = TinyCNN(2 * (FRAMES - 1), len(CLASSES), width=WIDTH, dropout=0.0)
    model = SnippetNet(net, "flow", flow_stack=FRAMES - 1, mean_subtraction=True)
    model.input_spec = InputSpec(
        modalities=("flow",), flow_stack=FRAMES - 1, crop_size=SIZE, mean=(0.0, 0.0), std=(1.0, 1.0)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(STEPS):
        idx = torch.randint(0, len(flows), (16,), generator=g)
        loss = torch.nn.functional.cross_entropy(model({"flow": flows[idx]}), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test_flows, test_labels, test_masks = render_set(2, first=100)
    return MotionStream(model, CLASSES, test_flows, test_labels, test_masks)
