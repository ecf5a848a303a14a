"""Two-stream ConvNets (Simonyan & Zisserman, NIPS 2014).

* Spatial stream: a 2D ConvNet (CNN-M-2048) on single RGB frames.
* Temporal stream: the same net on a stack of ``L`` flow fields (1, 5, 10) as ``2L`` input
  channels ordered ``d^x_1, d^y_1, d^x_2, d^y_2, ...`` (``I(2k-1) = d^x_k, I(2k) = d^y_k``). The
  stacking variants (trajectory, bidirectional) are built by the data side
  (``deepvideo.flow.stacking``); per-field mean flow subtraction (camera motion) can also be done
  here with ``mean_subtraction=True`` (or ``"affine"``: :func:`deepvideo.nn.inputs.remove_camera_motion`).
* Late fusion (:class:`TwoStream`): the average of the two streams' softmax scores (the linear
  SVM fusion on L2-normalized scores lives in ``deepvideo.engine.fusion``).
* Multi-task learning (:class:`MultiTaskSnippetNet`): one net, one classification head per
  dataset (UCF101 101 + HMDB51 51), losses summed.

Batches hold ``rgb [N, 3, K*F, H, W]`` / ``flow [N, 2, K*L, H, W]`` (K snippets); every
snippet goes through the 2D net and the class scores are averaged over snippets ("consensus").

Reported (UCF101 split 1): spatial from scratch 42.5%, pre-trained + fine-tuned 72.8%; temporal
L=1 73.9%, L=5 80.4%, L=10 81.0% (79.9% without mean subtraction); 3-split means: spatial 73.0,
temporal 83.7, averaging 86.9, SVM 88.0 (UCF101).

The snippet machinery (:class:`~deepvideo.nn.snippet_net.SnippetNet`, the reshapes in
:mod:`deepvideo.nn.inputs`) is shared with TSN, LRCN and the fusion nets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.backbones2d import build_backbone
from deepvideo.nn.heads import strip_classifier
from deepvideo.nn.snippet_net import SnippetNet
from deepvideo.spec import FLOW_SCALE, InputSpec

PAPER = "Simonyan & Zisserman, Two-Stream Convolutional Networks for Action Recognition in Videos, NIPS 2014"


class MultiTaskSnippetNet(SnippetNet):
    """One net, one linear head per task (``heads={"ucf101": 101, "hmdb51": 51}``).

    Training mode returns ``{"logits": <first head>, "aux_<name>": <other heads>}``; eval mode
    returns the ``eval_head`` logits (default: the first). The summed multi-task loss needs one
    label per head: use :func:`multitask_loss` with ``batch["label_<name>"]`` (-1 where a sample
    does not belong to that task's dataset). ``deepvideo train`` does this with a
    ``data.multitask`` recipe (configs/ucf101/two_stream_multitask.yaml); the engine sets
    ``eval_head`` to validate each head on its own dataset.
    """

    def __init__(self, backbone: nn.Module, heads: dict[str, int], eval_head: str | None = None, **kw):
        if not heads:
            raise ValueError("MultiTaskSnippetNet needs at least one head")
        trunk, dim = strip_classifier(backbone)
        super().__init__(trunk, **kw)
        self.head_names = list(heads)
        self.heads = nn.ModuleDict({k: nn.Linear(dim, v) for k, v in heads.items()})
        self.eval_head = eval_head or self.head_names[0]
        if self.eval_head not in heads:
            raise ValueError(f"eval_head {self.eval_head!r} is not one of {self.head_names}")

    def forward(self, batch: dict):
        x, n = self.snippets(batch)
        f = self.backbone(x)
        if not self.training:
            return self.merge(self.heads[self.eval_head](f), n)
        out = {}
        for i, name in enumerate(self.head_names):
            out["logits" if i == 0 else f"aux_{name}"] = self.merge(self.heads[name](f), n)
        return out


def multitask_loss(outputs: dict, batch: dict, head_names: list[str]) -> torch.Tensor:
    """Sum of per-head cross-entropies; head ``h`` uses ``batch["label_<h>"]`` (-1 = not this task).

    The first head falls back to ``batch["label"]``.
    """
    total = 0.0
    for i, name in enumerate(head_names):
        logits = outputs["logits" if i == 0 else f"aux_{name}"]
        key = f"label_{name}"
        if key not in batch and i == 0:
            key = "label"
        if key not in batch:
            raise KeyError(f"multi-task loss needs batch[{key!r}] (use -1 for samples of other tasks)")
        labels = batch[key]
        if (labels >= 0).any():
            total = total + F.cross_entropy(logits, labels, ignore_index=-1)
    return total


class TwoStream(nn.Module):
    """Late fusion of a spatial and a temporal net by (weighted) averaging of softmax scores.

    Eval mode returns ``log(w_s p_s + w_t p_t) / (w_s + w_t)`` (log of the averaged class
    probabilities, so softmax of the output is the averaged score). Training mode returns
    ``{"logits": spatial, "aux_temporal": temporal}``, i.e. both streams trained by their own
    loss, as separate nets would be.
    """

    def __init__(self, spatial: nn.Module, temporal: nn.Module, weights: tuple[float, float] = (1.0, 1.0)):
        super().__init__()
        self.spatial, self.temporal = spatial, temporal
        self.weights = tuple(float(w) for w in weights)

    def forward(self, batch: dict):
        s, t = self.spatial(batch), self.temporal(batch)
        if self.training:
            return {"logits": s, "aux_temporal": t}
        ws, wt = self.weights
        p = (ws * s.softmax(-1) + wt * t.softmax(-1)) / (ws + wt)
        return p.clamp_min(1e-12).log()


def two_stream_spatial(
    num_classes: int = 101,
    backbone: str = "vgg_m_2048",
    input_size: int = 224,
    num_segments: int = 1,
    **backbone_kw,
) -> SnippetNet:
    """Spatial stream: one RGB frame per snippet."""
    net = build_backbone(backbone, num_classes, 3, input_size, **backbone_kw)
    return SnippetNet(net, "rgb", num_frames=1, num_segments=num_segments)


def two_stream_temporal(
    num_classes: int = 101,
    backbone: str = "vgg_m_2048",
    input_size: int = 224,
    flow_stack: int = 10,
    mean_subtraction: bool | str = False,
    num_segments: int = 1,
    **backbone_kw,
) -> SnippetNet:
    """Temporal stream: ``2L`` flow channels per snippet."""
    net = build_backbone(backbone, num_classes, 2 * flow_stack, input_size, **backbone_kw)
    return SnippetNet(
        net, "flow", flow_stack=flow_stack, num_segments=num_segments, mean_subtraction=mean_subtraction
    )


def two_stream(
    num_classes: int = 101,
    backbone: str = "vgg_m_2048",
    input_size: int = 224,
    flow_stack: int = 10,
    mean_subtraction: bool | str = False,
    weights: tuple[float, float] = (1.0, 1.0),
    **backbone_kw,
) -> TwoStream:
    return TwoStream(
        two_stream_spatial(num_classes, backbone, input_size, **backbone_kw),
        two_stream_temporal(num_classes, backbone, input_size, flow_stack, mean_subtraction, **backbone_kw),
        weights,
    )


def two_stream_multitask(
    num_classes: int = 101,
    heads: dict[str, int] | None = None,
    backbone: str = "vgg_m_2048",
    input_size: int = 224,
    flow_stack: int = 10,
    modality: str = "flow",
    mean_subtraction: bool | str = False,
    **backbone_kw,
) -> MultiTaskSnippetNet:
    """Multi-task net (flow or RGB); ``heads`` default to ``{"ucf101": num_classes, "hmdb51": 51}``."""
    heads = dict(heads or {"ucf101": num_classes, "hmdb51": 51})
    in_ch = 2 * flow_stack if modality == "flow" else 3
    net = build_backbone(backbone, 1, in_ch, input_size, **backbone_kw)
    return MultiTaskSnippetNet(
        net, heads, modality=modality, flow_stack=flow_stack, mean_subtraction=mean_subtraction
    )


RGB = InputSpec(modalities=("rgb",), crop_size=224)
_SMALL = {"backbone": "resnet18", "width": 0.25, "input_size": 112}


def _flow_spec(L: int, crop: int = 224) -> InputSpec:
    return InputSpec(modalities=("flow",), flow_stack=L, crop_size=crop, mean=(0.0, 0.0),
                     std=(FLOW_SCALE, FLOW_SCALE))


register_model(
    "two_stream_spatial",
    two_stream_spatial,
    RGB,
    paper=PAPER,
    summary="spatial stream, CNN-M-2048 on one RGB frame",
    dropout=(0.9, 0.9),
)
_TEMPORAL = {"mean_subtraction": True, "dropout": (0.9, 0.8)}


@register_model(spec=_flow_spec(5), paper=PAPER, **_TEMPORAL)
def two_stream_temporal_l5(num_classes: int = 101, *, flow_stack: int = 5, **kw) -> nn.Module:
    """temporal stream, CNN-M-2048 on a stack of L=5 flow fields"""
    return two_stream_temporal(num_classes, flow_stack=flow_stack, **{**_TEMPORAL, **kw})


@register_model(spec=_flow_spec(1), paper=PAPER, **_TEMPORAL)
def two_stream_temporal_l1(num_classes: int = 101, *, flow_stack: int = 1, **kw) -> nn.Module:
    """temporal stream, CNN-M-2048 on a stack of L=1 flow fields"""
    return two_stream_temporal(num_classes, flow_stack=flow_stack, **{**_TEMPORAL, **kw})


register_model(
    "two_stream_temporal",
    two_stream_temporal,
    _flow_spec(10),
    paper=PAPER,
    summary="temporal stream, CNN-M-2048 on a stack of L=10 flow fields",
    flow_stack=10,
    **_TEMPORAL,
)
register_model(
    "two_stream",
    two_stream,
    InputSpec(modalities=("rgb", "flow"), flow_stack=10),
    paper=PAPER,
    summary="spatial + temporal CNN-M-2048, softmax scores averaged",
    mean_subtraction=True,
)
register_model(
    "two_stream_multitask",
    two_stream_multitask,
    _flow_spec(10),
    paper=PAPER,
    summary="temporal net with UCF101 and HMDB51 heads, losses summed",
    mean_subtraction=True,
)
register_model(
    "two_stream_spatial_small",
    two_stream_spatial,
    RGB.replace(crop_size=112),
    paper=PAPER,
    summary="CPU spatial stream: ResNet-18 at 1/4 width, 112 crop",
    **_SMALL,
)
register_model(
    "two_stream_temporal_small",
    two_stream_temporal,
    _flow_spec(5, 112),
    paper=PAPER,
    summary="CPU temporal stream: ResNet-18 at 1/4 width, L=5, 112 crop",
    flow_stack=5,
    mean_subtraction=True,
    **_SMALL,
)
register_model(
    "two_stream_small",
    two_stream,
    InputSpec(modalities=("rgb", "flow"), flow_stack=5, crop_size=112),
    paper=PAPER,
    summary="CPU two-stream: two 1/4-width ResNet-18s, L=5",
    flow_stack=5,
    mean_subtraction=True,
    **_SMALL,
)
