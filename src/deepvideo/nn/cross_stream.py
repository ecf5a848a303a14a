"""Cross-stream connections between an appearance and a motion residual network.

ST-ResNet (Feichtenhofer, Pinz, Wildes, NIPS 2016) and spatiotemporal multiplier networks
(CVPR 2017) inject one stream's signal into the other's residual unit ``x_{l+1} = f(x_l) + F(x_l)``:

* residual additive:       ``x^a_{l+1} = f(x^a_l) + F(x^a_l + f(x^m_l), W^a_l)``
* residual multiplicative: ``x^a_{l+1} = f(x^a_l) + F(x^a_l (.) f(x^m_l), W^a_l)``
* direct: the injected signal replaces the unit's input on both paths,
  ``x^a_{l+1} = f(x^a_l * x^m_l) + F(x^a_l * x^m_l)`` (``*`` = + or (.)), which the papers show
  hurts (direct (.) fails to train well).

Here ``f`` on the shortcut is the unit's own shortcut (identity or projection) and ``f(x^m_l)``
is the other stream's input to the same unit (already rectified by the previous unit, both
streams having the same widths). Directions: motion -> appearance (``"m2a"``), appearance ->
motion (``"a2m"``) or both, always computed from the two streams' inputs before the unit.

:class:`ResidualUnit` wraps a torchvision ``BasicBlock``/``Bottleneck`` (plain or inflated to
3D) so its residual branch and shortcut can be fed separately, and carries optional temporal
filters after the 3x3 conv and in the shortcut path (ST-Mult's placements) and an optional
parallel temporal branch (T-ResNet).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

CROSS_OPS = ("add", "mul")
CROSS_KINDS = ("residual", "direct")
CROSS_DIRECTIONS = ("m2a", "a2m", "both")


class ResidualUnit(nn.Module):
    """A residual unit with separately callable ``residual(x)`` and ``shortcut(x)``.

    ``temporal_residual`` runs after the (first) 3x3 conv's BN+ReLU; ``temporal_shortcut`` on
    the shortcut output; ``parallel`` is a module ``g(h1) -> tensor`` added to the 3x3 conv's
    activation, where ``h1`` is the activation of the unit's first conv (T-ResNet's temporal
    branch). All default to nothing, so the unit then computes exactly the wrapped block.
    """

    def __init__(
        self,
        block: BasicBlock | Bottleneck,
        temporal_residual: nn.Module | None = None,
        temporal_shortcut: nn.Module | None = None,
        parallel: nn.Module | None = None,
    ):
        super().__init__()
        if not isinstance(block, (BasicBlock, Bottleneck)):
            raise TypeError(
                f"ResidualUnit wraps torchvision BasicBlock/Bottleneck, got {type(block).__name__}"
            )
        self.block = block
        self.temporal_residual = temporal_residual
        self.temporal_shortcut = temporal_shortcut
        self.parallel = parallel

    @property
    def out_channels(self) -> int:
        b = self.block
        return b.bn3.num_features if isinstance(b, Bottleneck) else b.bn2.num_features

    @property
    def mid_channels(self) -> int:
        return self.block.bn1.num_features

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        h1 = b.relu(b.bn1(b.conv1(x)))
        if isinstance(b, Bottleneck):
            h = b.relu(b.bn2(b.conv2(h1)))
            if self.parallel is not None:
                h = h + self.parallel(h1)
            if self.temporal_residual is not None:
                h = self.temporal_residual(h)
            return b.bn3(b.conv3(h))
        h = h1
        if self.parallel is not None:
            h = h + self.parallel(x)
        if self.temporal_residual is not None:
            h = self.temporal_residual(h)
        return b.bn2(b.conv2(h))

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        s = x if self.block.downsample is None else self.block.downsample(x)
        return s if self.temporal_shortcut is None else self.temporal_shortcut(s)

    def forward(self, x: torch.Tensor, residual_input: torch.Tensor | None = None) -> torch.Tensor:
        r = self.residual(x if residual_input is None else residual_input)
        return self.block.relu(r + self.shortcut(x))


def combine(x: torch.Tensor, other: torch.Tensor, op: str) -> torch.Tensor:
    if x.shape != other.shape:
        raise ValueError(
            f"cross-stream connection needs equal shapes, got {tuple(x.shape)} and "
            f"{tuple(other.shape)}; give both streams the same stage widths"
        )
    if op == "add":
        return x + other
    if op == "mul":
        return x * other
    raise ValueError(f"unknown cross-stream op {op!r}; choose one of {CROSS_OPS}")


def cross_stream_unit(
    unit: ResidualUnit, x: torch.Tensor, other: torch.Tensor, op: str = "add", kind: str = "residual"
) -> torch.Tensor:
    """Run ``unit`` on ``x`` with ``other`` injected (residual: into F only; direct: into both)."""
    if kind == "residual":
        return unit(x, residual_input=combine(x, other, op))
    if kind == "direct":
        return unit(combine(x, other, op))
    raise ValueError(f"unknown cross-stream kind {kind!r}; choose one of {CROSS_KINDS}")


class CrossStreamConnection(nn.Module):
    """Connection between the units of two streams at one depth.

    ``forward(unit_a, unit_m, x_a, x_m) -> (y_a, y_m)``; both injections use the inputs before
    the units, so "both" directions is symmetric.
    """

    def __init__(self, op: str = "add", kind: str = "residual", direction: str = "m2a"):
        super().__init__()
        for value, allowed, what in (
            (op, CROSS_OPS, "op"),
            (kind, CROSS_KINDS, "kind"),
            (direction, CROSS_DIRECTIONS, "direction"),
        ):
            if value not in allowed:
                raise ValueError(f"unknown cross-stream {what} {value!r}; choose one of {allowed}")
        self.op, self.kind, self.direction = op, kind, direction

    def forward(
        self, unit_a: ResidualUnit, unit_m: ResidualUnit, x_a: torch.Tensor, x_m: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.direction in ("m2a", "both"):
            y_a = cross_stream_unit(unit_a, x_a, x_m, self.op, self.kind)
        else:
            y_a = unit_a(x_a)
        if self.direction in ("a2m", "both"):
            y_m = cross_stream_unit(unit_m, x_m, x_a, self.op, self.kind)
        else:
            y_m = unit_m(x_m)
        return y_a, y_m

    def extra_repr(self) -> str:
        return f"op={self.op!r}, kind={self.kind!r}, direction={self.direction!r}"
