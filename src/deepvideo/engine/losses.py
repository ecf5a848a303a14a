"""Classification losses and accuracy counts of the recognition task.

A model output is a tensor of logits ``[N,K]``, dense logits ``[N,K,T']`` (cross-entropy on
every chunk, averaged over T': Feichtenhofer et al. 2016's one loss per chunk) or, in
training mode, a dict ``{"logits": ..., "aux_<name>": ...}`` whose losses are summed with
weights (default 1.0 each). A dict may also carry ready-made scalar losses ``"loss_<name>"``
(e.g. Skip RNN's budget loss), added with their weight, and running values ``"metric_<name>"``
(batch means, not losses: the recognition task reports them). Float multi-hot labels use binary
cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def single_loss(
    logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0, ignore_index: int | None = None
) -> torch.Tensor:
    """Cross-entropy of ``[N,K]`` or ``[N,K,T']`` logits (binary cross-entropy for float labels).

    ``ignore_index`` (integer labels only): labels equal to it are left out; when every label
    is, the loss is 0 (not NaN).
    """
    logits = logits.float()
    if ignore_index is not None and not target.dtype.is_floating_point:
        if not bool((target != ignore_index).any()):  # no labelled sample for this head: 0, not NaN
            return logits.sum() * 0.0
        if logits.dim() == 3:
            target = target[:, None].expand(-1, logits.shape[2])
        return F.cross_entropy(logits, target, label_smoothing=label_smoothing, ignore_index=ignore_index)
    if target.dtype.is_floating_point:  # multi-hot labels
        if logits.dim() == 3:
            target = target[:, :, None].expand_as(logits)
        if label_smoothing:
            target = target * (1 - label_smoothing) + 0.5 * label_smoothing
        return F.binary_cross_entropy_with_logits(logits, target)
    if logits.dim() == 3:  # dense temporal [N,K,T']: one loss per chunk, averaged over T'
        target = target[:, None].expand(-1, logits.shape[2])
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


def head_outputs(outputs: dict, head_names: list[str]) -> dict[str, torch.Tensor]:
    """``{head: logits}`` of a multi-task output: the first head is ``"logits"``, head h is ``"aux_<h>"``
    (the naming of :class:`deepvideo.models.two_stream.MultiTaskSnippetNet`)."""
    out = {}
    for i, head in enumerate(head_names):
        key = "logits" if i == 0 else f"aux_{head}"
        if key not in outputs:
            raise ValueError(
                f"multi-task training with heads {head_names} needs the model output {key!r} "
                f"(got {', '.join(outputs)}); the model's heads must match data.multitask"
            )
        out[head] = outputs[key]
    return out


def compute_loss(
    output,
    target: torch.Tensor,
    label_smoothing: float = 0.0,
    weights: dict[str, float] | None = None,
    head_targets: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """``(total loss, main logits, {name: loss})`` for a model output (tensor or dict).

    ``head_targets`` (multi-task, ``{head: labels with -1 for other tasks' samples}``, first
    head = ``"logits"``): each head's cross-entropy uses its own labels, ignoring -1; a head
    with no labelled sample in the batch contributes 0. The heads' losses are summed.
    """
    weights = weights or {}
    outputs = output if isinstance(output, dict) else {"logits": output}
    if "logits" not in outputs:
        raise ValueError(f"a model returning a dict must include 'logits' (got {', '.join(outputs)})")
    names = {}
    if head_targets:
        heads = list(head_targets)
        head_outputs(outputs, heads)  # checks that every head has its output
        names = {("logits" if i == 0 else f"aux_{h}"): h for i, h in enumerate(heads)}
    parts, total = {}, None
    for name, logits in outputs.items():
        if name.startswith("loss_"):  # a scalar loss the model computed itself
            if logits.dim() != 0:
                raise ValueError(f"model output {name!r} must be a scalar loss, "
                                 f"got shape {tuple(logits.shape)}")
            loss = logits.float()
        elif name != "logits" and not name.startswith("aux_"):
            continue
        elif name in names:
            loss = single_loss(logits, head_targets[names[name]], label_smoothing, ignore_index=-1)
        else:
            loss = single_loss(logits, target, label_smoothing)
        parts[name] = loss.detach()
        weighted = loss * float(weights.get(name, 1.0))
        total = weighted if total is None else total + weighted
    return total, outputs["logits"], parts


def clip_scores(logits: torch.Tensor) -> torch.Tensor:
    """``[N,K]`` scores: dense ``[N,K,T']`` logits are averaged over time."""
    return logits.mean(dim=2) if logits.dim() == 3 else logits


def count_correct(scores: torch.Tensor, target: torch.Tensor, k: int) -> int:
    """Rows of ``scores [N,K]`` whose top-k holds the label (multi-hot: any positive class)."""
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices
    if target.dtype.is_floating_point:
        return int(target.gather(1, top).amax(dim=1).gt(0).sum())
    return int((top == target[:, None]).any(dim=1).sum())
