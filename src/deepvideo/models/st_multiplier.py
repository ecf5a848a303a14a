"""Spatiotemporal multiplier networks (Feichtenhofer, Pinz & Wildes, CVPR 2017; thesis ch. 5).

Two ResNet streams (final model: ResNet-50 appearance, ResNet-152 motion) on ``T`` chunks:

* multiplicative motion gating of the appearance residual units,
  ``x^a_{l+1} = f(x^a_l) + F(x^a_l (.) f(x^m_l), W^a_l)``, one gated unit in each of
  conv2_x ... conv5_x (``gated_unit``, default the second unit of each block, as in ST-ResNet;
  ``gated_unit="all"`` gates every unit);
* temporal filters ``1x1xTxCxC``, ``W = 1 (x) f``, bias 0, ``f`` in ``{[1/3,1/3,1/3], [0,1,0]}``
  (``temporal_init="identity_avg"`` / ``"identity_center"``), in both streams, placed
  ``"residual"`` (after the 3x3 conv of the gated units of every block), ``"conv5"`` (the same,
  conv5_x only), ``"shortcut"`` (in the shortcut path of the gated units) or ``None``;
* global temporal max pooling after the last conv, per spatial position
  (eq. 5.10, ``x(i,j,c) = max_t x(i,j,t,c)``), then the spatial average and the classifier
  (``temporal_pool="position_max"``; ``"max"`` pools space first, then time) -> ``[N, K]``;
* the motion stream's dropout (0.8) after its classifier, as the chapter states.

Every ablation of the paper's Table 5.1 is an argument: ``kind`` direct/residual, ``op``
add/mul, ``direction`` m2a/a2m/both. Reported error on split 1 (UCF101 / HMDB51): residual (.)
m2a 8.72/37.23 (residual (+) 9.38/41.89, direct (.) 81.98/77.89); with ``[0,1,0]`` temporal
filters after the 3x3 conv + max pooling 6.00/30.98. Mean of 3 splits: ST-Mult 94.2/68.9.

Training returns ``{"logits": appearance, "aux_motion": motion}``; eval the weighted average of
the scores (``fusion_weights``; the paper weights the temporal stream x3 on HMDB51).
"""

from __future__ import annotations

from deepvideo.models.registry import register_model
from deepvideo.nn.cross_stream import CrossStreamConnection
from deepvideo.nn.resnet_streams import TwoStreamResNet, make_stream
from deepvideo.nn.temporal import temporal_conv
from deepvideo.spec import InputSpec

PAPER = (
    "Feichtenhofer, Pinz & Wildes, Spatiotemporal Multiplier Networks for Video Action Recognition, CVPR 2017"
)
PLACEMENTS = (None, "residual", "conv5", "shortcut")


def st_multiplier(
    num_classes: int = 101,
    appearance_depth: int = 50,
    motion_depth: int = 152,
    flow_stack: int = 10,
    width: float = 1.0,
    gated_unit: int | str = 1,
    op: str = "mul",
    kind: str = "residual",
    direction: str = "m2a",
    temporal_filters: str | None = "residual",
    temporal_init: str = "identity_center",
    time_kernel: int = 3,
    temporal_pool: str = "position_max",
    motion_dropout: float = 0.8,
    fusion_weights: tuple[float, float] = (1.0, 1.0),
) -> TwoStreamResNet:
    """ST-Mult; the defaults are the paper's best model (residual (.) m2a, ``[0,1,0]`` after 3x3 conv)."""
    if temporal_filters not in PLACEMENTS:
        raise ValueError(
            f"unknown temporal filter placement {temporal_filters!r}; choose one of {PLACEMENTS}"
        )
    app = make_stream(appearance_depth, num_classes, 3, width, temporal_head=temporal_pool)
    mot = make_stream(
        motion_depth, num_classes, 2 * flow_stack, width, temporal_head=temporal_pool,
        dropout=motion_dropout, dropout_after_fc=True,
    )
    if gated_unit == "all":
        units = [(s, u) for s in range(4) for u in range(min(len(app.stages[s]), len(mot.stages[s])))]
    elif isinstance(gated_unit, int):
        units = [(s, gated_unit) for s in range(4)]
    else:
        raise ValueError(f"gated_unit must be a unit index or 'all', got {gated_unit!r}")
    if temporal_filters is not None:
        where = [u for u in units if temporal_filters != "conv5" or u[0] == 3]
        for stream in (app, mot):
            for s, u in where:
                unit = stream.stages[s][u]
                if temporal_filters == "shortcut":
                    unit.temporal_shortcut = temporal_conv(
                        unit.out_channels, time_kernel=time_kernel, init=temporal_init
                    )
                else:
                    unit.temporal_residual = temporal_conv(
                        unit.mid_channels, time_kernel=time_kernel, init=temporal_init
                    )
    connections = {u: CrossStreamConnection(op, kind, direction) for u in units}
    return TwoStreamResNet(app, mot, connections, flow_stack, fusion_weights)


def _spec(chunks: int, stride, crop: int, flow_stack: int) -> InputSpec:
    return InputSpec(
        modalities=("rgb", "flow"),
        num_segments=chunks,
        frame_stride=stride,
        flow_stack=flow_stack,
        crop_size=crop,
    )


register_model(
    "st_multiplier_r50_r152",
    st_multiplier,
    _spec(5, (5, 35), 224, 10),
    paper=PAPER,
    summary="ST-Mult: R50 appearance gated by R152 motion, [0,1,0] temporal filters, temporal max pool",
)
register_model(
    "st_multiplier_r50",
    st_multiplier,
    _spec(5, (5, 35), 224, 10),
    paper=PAPER,
    summary="ST-Mult ablation model: two ResNet-50s",
    motion_depth=50,
)
register_model(
    "st_multiplier_small",
    st_multiplier,
    _spec(5, (1, 4), 112, 5),
    paper=PAPER,
    summary="CPU ST-Mult: two 1/4-width ResNet-18s, L=5, 112 crop, 5 chunks",
    appearance_depth=18,
    motion_depth=18,
    width=0.25,
    flow_stack=5,
    motion_dropout=0.5,
)
