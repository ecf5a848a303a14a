"""Skip RNN: an LSTM/GRU over per-frame CNN features that learns to skip state updates.

Campos, Jou, Giró-i-Nieto, Torres & Chang, "Skip RNN: Learning to Skip State Updates in
Recurrent Neural Networks", ICLR 2018. At every step a binary state-update gate decides whether
the RNN reads the frame (eqs. 2-5)::

    u_t       = round(ũ_t)                                     (f_binarize, ũ_1 = 1)
    s_t       = u_t · S(s_{t-1}, x_t) + (1 - u_t) · s_{t-1}     (skipped: state and output copied)
    Δũ_t      = σ(W_p s_t + b_p)
    ũ_{t+1}   = u_t · Δũ_t + (1 - u_t) · (ũ_t + min(Δũ_t, 1 - ũ_t))

so after an update the model emits the probability Δũ_t of updating at the next step and, while
skipping, accumulates it until it rounds to 1. ``round`` has the straight-through gradient
(∂u/∂ũ = 1, Bengio et al. 2013). The budget loss ``L_budget = λ · Σ_t u_t`` (eq. 6, per sequence,
averaged over the batch; the paper's λ for long sequences is 1e-4, the default here) trades
accuracy for the number of updates. For the LSTM the gate reads the cell state c_t and the bias
b_p starts at 1 (the authors' released cells); for the GRU it reads h_t.

The per-frame CNN is LRCN's (:func:`deepvideo.models.lrcn.lrcn`: a ResNet-18 embedding per
frame); per-step predictions are averaged over time as LRCN does (a skipped step repeats the
last output). In training mode the model returns ``{"logits", "loss_budget",
"metric_frames_used"}`` (the recognition task adds ``loss_*`` to the loss and reports
``metric_*`` as ``train_<name>``); in eval mode the logits. :meth:`SkipRNN.run` gives the gates.
Training computes every frame's CNN features (a batch); at inference the skipped frames' features
are not needed, which is where the savings come from.
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.models.lrcn import RecurrentVideoNet, lrcn
from deepvideo.models.registry import register_model
from deepvideo.nn.inputs import flow_to_snippets, rgb_to_snippets
from deepvideo.spec import InputSpec

PAPER = "Campos et al., Skip RNN: Learning to Skip State Updates in Recurrent Neural Networks, ICLR 2018"
BUDGET_LAMBDA = 1e-4  # λ of the budget loss (Campos et al. 2018)
GATE_BIAS = 1.0  # initial b_p: the first steps update


def binarize(u_tilde: torch.Tensor) -> torch.Tensor:
    """``round(ũ)`` in the forward pass, identity gradient in the backward pass (straight-through)."""
    return u_tilde + (torch.round(u_tilde) - u_tilde).detach()


def next_update_prob(u: torch.Tensor, u_tilde: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``ũ_{t+1} = u_t Δũ_t + (1 - u_t)(ũ_t + min(Δũ_t, 1 - ũ_t))`` (Campos et al. 2018, eq. 5)."""
    return u * delta + (1 - u) * (u_tilde + torch.minimum(delta, 1 - u_tilde))


class SkipRNN(nn.Module):
    """Per-frame 2D features -> Skip-LSTM/GRU -> per-step linear predictions averaged over time."""

    train_metrics = ("frames_used",)  # running metrics the recognition task reports (train_<name>)

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        num_classes: int,
        hidden: int = 256,
        cell: str = "lstm",
        budget: float = BUDGET_LAMBDA,
        modality: str = "rgb",
        flow_stack: int = 0,
        dropout: float = 0.5,
    ):
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        if budget < 0:
            raise ValueError(f"the budget loss weight λ must be >= 0, got {budget}")
        self.backbone, self.cell_type, self.budget = backbone, cell, float(budget)
        self.modality, self.flow_stack, self.hidden = modality, flow_stack, hidden
        self.cell = nn.LSTMCell(feature_dim, hidden) if cell == "lstm" else nn.GRUCell(feature_dim, hidden)
        self.gate = nn.Linear(hidden, 1)  # W_p, b_p
        nn.init.constant_(self.gate.bias, GATE_BIAS)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def features(self, batch: dict) -> torch.Tensor:
        """Per-step CNN features ``[N, T, D]``."""
        if self.modality not in batch:
            raise KeyError(f"this {self.modality} model needs batch[{self.modality!r}]; "
                           f"the batch has {sorted(batch)}")
        x = batch[self.modality]
        steps = flow_to_snippets(x, self.flow_stack) if self.modality == "flow" else rgb_to_snippets(x, 1)
        return self.backbone(steps).reshape(x.shape[0], -1, self.cell.input_size)

    def recur(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The skip recurrence over features ``[N, T, D]``: ``(hidden outputs [N, T, H], gates u [N, T])``."""
        n, steps = f.shape[:2]
        zeros = f.new_zeros(n, self.hidden)
        state = (zeros, zeros) if self.cell_type == "lstm" else (zeros,)
        u_tilde = f.new_ones(n, 1)  # ũ_1 = 1: the first frame is always read
        outputs, gates = [], []
        for t in range(steps):
            u = binarize(u_tilde)
            new = self.cell(f[:, t], state if self.cell_type == "lstm" else state[0])
            new = new if isinstance(new, tuple) else (new,)
            state = tuple(u * a + (1 - u) * b for a, b in zip(new, state, strict=True))
            delta = torch.sigmoid(self.gate(state[-1]))  # c_t (LSTM) or h_t (GRU)
            u_tilde = next_update_prob(u, u_tilde, delta)
            outputs.append(state[0])
            gates.append(u[:, 0])
        return torch.stack(outputs, 1), torch.stack(gates, 1)

    def run(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(per-step logits [N, T, K], gates u [N, T])``."""
        h, u = self.recur(self.features(batch))
        return self.fc(self.dropout(h)), u

    def forward(self, batch: dict):
        steps, u = self.run(batch)
        logits = steps.mean(dim=1)
        if not self.training:
            return logits
        return {
            "logits": logits,
            "loss_budget": self.budget * u.sum(dim=1).mean(),
            "metric_frames_used": u.detach().mean(),
        }


def skip_rnn(
    num_classes: int = 101,
    backbone: str = "resnet18",
    cell: str = "lstm",
    budget: float = BUDGET_LAMBDA,
    modality: str = "rgb",
    flow_stack: int = 10,
    hidden: int = 256,
    width: float = 1.0,
    input_size: int = 224,
    dropout: float = 0.5,
) -> SkipRNN:
    """Skip-LSTM/GRU over LRCN's per-frame CNN (same backbone, embedding and classifier)."""
    base: RecurrentVideoNet = lrcn(num_classes, backbone, modality, flow_stack, hidden, 1, width, input_size,
                                   dropout)
    return SkipRNN(base.backbone, base.lstm.input_size, num_classes, hidden, cell, budget, modality,
                   base.flow_stack, dropout)


def _spec(steps: int, crop: int) -> InputSpec:
    return InputSpec(modalities=("rgb",), num_frames=steps, crop_size=crop)


for _cell in ("lstm", "gru"):
    register_model(f"skip_{_cell}", skip_rnn, _spec(16, 224), paper=PAPER,
                   summary=f"Skip-{_cell.upper()}: ResNet-18 per frame, {_cell.upper()} 256, budget λ=1e-4",
                   cell=_cell)
    register_model(f"skip_{_cell}_small", skip_rnn, _spec(8, 112), paper=PAPER,
                   summary=f"CPU Skip-{_cell.upper()}: 1/4-width ResNet-18, {_cell.upper()} 64, 8 frames",
                   cell=_cell, width=0.25, hidden=64)
