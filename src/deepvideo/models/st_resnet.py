"""Spatiotemporal residual networks, ST-ResNet (Feichtenhofer, Pinz & Wildes, NIPS 2016; thesis ch. 4).

Two ResNet-50 streams, applied frame by frame as 3D nets with temporal extent 1
(:class:`ResNetStream`, the 2D ResNet inflated): appearance on RGB frames, motion on ``2L = 20``
stacked flow channels (conv1 by cross-modality initialization). Over ``T`` chunks ``tau`` frames
apart (Table 4.1: ``T = 11`` maps of ``112^2 -> 7^2`` keep their time axis):

* additive residual connections from motion into appearance,
  ``x^a_{l+1} = f(x^a_l) + F(x^a_l + f(x^m_l))``, before the second residual unit of each of
  conv2_x ... conv5_x (4 connections);
* the 1x1 dimensionality-mapping convs (reduce and expand) of those residual units, in both
  streams, become ``1x1x3`` temporal convs initialized as averaging ``w / T'`` (16 layers);
* pool5 (spatial average), one FC per stream applied at every time step: one loss per chunk
  (``dense_temporal``: logits ``[N, K, T]``). ST-ResNet* adds temporal max pooling (window 5,
  stride 2) after pool5 (11 chunks -> 4 positions).

Training returns ``{"logits": appearance [N, K, T'], "aux_motion": motion [N, K, T']}`` (the
engine applies the loss to every time step: ``cross_entropy(logits, label[:, None].expand(-1, T'))``);
eval returns the average of the two streams' non-softmaxed scores, as in the paper's test.
Sub-batch BN is ``deepvideo.nn.norm.convert_sub_batch_norm``. The streams and their
cross-stream wiring (:mod:`deepvideo.nn.resnet_streams`) are shared with ST-Mult and T-ResNet.

Reported (mean of 3 splits, UCF101 / HMDB51): two-stream 89.47/60.59, ST-ResNet 92.76/65.57,
ST-ResNet* 93.46/66.41.
"""

from __future__ import annotations

from collections.abc import Sequence

from deepvideo.models.registry import register_model
from deepvideo.nn.cross_stream import CrossStreamConnection
from deepvideo.nn.resnet_streams import ResNetStream, TwoStreamResNet, make_stream
from deepvideo.nn.temporal import temporalize_conv
from deepvideo.spec import InputSpec

PAPER = (
    "Feichtenhofer, Pinz & Wildes, Spatiotemporal Residual Networks for Video Action Recognition, NIPS 2016"
)
def add_temporal_convs(
    stream: ResNetStream,
    units: Sequence[tuple[int, int]],
    convs: Sequence[str] = ("conv1", "conv3"),
    time_kernel: int = 3,
    init: str = "average",
) -> int:
    """Turn the named convs of the given units into ``1x1xT'`` temporal convs; returns how many."""
    count = 0
    for s, u in units:
        block = stream.stages[s][u].block
        for name in convs:
            conv = getattr(block, name, None)
            if conv is not None:
                setattr(block, name, temporalize_conv(conv, time_kernel, init))
                count += 1
    return count


def st_resnet(
    num_classes: int = 101,
    appearance_depth: int = 50,
    motion_depth: int = 50,
    flow_stack: int = 10,
    width: float = 1.0,
    star: bool = False,
    connect_unit: int = 1,
    op: str = "add",
    kind: str = "residual",
    direction: str = "m2a",
    temporal_convs: Sequence[str] = ("conv1", "conv3"),
    time_kernel: int = 3,
    temporal_head: str | None = None,
    dropout: float = 0.0,
) -> TwoStreamResNet:
    """ST-ResNet (``star=True``: ST-ResNet*, temporal max pooling window 5 stride 2 after pool5).

    ``temporal_convs=()`` leaves out the temporal filters; ``connect_unit`` picks the unit of each
    stage receiving the connection (1 = second unit, the paper's choice).
    """
    head = temporal_head or ("dense_maxpool" if star else "dense")
    app = make_stream(appearance_depth, num_classes, 3, width, temporal_head=head, dropout=dropout)
    mot = make_stream(motion_depth, num_classes, 2 * flow_stack, width, temporal_head=head, dropout=dropout)
    units = [(s, connect_unit) for s in range(4)]
    for stream in (app, mot):
        add_temporal_convs(stream, units, temporal_convs, time_kernel, "average")
    connections = {u: CrossStreamConnection(op, kind, direction) for u in units}
    return TwoStreamResNet(app, mot, connections, flow_stack)


def _spec(chunks: int, stride, crop: int, flow_stack: int) -> InputSpec:
    return InputSpec(
        modalities=("rgb", "flow"),
        num_segments=chunks,
        frame_stride=stride,
        flow_stack=flow_stack,
        crop_size=crop,
        dense_temporal=True,
    )


_SMALL = {"appearance_depth": 18, "motion_depth": 18, "width": 0.25, "flow_stack": 5}

register_model(
    "st_resnet50",
    st_resnet,
    _spec(5, (5, 15), 224, 10),
    paper=PAPER,
    summary="ST-ResNet: two ResNet-50s, additive motion->appearance residual connections, 1x1x3 convs",
)
register_model(
    "st_resnet50_star",
    st_resnet,
    _spec(11, (1, 15), 224, 10),
    paper=PAPER,
    summary="ST-ResNet*: ST-ResNet + temporal max pooling (window 5) after pool5, 11 chunks",
    star=True,
)
register_model(
    "st_resnet_small",
    st_resnet,
    _spec(5, (1, 4), 112, 5),
    paper=PAPER,
    summary="CPU ST-ResNet: two 1/4-width ResNet-18s, L=5, 112 crop, 5 chunks",
    **_SMALL,
)
register_model(
    "st_resnet_star_small",
    st_resnet,
    _spec(7, (1, 4), 112, 5),
    paper=PAPER,
    summary="CPU ST-ResNet*: two 1/4-width ResNet-18s, 7 chunks -> 2 positions",
    star=True,
    **_SMALL,
)
