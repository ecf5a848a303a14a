"""A 2D ConvNet applied to every snippet of a clip, its scores merged by a consensus
(two-stream nets, Simonyan & Zisserman 2014; TSN, Wang et al. 2016)."""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.nn.inputs import flow_to_snippets, rgb_to_snippets, rgbdiff_to_snippets

CONSENSUS = ("avg", "max", "weighted")


class SnippetNet(nn.Module):
    """A 2D ConvNet applied to every snippet of one modality, scores merged by a consensus.

    ``modality``: ``"rgb"`` (``num_frames`` frames stacked as channels, 1 for the spatial stream),
    ``"flow"`` (``flow_stack`` fields -> ``2L`` channels) or ``"rgbdiff"``. ``consensus``:
    ``"avg"``, ``"max"`` or ``"weighted"`` (learned per-segment weights, initialized to ``1/K``).
    """

    def __init__(
        self,
        backbone: nn.Module,
        modality: str = "rgb",
        num_frames: int = 1,
        flow_stack: int = 0,
        num_segments: int = 1,
        consensus: str = "avg",
        mean_subtraction: bool | str = False,
    ):
        super().__init__()
        if modality not in ("rgb", "flow", "rgbdiff"):
            raise ValueError(f"unknown modality {modality!r}; use rgb, flow or rgbdiff")
        if consensus not in CONSENSUS:
            raise ValueError(f"unknown consensus {consensus!r}; choose one of {CONSENSUS}")
        if modality == "flow" and flow_stack < 1:
            raise ValueError("a flow SnippetNet needs flow_stack >= 1")
        self.backbone = backbone
        self.modality, self.num_frames, self.flow_stack = modality, num_frames, flow_stack
        self.num_segments, self.consensus, self.mean_subtraction = num_segments, consensus, mean_subtraction
        self.segment_weights = (
            nn.Parameter(torch.full((num_segments,), 1.0 / num_segments)) if consensus == "weighted" else None
        )

    def snippets(self, batch: dict) -> tuple[torch.Tensor, int]:
        """The ``[N*K, C, H, W]`` snippet tensor of this modality and the batch size N."""
        key = "rgb" if self.modality == "rgbdiff" and "rgbdiff" not in batch else self.modality
        if key not in batch:
            raise KeyError(f"this {self.modality} stream needs batch[{key!r}]; the batch has {sorted(batch)}")
        x = batch[key]
        if self.modality == "flow":
            return flow_to_snippets(x, self.flow_stack, self.mean_subtraction), x.shape[0]
        if self.modality == "rgbdiff":
            return rgbdiff_to_snippets(x, self.num_frames), x.shape[0]
        return rgb_to_snippets(x, self.num_frames), x.shape[0]

    def merge(self, scores: torch.Tensor, n: int) -> torch.Tensor:
        """``[N*K, ...]`` -> ``[N, ...]`` by the consensus over the K snippets."""
        s = scores.reshape(n, -1, *scores.shape[1:])
        if self.consensus == "max":
            return s.amax(dim=1)
        if self.consensus == "weighted":
            if s.shape[1] != self.num_segments:
                raise ValueError(
                    f"weighted consensus was built for {self.num_segments} segments, got {s.shape[1]}"
                )
            return torch.einsum("nk...,k->n...", s, self.segment_weights)
        return s.mean(dim=1)

    def forward(self, batch: dict) -> torch.Tensor:
        x, n = self.snippets(batch)
        return self.merge(self.backbone(x), n)
