"""MDNet offline multi-domain training (Nam & Han, CVPR 2016, Sec. 3.4).

A batch holds ``patches [N, 128, 3, 107, 107]`` (uint8 RGB), ``labels [N, 128]`` and ``domain [N]``:
each item is one iteration of one domain (8 frames, 32 positives, 96 negatives;
:class:`deepvideo.track.mdnet_domains.DomainDataset`), scored by that domain's fc6; the loss is
the mean softmax cross-entropy (``batch_size: 1`` is the paper's one domain per iteration).

Learning rates: the paper trains conv1–3 at 0.0001 and fc4–fc6 at 0.001. The engine has one
learning rate for all parameters (``train.lr`` = 0.0001, the conv rate), so this task multiplies
the gradients of fc4–fc6 by ``FC_LR_MULT`` = 10 (a hook on each parameter): with plain SGD and
momentum this is the same step as a 10× learning rate, except that weight decay on fc4–fc6
then acts at the conv rate and gradient-norm clipping sees the scaled gradients.

RT-MDNet (Jung et al., ECCV 2018, Sec. 3.3; ``model.kwargs.roi_align: true``) adds the
instance embedding loss: the positives' fc5 output scored by the fc6 of their own domain and of
the other domains in the first 100 of a random permutation (own skipped), the positive logits
of those branches under a softmax, cross-entropy with the own domain; total ``L_cls + 0.1 ·
L_inst`` (github.com/IlchaeJung/RT-MDNet ``train_mrcnn.py``). ``train.loss_weights.instance``
sets the weight (default 0.1 with ``roi_align``, 0 without: MDNet has no such loss). RT-MDNet
runs fc4–fc6 once per branch, each with its own dropout draw; here fc4–fc5 run once, and each
branch's fc6 sees the same dropout draw. Validation reports the classification loss.

Validation (``data.val``, by default held-out frames of the training sequences: a new sequence
has no fc6): ``val_loss``, ``val_error`` (share of misclassified samples) and ``val_precision``
(py-MDNet's: share of positives among the 32 highest scores). Running training metrics:
``error`` and ``precision``.

Data: ``data.train = {root: <tracking sequences>, format: ..., samples: {DomainDataset options}}``;
``data.val = {samples: {...}}`` (same sequences, e.g. ``split: holdout``) or with its own ``root``
holding the same sequence names. The model: ``model.name: mdnet``, ``model.kwargs`` (``width``,
``roi_align``); the number of domains is the number of training sequences.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.engine import distributed as dist_utils
from deepvideo.engine.config import ConfigError
from deepvideo.engine.task import StepOutput, Task, register_task
from deepvideo.track.mdnet import MDNet

MODEL_NAME = "mdnet"
FC_LR_MULT = 10.0
INSTANCE_WEIGHT = 0.1            # RT-MDNet: cls_loss + 0.1 * interclass_loss
MAX_INSTANCE_DOMAINS = 100       # RT-MDNet: K_perm[0:100]


def domain_dataset(section: dict, where: str, sequences=None):
    """The :class:`DomainDataset` a ``data.train`` / ``data.val`` section describes."""
    from deepvideo.track.datasets import load_dataset
    from deepvideo.track.mdnet_domains import DomainDataset

    if sequences is None or "root" in section:
        if "root" not in section:
            raise ConfigError(f"{where}: an MDNet dataset needs 'root' (a folder of tracking sequences); "
                              f"got keys {sorted(section)}")
        sequences = load_dataset(section["root"], section.get("format"))
    try:
        return DomainDataset(sequences, **dict(section.get("samples") or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}.samples: {exc}") from None


def scale_fc_gradients(model: MDNet, factor: float = FC_LR_MULT) -> None:
    """Multiply the gradients of fc4–fc6 by ``factor`` (once per model)."""
    if getattr(model, "fc_gradient_scale", None) is not None:
        return
    for layer in (model.fc4, model.fc5, model.fc6):
        for p in layer.parameters():
            p.register_hook(lambda g, f=factor: g * f)
    model.fc_gradient_scale = factor


def item_scores(model, patches: torch.Tensor, domains: torch.Tensor) -> list[torch.Tensor]:
    """Each item's logits ``[128, 2]`` from its own domain's fc6."""
    return [model(patches[i].float(), domain=int(domains[i])) for i in range(len(patches))]


def instance_loss(model: MDNet, hidden: torch.Tensor, domain: int) -> torch.Tensor:
    """RT-MDNet's instance embedding loss of positives' fc5 outputs ``hidden [P, C5]`` from
    ``domain``: softmax cross-entropy over the positive logits of the own fc6 and of the other
    domains among the first ``MAX_INSTANCE_DOMAINS`` of a random permutation."""
    if len(hidden) == 0:
        return hidden.sum() * 0.0
    perm = torch.randperm(model.num_domains)[:MAX_INSTANCE_DOMAINS].tolist()
    heads = [domain, *(k for k in perm if k != domain)]
    x = model.dropout(hidden)
    scores = torch.stack([model.fc6[k](x)[:, 1] for k in heads], dim=1)
    return F.cross_entropy(scores.float(), torch.zeros(len(hidden), dtype=torch.long, device=hidden.device))


def item_outputs(model: MDNet, patches: torch.Tensor, domains: torch.Tensor, labels: torch.Tensor,
                 instance: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each item's logits ``[128, 2]`` from its own fc6 and (``instance``) its instance loss."""
    scores, inst = [], []
    for i in range(len(patches)):
        domain = int(domains[i])
        hidden = model.hidden(model.conv_features(patches[i].float()))
        scores.append(model.fc6[domain](model.dropout(hidden)))
        if instance:
            inst.append(instance_loss(model, hidden[labels[i] == 1], domain))
    return scores, inst


def errors_and_precision(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Share of misclassified samples; share of positives among the ``#positives`` best scores."""
    error = float((logits.argmax(1) != labels).float().mean())
    positives = int(labels.sum())
    top = logits[:, 1].topk(max(positives, 1)).indices
    return error, float(labels[top].float().mean()) if positives else 0.0


@register_task("mdnet")
class MDNetTask(Task):
    """Multi-domain iterations -> per-domain fc6 -> softmax cross-entropy."""

    train_metrics = ("error", "precision")

    def setup(self, train_dataset=None, class_names=None) -> None:
        super().setup(train_dataset, class_names)
        if train_dataset is None:
            train_dataset = domain_dataset(dict(self.cfg.data.train or {}), "data.train")
        self.train_set = train_dataset
        self.num_domains = int(getattr(train_dataset, "num_domains", 0) or 0)

    def build_model(self) -> nn.Module:
        if self.cfg.model.name != MODEL_NAME:
            raise ConfigError(f"task 'mdnet' builds model.name: {MODEL_NAME}, got {self.cfg.model.name!r}")
        if self.num_domains < 1:
            raise ConfigError("task 'mdnet': the training set names no domains (num_domains)")
        return self.with_initial_weights(MDNet(num_domains=self.num_domains, **self.cfg.model.kwargs))

    def datasets(self, spec, train_dataset=None, val_dataset=None):
        train_dataset = train_dataset if train_dataset is not None else self.train_set
        if val_dataset is None and self.cfg.data.val:
            val_dataset = domain_dataset(dict(self.cfg.data.val), "data.val", train_dataset.sequences)
            names = [s.name for s in train_dataset.sequences]
            if [s.name for s in val_dataset.sequences] != names:
                raise ConfigError("data.val: MDNet validation needs the training sequences (their fc6 "
                                  f"branches), in the same order: {names[:5]}...")
        return train_dataset, ({"": val_dataset} if val_dataset is not None else {})

    def check_model(self, model: nn.Module) -> None:
        if not isinstance(model, MDNet):
            raise ConfigError(f"task 'mdnet' trains an MDNet, got {type(model).__name__}")
        if self.num_domains and model.num_domains < self.num_domains:
            raise ConfigError(f"the MDNet has {model.num_domains} fc6 branches for {self.num_domains} "
                              "training sequences")
        scale_fc_gradients(model)

    def instance_weight(self, model: MDNet) -> float:
        """The instance loss weight: ``train.loss_weights.instance``, else 0.1 for RT-MDNet, 0 for MDNet."""
        weights = dict(self.cfg.train.loss_weights or {})
        return float(weights.get("instance", INSTANCE_WEIGHT if model.roi_align else 0.0))

    def step(self, model, batch, device, autocast) -> StepOutput:
        patches, labels = batch["patches"].to(device), batch["labels"].to(device)
        weight = self.instance_weight(model)
        with autocast():
            scores, inst = item_outputs(model, patches, batch["domain"], labels, weight > 0)
        losses = [F.cross_entropy(s.float(), y) for s, y in zip(scores, labels, strict=True)]
        sums = {"error": 0.0, "precision": 0.0}
        for s, y in zip(scores, labels, strict=True):
            error, precision = errors_and_precision(s.detach().float(), y)
            sums["error"] += error
            sums["precision"] += precision
        cls = torch.stack(losses).mean()
        if not inst:
            return StepOutput({"loss": cls}, len(losses), sums)
        instance = torch.stack(inst).mean()
        total = cls + weight * instance
        return StepOutput({"loss": total, "cls": cls, "instance": instance}, len(losses), sums)

    @torch.no_grad()
    def evaluate(self, model, loaders, device, amp_dtype, spec) -> dict:
        model.eval()
        sums = [0.0, 0.0, 0.0, 0.0]  # loss, error, precision, items
        for loader in loaders.values():
            for batch in loader:
                labels = batch["labels"].to(device)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    scores = item_scores(model, batch["patches"].to(device), batch["domain"])
                for s, y in zip(scores, labels, strict=True):
                    error, precision = errors_and_precision(s.float(), y)
                    sums = [sums[0] + float(F.cross_entropy(s.float(), y)), sums[1] + error,
                            sums[2] + precision, sums[3] + 1]
        total = dist_utils.all_reduce_sum(sums, device).tolist()
        n = max(total[3], 1.0)
        return {"val_loss": total[0] / n, "val_error": total[1] / n, "val_precision": total[2] / n}

    def checkpoint_meta(self) -> dict:
        names = [s.name for s in getattr(self.train_set, "sequences", [])]
        return {"class_names": [], "domains": names}
